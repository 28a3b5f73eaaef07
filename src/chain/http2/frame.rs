//! The HTTP/2 frame layer (RFC 9113 §4, §6): the frame types and flags used, a frame written and
//! a frame header read, and a payload's padding taken off.

use super::Http2Error;

pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const PUSH_PROMISE: u8 = 0x5;
pub(super) const PING: u8 = 0x6;
pub(super) const GOAWAY: u8 = 0x7;
pub(super) const WINDOW_UPDATE: u8 = 0x8;
pub(super) const CONTINUATION: u8 = 0x9;
pub(super) const END_STREAM: u8 = 0x1;
pub(super) const ACK: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
pub(super) const PADDED: u8 = 0x8;
pub(super) const PRIORITY: u8 = 0x20;
/// The largest frame a peer may send without our asking for more (SETTINGS_MAX_FRAME_SIZE).
pub(super) const MAX_FRAME: usize = 16_384;
/// The one stream used.
pub(super) const STREAM: u32 = 1;

/// Appends a frame (its payload at most `MAX_FRAME` bytes: see `request`).
pub(super) fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_FRAME);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A frame header: its type, flags, stream and payload length (at most `MAX_FRAME`: we never
/// allowed more).
pub(super) fn parse_head(head: &[u8; 9]) -> Result<(u8, u8, u32, usize), Http2Error> {
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    if len > MAX_FRAME {
        return Err(Http2Error::FrameTooLarge(len));
    }
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Ok((head[3], head[4], id, len))
}

/// A frame's payload without its padding (and, for HEADERS, its priority fields).
pub(super) fn unpad(payload: &[u8], flags: u8, headers: bool) -> Result<&[u8], Http2Error> {
    let mut p = payload;
    let mut pad = 0usize;
    if flags & PADDED != 0 {
        let (&n, rest) = p.split_first().ok_or(Http2Error::NoPadLength)?;
        pad = usize::from(n);
        p = rest;
    }
    if headers && flags & PRIORITY != 0 {
        p = p.get(5..).ok_or(Http2Error::HeadersCutShort)?;
    }
    p.len()
        .checked_sub(pad)
        .and_then(|end| p.get(..end))
        .ok_or(Http2Error::PaddingTooLong)
}

/// The big-endian `u32` at `at` in `payload`, or 0 when the payload is too short to hold it
/// (an error code the server did not send).
pub(super) fn code_at(payload: &[u8], at: usize) -> u32 {
    payload
        .get(at..)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |b| u32::from_be_bytes(*b))
}
