//! The blocks of an xz stream and their LZMA2 chunks: each block header's dictionary capped
//! before the decoder has it, the chunks' headers followed to find where a block ends, its
//! padding and check, and its stated sizes checked against what it holds.

use std::io::{self, Read};

use super::{Block, Xz, XzStream, corrupt};
use crate::artifact::guard::bomb;

/// The largest xz dictionary accepted.
const MAX_DICTIONARY: u64 = 256 << 20;
/// The filter id of LZMA2, the last filter of every xz block.
const LZMA2: u64 = 0x21;

impl<R: Read> XzStream<R> {
    /// The first byte of a block header (its size, in fours, less one), or 0: the index.
    pub(super) fn block_or_index(&mut self, b: u8) {
        self.part.clear();
        if b == 0 {
            self.index_size = 1;
            self.number = super::Varint::default();
            self.state = Xz::IndexCount;
        } else {
            self.part.push(b);
            self.state = Xz::BlockHeader((usize::from(b) + 1) * 4);
        }
    }

    pub(super) fn block_header_byte(&mut self, size: usize, b: u8) -> io::Result<()> {
        self.part.push(b);
        if self.part.len() == size {
            self.block_header()?;
            self.state = Xz::Chunk;
        }
        Ok(())
    }

    /// An LZMA2 chunk's control byte: the kind of chunk, or the end of the block's data.
    pub(super) fn chunk(&mut self, b: u8) -> io::Result<()> {
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
        Ok(())
    }

    pub(super) fn chunk_header_byte(&mut self, size: usize, b: u8) -> io::Result<()> {
        self.part.push(b);
        if self.part.len() == size {
            self.chunk_header()?;
        }
        Ok(())
    }

    pub(super) fn block_padding(&mut self, left: u64, b: u8) -> io::Result<()> {
        if b != 0 {
            return Err(corrupt("a block's padding is not zero".into()));
        }
        if left > 1 {
            self.state = Xz::BlockPadding(left - 1);
        } else {
            self.after_padding()?;
        }
        Ok(())
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
    pub(super) fn block_end(&mut self) -> io::Result<()> {
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
