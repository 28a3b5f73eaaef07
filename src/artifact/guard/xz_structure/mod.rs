//! An xz file read along its structure as its decoder reads it (see `guard`'s documentation):
//! the byte-by-byte walk and its states here; the blocks and their LZMA2 chunks in `block.rs`;
//! the stream around them (header, index, footer, padding) in `stream.rs`.

use std::io::{self, Read};

mod block;
mod stream;

/// An xz file read along its structure as the decoder reads it (see the module's documentation):
/// the stream headers, each block's header (its dictionary capped before the decoder has the
/// header whole), the LZMA2 chunks' headers (to find where a block ends), block padding and
/// checks, each index (checked against the blocks read) and footer, and the padding between
/// streams.
pub struct XzStream<R> {
    inner: R,
    state: Xz,
    /// The bytes of the header being read: a stream header or footer, a block or chunk header.
    part: Vec<u8>,
    /// The multibyte integer being read in an index.
    number: Varint,
    /// The current stream's check type, and the size of its blocks' checks.
    check_id: u8,
    check: u64,
    /// The current block, as read so far.
    block: Block,
    /// The current stream's blocks as they were read, and as its index lists them.
    read: Totals,
    listed: Totals,
    /// The bytes of the current index so far, and the unpadded size of the record being read.
    index_size: u64,
    unpadded: u64,
    /// Streams read to their footer.
    streams: u64,
    /// Zero bytes after the last stream's footer.
    padding: u64,
}

/// Where in the xz structure the next byte is.
#[derive(Debug, Clone, Copy)]
enum Xz {
    /// A stream header's 12 bytes, in `part`.
    StreamHeader,
    /// A block header's size (in fours, less one), or 0: the index.
    BlockOrIndex,
    /// A block header of this many bytes, in `part`.
    BlockHeader(usize),
    /// An LZMA2 chunk's control byte (0: the end of the block's data).
    Chunk,
    /// An LZMA2 chunk's header of this many bytes (its control byte first), in `part`.
    ChunkHeader(usize),
    /// The bytes left of a chunk's data.
    ChunkData(u64),
    /// The zero bytes left of a block's padding.
    BlockPadding(u64),
    /// The bytes left of a block's check.
    Check(u64),
    /// The index's record count.
    IndexCount,
    /// An index record's unpadded size, or its uncompressed size; `left` records to go.
    IndexRecord { left: u64, uncompressed: bool },
    /// The zero bytes left of the index's padding.
    IndexPadding(u64),
    /// The bytes left of the index's CRC-32.
    IndexCrc(u64),
    /// A stream footer's 12 bytes, in `part`.
    Footer,
    /// Zero bytes after a stream (in fours), then another stream or the end.
    StreamPadding,
}

/// A block of the current stream, as read so far.
#[derive(Debug, Default)]
struct Block {
    header: u64,
    compressed: u64,
    uncompressed: u64,
    /// The sizes the block header states, if it does.
    stated_compressed: Option<u64>,
    stated_uncompressed: Option<u64>,
}

/// A stream's blocks: how many, and their unpadded and uncompressed sizes summed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    blocks: u64,
    unpadded: u64,
    uncompressed: u64,
}

impl Totals {
    fn add(&mut self, unpadded: u64, uncompressed: u64) -> io::Result<()> {
        let overflow = || corrupt("an xz stream whose sizes are out of range".into());
        self.blocks = self.blocks.checked_add(1).ok_or_else(overflow)?;
        self.unpadded = self.unpadded.checked_add(unpadded).ok_or_else(overflow)?;
        self.uncompressed = self
            .uncompressed
            .checked_add(uncompressed)
            .ok_or_else(overflow)?;
        Ok(())
    }
}

/// An xz multibyte integer read a byte at a time (at most 9 bytes, 63 bits).
#[derive(Debug, Default)]
struct Varint {
    value: u64,
    bytes: u32,
}

impl Varint {
    /// Takes the next byte: the integer once it is whole.
    fn push(&mut self, b: u8) -> io::Result<Option<u64>> {
        if self.bytes == 9 {
            return Err(corrupt("an xz integer longer than 9 bytes".into()));
        }
        self.value |= u64::from(b & 0x7f) << (7 * self.bytes);
        self.bytes += 1;
        if b & 0x80 != 0 {
            return Ok(None);
        }
        let value = self.value;
        *self = Varint::default();
        Ok(Some(value))
    }
}

/// The size of an xz block check of type `id` (those the decoder verifies).
fn check_size(id: u8) -> Option<u64> {
    match id {
        0x00 => Some(0),
        0x01 => Some(4),
        0x04 => Some(8),
        0x0a => Some(32),
        _ => None,
    }
}

fn corrupt(message: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a valid xz file: {message}"),
    )
}

impl<R: Read> XzStream<R> {
    pub fn new(inner: R) -> XzStream<R> {
        XzStream {
            inner,
            state: Xz::StreamHeader,
            part: Vec::with_capacity(64),
            number: Varint::default(),
            check_id: 0,
            check: 0,
            block: Block::default(),
            read: Totals::default(),
            listed: Totals::default(),
            index_size: 0,
            unpadded: 0,
            streams: 0,
            padding: 0,
        }
    }

    fn walk(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut at = 0;
        while at < bytes.len() {
            let rest = (bytes.len() - at) as u64;
            match &mut self.state {
                Xz::ChunkData(left) | Xz::Check(left) | Xz::IndexCrc(left) => {
                    let take = (*left).min(rest);
                    *left -= take;
                    at += take as usize;
                    if *left == 0 {
                        self.passed()?;
                    }
                }
                _ => {
                    self.byte(bytes[at])?;
                    at += 1;
                }
            }
        }
        Ok(())
    }

    /// The end of data passed over in bulk (see `walk`).
    fn passed(&mut self) -> io::Result<()> {
        match self.state {
            Xz::ChunkData(_) => self.state = Xz::Chunk,
            Xz::Check(_) => self.block_end()?,
            Xz::IndexCrc(_) => {
                self.part.clear();
                self.state = Xz::Footer;
            }
            _ => {}
        }
        Ok(())
    }

    /// Takes the next byte, in the state the structure read so far is in.
    fn byte(&mut self, b: u8) -> io::Result<()> {
        match self.state {
            Xz::StreamHeader => self.stream_header_byte(b)?,
            Xz::StreamPadding => self.stream_padding_byte(b)?,
            Xz::BlockOrIndex => self.block_or_index(b),
            Xz::BlockHeader(size) => self.block_header_byte(size, b)?,
            Xz::Chunk => self.chunk(b)?,
            Xz::ChunkHeader(size) => self.chunk_header_byte(size, b)?,
            Xz::BlockPadding(left) => self.block_padding(left, b)?,
            Xz::IndexCount => self.index_count(b)?,
            Xz::IndexRecord { left, uncompressed } => self.index_record(left, uncompressed, b)?,
            Xz::IndexPadding(left) => self.index_padding_byte(left, b)?,
            Xz::Footer => self.footer_byte(b)?,
            // Passed over in bulk by `walk`, never a byte at a time.
            Xz::ChunkData(_) | Xz::Check(_) | Xz::IndexCrc(_) => {}
        }
        Ok(())
    }
}

impl<R: Read> Read for XzStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.end()?;
        }
        self.walk(&buf[..n])?;
        Ok(n)
    }
}
