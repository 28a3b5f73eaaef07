//! Property tests of the HTTP/2 answer reader and the HPACK decoder: whatever bytes a hostile or
//! broken server sends — arbitrary, or a valid answer with bytes flipped, cut or inserted — the
//! answer is read or refused with a reason, never a panic, and never more than the limit.

use proptest::prelude::*;

use super::exchange::{Exchange, Step};
use super::frame::*;
use super::hpack::{
    Decoder, MAX_DECODED, MAX_INTEGER, TABLE_SIZE, entry_size, integer, read_integer,
};
use super::huffman::huffman_decode;
use super::{Http2Error, Response};
use crate::chain::edits;

/// The frames of a valid gRPC answer, as one byte stream: SETTINGS, a PING, the headers split
/// over HEADERS and CONTINUATION (Huffman and the dynamic table used), padded DATA, trailers.
fn valid_answer() -> Vec<u8> {
    let mut out = Vec::new();
    frame(&mut out, SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
    frame(&mut out, PING, 0, 0, &[9; 8]);
    // :status 200; content-type: application/grpc, indexed (literal with indexing, name 31);
    // a Huffman-coded custom-key: custom-value (RFC 7541 C.4.3's strings).
    let mut block = vec![0x88, 0x5f, 16];
    block.extend_from_slice(b"application/grpc");
    block.extend_from_slice(&[0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f]);
    block.extend_from_slice(&[0x89, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf]);
    frame(&mut out, HEADERS, PADDED | PRIORITY, STREAM, &{
        let mut p = vec![2, 0, 0, 0, 0, 16];
        p.extend_from_slice(&block[..5]);
        p.extend_from_slice(&[0, 0]);
        p
    });
    frame(&mut out, CONTINUATION, END_HEADERS, STREAM, &block[5..]);
    frame(&mut out, DATA, PADDED, STREAM, &[2, 0, 0, 0, 0, 2, 8, 0, 0]);
    // Trailers: grpc-status 0, and content-type again by its dynamic index.
    let mut trailers = vec![0x00, 11];
    trailers.extend_from_slice(b"grpc-status");
    trailers.extend_from_slice(&[1, b'0', 0xbf]);
    frame(
        &mut out,
        HEADERS,
        END_HEADERS | END_STREAM,
        STREAM,
        &trailers,
    );
    out
}

/// Reads `bytes` as the server's side of the connection, as `post` does.
fn read_answer(mut bytes: &[u8], limit: usize) -> Result<Option<Response>, Http2Error> {
    let mut exchange = Exchange::new(limit);
    while let Some((head, rest)) = bytes.split_first_chunk::<9>() {
        let (kind, flags, id, len) = parse_head(head)?;
        let Some((payload, rest)) = rest.split_at_checked(len) else {
            return Ok(None);
        };
        bytes = rest;
        if let Step::Done = exchange.on_frame(kind, flags, id, payload)? {
            return Ok(Some(exchange.into_response()));
        }
    }
    Ok(None)
}

fn bounded(response: &Response, limit: usize) -> bool {
    response.body.len() <= limit
        && response
            .headers
            .iter()
            .chain(&response.trailers)
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
            <= 2 * MAX_DECODED
}

/// A valid answer with a few bytes flipped, cut out or inserted.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(edits::edit(), 1..6).prop_map(|edits| {
        let mut bytes = valid_answer();
        edits::apply(&mut bytes, &edits);
        bytes
    })
}

#[test]
fn the_valid_answer_reads() {
    let answer = read_answer(&valid_answer(), 1 << 20).unwrap().unwrap();
    assert_eq!(answer.field(":status"), Some("200"));
    assert_eq!(answer.field("custom-key"), Some("custom-value"));
    assert_eq!(answer.field("grpc-status"), Some("0"));
    assert_eq!(answer.trailers[1].1, "application/grpc");
    assert_eq!(answer.body, [0, 0, 0, 0, 2, 8]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_frames_are_read_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(Some(r)) = read_answer(&bytes, 64) {
            prop_assert!(bounded(&r, 64));
        }
    }

    #[test]
    fn a_mutated_answer_is_read_or_refused(bytes in mutated(), limit in 0..16usize) {
        if let Ok(Some(r)) = read_answer(&bytes, limit) {
            prop_assert!(bounded(&r, limit));
        }
    }

    #[test]
    fn arbitrary_header_blocks_decode_or_are_refused(
        blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..256), 1..4),
    ) {
        // One decoder for all: the dynamic table carries over, as on a connection.
        let mut d = Decoder::new();
        for block in blocks {
            if d.decode(&block).is_ok() {
                prop_assert!(d.size <= d.max && d.max <= TABLE_SIZE);
                prop_assert_eq!(d.size, d.table.iter().map(entry_size).sum::<usize>());
            }
        }
    }

    #[test]
    fn integers_past_their_prefix_are_read_or_refused(
        n in 1..=8u32,
        bytes in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut rest = bytes.as_slice();
        if let Ok(v) = read_integer(&mut rest, n) {
            prop_assert!(v <= MAX_INTEGER);
            let mut out = Vec::new();
            integer(&mut out, 0, n, v);
            prop_assert_eq!(read_integer(&mut out.as_slice(), n), Ok(v));
        }
    }

    #[test]
    fn arbitrary_huffman_strings_decode_or_are_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        if let Ok(out) = huffman_decode(&bytes) {
            prop_assert!(out.len() <= bytes.len() * 8 / 5);
        }
    }
}
