//! What the decompressors and the `tar` crate would otherwise let a hostile archive do to memory:
//!
//! - [`TarStream`] sits between the decompressed stream and the `tar` crate and reads along the
//!   tar headers: the bodies of GNU long names and links and of PAX headers, which the crate
//!   reads whole into memory, are capped at 64 KiB each; sparse entries are refused; and the
//!   whole stream is capped (an archive of skipped entries is a bomb all the same).
//! - [`XzStream`] sits between the xz file and its decoder and reads along the xz structure as
//!   the decoder reaches it: the decoder allocates each block's whole dictionary at once, so a
//!   block asking for more than 256 MiB (xz itself uses at most 64 MiB) is refused before the
//!   decoder has its header. Every block of every stream is read so, whatever an index says
//!   (an index is checked against the blocks it follows, not trusted to find them).
//! - [`zstd_frame`] reads each zstd frame's header before the decoder does: the decoder keeps a
//!   window of output in memory, refused over 128 MiB (what `zstd -d` accepts by default).

use std::io::{self, Read};

/// The most a long name, long link or PAX header may take.
const MAX_EXTENSION: u64 = 64 << 10;
/// The largest xz dictionary accepted.
const MAX_DICTIONARY: u64 = 256 << 20;
/// The largest zstd window accepted: `zstd -d`'s own default limit (a window log of 27).
const MAX_WINDOW: u64 = 128 << 20;

/// A tar stream read along its headers (see the module's documentation).
pub struct TarStream<R> {
    inner: R,
    limit: u64,
    read: u64,
    /// The header being read (512 bytes), when between entries.
    header: Vec<u8>,
    /// What is left of the current entry's body (padded to 512).
    body_left: u64,
    /// A PAX header's body, kept to read a `size=` that overrides the next entry's.
    pax: Option<Vec<u8>>,
    next_size: Option<u64>,
}

impl<R: Read> TarStream<R> {
    pub fn new(inner: R, limit: u64) -> TarStream<R> {
        TarStream {
            inner,
            limit,
            read: 0,
            header: Vec::with_capacity(512),
            body_left: 0,
            pax: None,
            next_size: None,
        }
    }

    fn walk(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut at = 0;
        while at < bytes.len() {
            if self.body_left > 0 {
                let take = (self.body_left.min((bytes.len() - at) as u64)) as usize;
                if let Some(pax) = self.pax.as_mut() {
                    pax.extend_from_slice(&bytes[at..at + take]);
                }
                self.body_left -= take as u64;
                at += take;
                if self.body_left == 0
                    && let Some(pax) = self.pax.take()
                {
                    self.next_size = pax_size(&pax);
                }
                continue;
            }
            let take = (512 - self.header.len()).min(bytes.len() - at);
            self.header.extend_from_slice(&bytes[at..at + take]);
            at += take;
            if self.header.len() == 512 {
                let header = std::mem::take(&mut self.header);
                self.header.reserve(512);
                self.entry(&header)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, header: &[u8]) -> io::Result<()> {
        if header.iter().all(|&b| b == 0) {
            return Ok(()); // the end-of-archive blocks
        }
        let kind = header[156];
        let stated = size(&header[124..136])?;
        let size = match kind {
            b'L' | b'K' | b'x' | b'g' => stated,
            _ => self.next_size.take().unwrap_or(stated),
        };
        match kind {
            b'L' | b'K' | b'x' | b'g' if size > MAX_EXTENSION => {
                let what = match kind {
                    b'L' => "a long name",
                    b'K' => "a long link",
                    _ => "a PAX header",
                };
                return Err(bomb(format!(
                    "the archive holds {what} of {size} bytes (at most {MAX_EXTENSION} are accepted): refused as a memory bomb"
                )));
            }
            b'S' => {
                return Err(bomb(
                    "the archive holds a sparse entry: not accepted".into(),
                ));
            }
            b'x' => self.pax = Some(Vec::with_capacity(size as usize)),
            _ => {}
        }
        self.body_left = size
            .div_ceil(512)
            .checked_mul(512)
            .ok_or_else(|| bomb(format!("a tar entry of {size} bytes: out of range")))?;
        Ok(())
    }

    /// Reads what is left of the stream once the `tar` crate has stopped at the archive's end,
    /// so that the decompressor reaches its own end and checks what its format checks there
    /// (gzip's CRC-32 and length, zstd's content checksum, xz's block checks and index) and
    /// refuses data after it. Still capped; no longer read as tar headers (tar ignores what
    /// follows the end of an archive).
    pub fn finish(&mut self) -> io::Result<()> {
        let mut sink = vec![0u8; 64 << 10];
        loop {
            match self.inner.read(&mut sink)? {
                0 => return Ok(()),
                n => self.count(n)?,
            }
        }
    }

    fn count(&mut self, n: usize) -> io::Result<()> {
        self.read += n as u64;
        if self.read > self.limit {
            return Err(bomb(format!(
                "the archive unpacks to more than {} bytes (the most a node binary with its libraries may take, or the free space left): refused as a decompression bomb",
                self.limit
            )));
        }
        Ok(())
    }
}

impl<R: Read> Read for TarStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count(n)?;
        self.walk(&buf[..n])?;
        Ok(n)
    }
}

fn bomb(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A tar header's size field: octal digits, or big-endian binary after a set high bit.
fn size(field: &[u8]) -> io::Result<u64> {
    if field[0] & 0x80 != 0 {
        let mut value = 0u64;
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| bomb("a tar entry size out of range".into()))?;
        }
        return Ok(value);
    }
    let text =
        std::str::from_utf8(field).map_err(|_| bomb("a tar size that is not text".into()))?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(digits, 8)
        .map_err(|_| bomb(format!("a tar size {digits:?} that is not octal")))
}

/// The `size` record of a PAX header (`<len> size=<n>\n`), if it has one.
fn pax_size(body: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| line.split_once(' ').map(|(_, record)| record))
        .find_map(|record| record.strip_prefix("size=")?.parse().ok())
}

/// The bytes an xz stream starts with.
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// The filter id of LZMA2, the last filter of every xz block.
const LZMA2: u64 = 0x21;

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

    fn byte(&mut self, b: u8) -> io::Result<()> {
        match self.state {
            Xz::StreamHeader => {
                self.part.push(b);
                // Refused at the first byte that is not the magic (before the decoder has it).
                if self.part.len() <= XZ_MAGIC.len() && self.part[..] != XZ_MAGIC[..self.part.len()]
                {
                    return Err(self.not_a_stream());
                }
                if self.part.len() == 12 {
                    self.stream_header()?;
                }
            }
            Xz::StreamPadding => {
                if b == 0 {
                    self.padding += 1;
                } else {
                    self.stream_padding()?;
                    self.part.clear();
                    self.state = Xz::StreamHeader;
                    return self.byte(b);
                }
            }
            Xz::BlockOrIndex => {
                self.part.clear();
                if b == 0 {
                    self.index_size = 1;
                    self.number = Varint::default();
                    self.state = Xz::IndexCount;
                } else {
                    self.part.push(b);
                    self.state = Xz::BlockHeader((usize::from(b) + 1) * 4);
                }
            }
            Xz::BlockHeader(size) => {
                self.part.push(b);
                if self.part.len() == size {
                    self.block_header()?;
                    self.state = Xz::Chunk;
                }
            }
            Xz::Chunk => {
                self.block.compressed = self
                    .block
                    .compressed
                    .checked_add(1)
                    .ok_or_else(|| corrupt("a block out of range".into()))?;
                self.part.clear();
                self.part.push(b);
                match b {
                    0x00 => self.end_of_data()?,
                    0x01 | 0x02 => self.state = Xz::ChunkHeader(3),
                    0x80..=0xbf => self.state = Xz::ChunkHeader(5),
                    0xc0..=0xff => self.state = Xz::ChunkHeader(6),
                    _ => {
                        return Err(corrupt(format!(
                            "an LZMA2 chunk of an unknown kind (0x{b:02x})"
                        )));
                    }
                }
            }
            Xz::ChunkHeader(size) => {
                self.part.push(b);
                if self.part.len() == size {
                    self.chunk_header()?;
                }
            }
            Xz::BlockPadding(left) => {
                if b != 0 {
                    return Err(corrupt("a block's padding is not zero".into()));
                }
                if left > 1 {
                    self.state = Xz::BlockPadding(left - 1);
                } else {
                    self.after_padding()?;
                }
            }
            Xz::IndexCount => {
                self.index_size += 1;
                if let Some(count) = self.number.push(b)? {
                    // Before the decoder makes room for that many records.
                    if count != self.read.blocks {
                        return Err(corrupt(format!(
                            "the index of stream {} lists {count} blocks, the stream has {}",
                            self.streams + 1,
                            self.read.blocks
                        )));
                    }
                    if count == 0 {
                        self.index_padding();
                    } else {
                        self.state = Xz::IndexRecord {
                            left: count,
                            uncompressed: false,
                        };
                    }
                }
            }
            Xz::IndexRecord { left, uncompressed } => {
                self.index_size += 1;
                if let Some(value) = self.number.push(b)? {
                    if !uncompressed {
                        self.unpadded = value;
                        self.state = Xz::IndexRecord {
                            left,
                            uncompressed: true,
                        };
                    } else {
                        self.listed.add(self.unpadded, value)?;
                        if left > 1 {
                            self.state = Xz::IndexRecord {
                                left: left - 1,
                                uncompressed: false,
                            };
                        } else if self.listed != self.read {
                            return Err(corrupt(format!(
                                "the index of stream {} does not list the sizes of its blocks",
                                self.streams + 1
                            )));
                        } else {
                            self.index_padding();
                        }
                    }
                }
            }
            Xz::IndexPadding(left) => {
                self.index_size += 1;
                if b != 0 {
                    return Err(corrupt("the index's padding is not zero".into()));
                }
                if left > 1 {
                    self.state = Xz::IndexPadding(left - 1);
                } else {
                    self.index_padding();
                }
            }
            Xz::Footer => {
                self.part.push(b);
                if self.part.len() == 12 {
                    self.footer()?;
                }
            }
            // Passed over in bulk by `walk`, never a byte at a time.
            Xz::ChunkData(_) | Xz::Check(_) | Xz::IndexCrc(_) => {}
        }
        Ok(())
    }

    fn stream_header(&mut self) -> io::Result<()> {
        let id = self.part[7];
        self.check = match (self.part[6], check_size(id)) {
            (0, Some(size)) => size,
            _ => {
                return Err(corrupt(format!(
                    "stream flags {:02x}{id:02x} of a kind not known",
                    self.part[6]
                )));
            }
        };
        self.check_id = id;
        self.read = Totals::default();
        self.listed = Totals::default();
        self.state = Xz::BlockOrIndex;
        Ok(())
    }

    fn not_a_stream(&self) -> io::Error {
        corrupt(if self.streams == 0 {
            "it does not start with an xz stream header".into()
        } else {
            "bytes after its last stream that are not another stream (trailing data)".into()
        })
    }

    /// A block header, whole in `part`: its dictionary is checked before the decoder has it.
    fn block_header(&mut self) -> io::Result<()> {
        let header = &self.part;
        let bad = || corrupt("a bad block header".into());
        let flags = header[1];
        if flags & 0x3c != 0 {
            return Err(corrupt(format!(
                "block flags 0x{flags:02x} of a kind not known"
            )));
        }
        let mut rest = &header[2..header.len() - 4];
        let stated_compressed = match flags & 0x40 {
            0 => None,
            _ => Some(varint(&mut rest).ok_or_else(bad)?),
        };
        let stated_uncompressed = match flags & 0x80 {
            0 => None,
            _ => Some(varint(&mut rest).ok_or_else(bad)?),
        };
        let mut last = None;
        for _ in 0..=(flags & 0x03) {
            let id = varint(&mut rest).ok_or_else(bad)?;
            let props_len = varint(&mut rest)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(bad)?;
            let props = rest.get(..props_len).ok_or_else(bad)?;
            rest = &rest[props_len..];
            if id == LZMA2 {
                let dictionary = lzma2_dictionary(props)?;
                if dictionary > MAX_DICTIONARY {
                    return Err(bomb(format!(
                        "the xz file asks for a dictionary of {} MiB in block {} of stream {} (at most {} MiB are accepted): refused as a memory bomb",
                        dictionary >> 20,
                        self.read.blocks + 1,
                        self.streams + 1,
                        MAX_DICTIONARY >> 20
                    )));
                }
            }
            last = Some(id);
        }
        if last != Some(LZMA2) {
            return Err(corrupt("a block whose last filter is not LZMA2".into()));
        }
        self.block = Block {
            header: header.len() as u64,
            stated_compressed,
            stated_uncompressed,
            ..Block::default()
        };
        Ok(())
    }

    /// An LZMA2 chunk header, whole in `part`: how much data follows, and what it unpacks to.
    fn chunk_header(&mut self) -> io::Result<()> {
        let p = &self.part;
        let word = |at: usize| u64::from(u16::from_be_bytes([p[at], p[at + 1]]));
        let (unpacked, packed) = if p[0] < 0x80 {
            (word(1) + 1, word(1) + 1)
        } else {
            ((u64::from(p[0] & 0x1f) << 16 | word(1)) + 1, word(3) + 1)
        };
        let overflow = || corrupt("a block out of range".into());
        self.block.compressed = self
            .block
            .compressed
            .checked_add(p.len() as u64 - 1)
            .and_then(|n| n.checked_add(packed))
            .ok_or_else(overflow)?;
        self.block.uncompressed = self
            .block
            .uncompressed
            .checked_add(unpacked)
            .ok_or_else(overflow)?;
        self.state = Xz::ChunkData(packed);
        Ok(())
    }

    /// The end of a block's LZMA2 data: its padding to a multiple of four follows.
    fn end_of_data(&mut self) -> io::Result<()> {
        let size = self
            .block
            .header
            .checked_add(self.block.compressed)
            .ok_or_else(|| corrupt("a block out of range".into()))?;
        match (4 - size % 4) % 4 {
            0 => self.after_padding(),
            n => {
                self.state = Xz::BlockPadding(n);
                Ok(())
            }
        }
    }

    fn after_padding(&mut self) -> io::Result<()> {
        match self.check {
            0 => self.block_end(),
            n => {
                self.state = Xz::Check(n);
                Ok(())
            }
        }
    }

    /// A block read to its check: its header's sizes, if stated, must be what it has.
    fn block_end(&mut self) -> io::Result<()> {
        let block = std::mem::take(&mut self.block);
        let differs = |stated: Option<u64>, actual| stated.is_some_and(|s| s != actual);
        if differs(block.stated_compressed, block.compressed)
            || differs(block.stated_uncompressed, block.uncompressed)
        {
            return Err(corrupt(format!(
                "the header of block {} of stream {} states sizes the block does not have",
                self.read.blocks + 1,
                self.streams + 1
            )));
        }
        let unpadded = block
            .header
            .checked_add(block.compressed)
            .and_then(|n| n.checked_add(self.check))
            .ok_or_else(|| corrupt("a block out of range".into()))?;
        self.read.add(unpadded, block.uncompressed)?;
        self.state = Xz::BlockOrIndex;
        Ok(())
    }

    /// The index's records are read: its padding to a multiple of four, then its CRC-32.
    fn index_padding(&mut self) {
        self.state = match (4 - self.index_size % 4) % 4 {
            0 => {
                self.index_size += 4;
                Xz::IndexCrc(4)
            }
            n => Xz::IndexPadding(n),
        };
    }

    fn footer(&mut self) -> io::Result<()> {
        let p = &self.part;
        let backward = (u64::from(u32::from_le_bytes([p[4], p[5], p[6], p[7]])) + 1) * 4;
        if p[10..12] != *b"YZ" || p[8..10] != [0, self.check_id] || backward != self.index_size {
            return Err(corrupt(format!(
                "stream {} has no footer where its index ends",
                self.streams + 1
            )));
        }
        self.streams += 1;
        self.padding = 0;
        self.state = Xz::StreamPadding;
        Ok(())
    }

    /// Stream padding comes in fours (the format's own rule, which `xz -t` checks).
    fn stream_padding(&self) -> io::Result<()> {
        if !self.padding.is_multiple_of(4) {
            return Err(corrupt(format!(
                "{} bytes of padding after stream {} (padding comes in fours)",
                self.padding, self.streams
            )));
        }
        Ok(())
    }

    /// The end of the file: only between streams.
    fn end(&self) -> io::Result<()> {
        match self.state {
            Xz::StreamPadding => self.stream_padding(),
            _ => Err(corrupt(format!(
                "it ends within stream {} (truncated)",
                self.streams + 1
            ))),
        }
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

/// The dictionary size an LZMA2 filter's properties ask for.
fn lzma2_dictionary(props: &[u8]) -> io::Result<u64> {
    match props {
        [40] => Ok(u64::from(u32::MAX)),
        [bits @ 0..40] => Ok(u64::from(2 | (bits & 1)) << (bits / 2 + 11)),
        _ => Err(corrupt("an LZMA2 filter with bad properties".into())),
    }
}

/// An xz multibyte integer (at most 9 bytes).
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..9 {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = format!("{size:011o}\0");
        h[124..136].copy_from_slice(octal.as_bytes());
        h[156] = kind;
        h
    }

    fn drain(stream: Vec<u8>, limit: u64) -> io::Result<()> {
        let mut guarded = TarStream::new(stream.as_slice(), limit);
        let mut sink = [0u8; 700];
        while guarded.read(&mut sink)? > 0 {}
        Ok(())
    }

    #[test]
    fn a_tar_size_at_the_end_of_the_range_is_refused_not_wrapped() {
        // A base-256 size of 2^64 - 1: padded to 512 it wraps (a panic in a debug build, a
        // body of 0 bytes in a release one, and the next header read out of the body).
        let mut huge = header("bin/simd", b'0', 0);
        huge[124..136].copy_from_slice(&[
            0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        huge.extend(vec![0u8; 1024]);
        let e = drain(huge, 1 << 40).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        // The largest size that pads within range is followed.
        let mut large = header("bin/simd", b'0', 0);
        large[124..136].copy_from_slice(&[
            0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00,
        ]);
        drain(large, 1 << 40).unwrap();
    }

    #[test]
    fn what_follows_the_end_of_a_tar_is_read_but_not_as_headers() {
        // After the end of the archive: not headers (a size that is not octal would be refused
        // as one), but still within the limit.
        let mut tar = header("bin/simd", b'0', 5);
        tar.extend(vec![1u8; 512]);
        tar.extend(vec![0u8; 1024]);
        let entries = tar.len();
        tar.extend(header("junk", b'0', 0).iter().map(|_| b'z'));
        let entries_of =
            |stream: &mut TarStream<&[u8]>| tar::Archive::new(stream).entries().unwrap().count();
        let mut stream = TarStream::new(tar.as_slice(), 1 << 20);
        assert_eq!(entries_of(&mut stream), 1);
        stream.finish().unwrap();
        let mut stream = TarStream::new(tar.as_slice(), entries as u64 + 100);
        assert_eq!(entries_of(&mut stream), 1);
        let e = stream.finish().unwrap_err();
        assert!(e.to_string().contains("decompression bomb"), "{e}");
    }

    #[test]
    fn long_names_and_pax_headers_are_capped_and_pax_sizes_followed() {
        let mut ok = header("././@LongLink", b'L', 300);
        ok.extend(vec![b'n'; 512]);
        ok.extend(header("bin/simd", b'0', 5));
        ok.extend(vec![1u8; 512]);
        ok.extend(vec![0u8; 1024]);
        drain(ok, 1 << 20).unwrap();
        // A 4 GiB long name: refused at its header, before its body is read.
        let mut bomb = header("././@LongLink", b'L', 4 << 30);
        bomb.extend(vec![0u8; 512]);
        let e = drain(bomb, 1 << 40).unwrap_err();
        assert!(
            e.to_string().contains("a long name of 4294967296 bytes"),
            "{e}"
        );
        // A PAX header's size= governs the next entry's body.
        let pax_body = b"16 size=1100000\n".to_vec();
        let mut pax = header("PaxHeaders/simd", b'x', pax_body.len() as u64);
        let mut body = pax_body.clone();
        body.resize(512, 0);
        pax.extend(body);
        pax.extend(header("bin/simd", b'0', 0));
        pax.extend(vec![7u8; 1_100_000usize.div_ceil(512) * 512]);
        // The next header is found where the PAX size says: a long name bomb right after.
        pax.extend(header("././@LongLink", b'L', 1 << 30));
        assert!(
            drain(pax, 1 << 40)
                .unwrap_err()
                .to_string()
                .contains("long name")
        );
        assert!(
            drain(vec![0u8; 4096], 1000)
                .unwrap_err()
                .to_string()
                .contains("more than 1000 bytes")
        );
    }
}
