//! A zstd frame's header, read before the decoder has it: the window it asks for is capped.

use std::io::{self, Read};

use super::bomb;

/// The largest zstd window accepted: `zstd -d`'s own default limit (a window log of 27).
const MAX_WINDOW: u64 = 128 << 20;

/// The magic number of a zstd frame.
const ZSTD_MAGIC: u32 = 0xfd2f_b528;

/// A zstd frame's start, read by [`zstd_frame`].
pub enum ZstdStart {
    /// A skippable frame: this many bytes of it follow.
    Skippable(u32),
    /// A frame: its header's bytes (for the decoder) and the content size it states, if any.
    Frame {
        header: Vec<u8>,
        content_size: Option<u64>,
    },
}

/// Reads the header of the zstd frame at the start of `reader` (the one after `frames` frames)
/// and checks the window it asks for: the decoder holds that much of the output in memory.
pub fn zstd_frame(reader: &mut impl Read, frames: u64) -> io::Result<ZstdStart> {
    let zstd_bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mut header = Vec::with_capacity(18);
    let take = |reader: &mut dyn Read, header: &mut Vec<u8>, n: usize| {
        let at = header.len();
        header.resize(at + n, 0);
        reader.read_exact(&mut header[at..]).map_err(|e| {
            zstd_bad(format!(
                "the zstd file ends within the header of frame {} ({e}): truncated",
                frames + 1
            ))
        })
    };
    take(reader, &mut header, 4)?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if (0x184d_2a50..=0x184d_2a5f).contains(&magic) {
        take(reader, &mut header, 4)?;
        return Ok(ZstdStart::Skippable(u32::from_le_bytes([
            header[4], header[5], header[6], header[7],
        ])));
    }
    if magic != ZSTD_MAGIC {
        return Err(zstd_bad(if frames == 0 {
            "not a zstd frame".into()
        } else {
            format!("bytes after zstd frame {frames} that are not a frame (trailing data)")
        }));
    }
    take(reader, &mut header, 1)?;
    let descriptor = header[4];
    if descriptor & 0x08 != 0 {
        return Err(zstd_bad(format!(
            "zstd frame {} sets the reserved bit of its header",
            frames + 1
        )));
    }
    let single_segment = descriptor & 0x20 != 0;
    let mut window = None;
    if !single_segment {
        take(reader, &mut header, 1)?;
        let w = header[5];
        let base = 1u64 << (10 + u32::from(w >> 3));
        window = Some(base + base / 8 * u64::from(w & 7));
    }
    take(
        reader,
        &mut header,
        [0, 1, 2, 4][usize::from(descriptor & 0x03)],
    )?;
    let size_bytes = match descriptor >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let at = header.len();
    take(reader, &mut header, size_bytes)?;
    let content_size = (size_bytes > 0).then(|| {
        let mut le = [0u8; 8];
        le[..size_bytes].copy_from_slice(&header[at..]);
        u64::from_le_bytes(le) + if size_bytes == 2 { 256 } else { 0 }
    });
    // A single-segment frame's window is its whole content.
    let window = window.or(content_size).unwrap_or(0);
    if window > MAX_WINDOW {
        return Err(bomb(format!(
            "zstd frame {} asks for a window of {} MiB (at most {} MiB are accepted, as zstd -d accepts by default): refused as a memory bomb",
            frames + 1,
            window >> 20,
            MAX_WINDOW >> 20
        )));
    }
    Ok(ZstdStart::Frame {
        header,
        content_size,
    })
}
