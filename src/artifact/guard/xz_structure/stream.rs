//! The stream around an xz file's blocks: its header (the check type), its index (checked
//! against the blocks read, before the decoder makes room for its records), its footer, and the
//! padding between streams.

use std::io::{self, Read};

use super::{Totals, Xz, XzStream, check_size, corrupt};

/// The bytes an xz stream starts with.
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];

impl<R: Read> XzStream<R> {
    pub(super) fn stream_header_byte(&mut self, b: u8) -> io::Result<()> {
        self.part.push(b);
        // Refused at the first byte that is not the magic (before the decoder has it).
        if self.part.len() <= XZ_MAGIC.len() && self.part[..] != XZ_MAGIC[..self.part.len()] {
            return Err(self.not_a_stream());
        }
        if self.part.len() == 12 {
            self.stream_header()?;
        }
        Ok(())
    }

    pub(super) fn stream_padding_byte(&mut self, b: u8) -> io::Result<()> {
        if b == 0 {
            self.padding += 1;
            return Ok(());
        }
        self.stream_padding()?;
        self.part.clear();
        self.state = Xz::StreamHeader;
        self.byte(b)
    }

    /// A byte of the index's record count.
    pub(super) fn index_count(&mut self, b: u8) -> io::Result<()> {
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
        Ok(())
    }

    /// A byte of an index record: its unpadded size, then its uncompressed size.
    pub(super) fn index_record(&mut self, left: u64, uncompressed: bool, b: u8) -> io::Result<()> {
        self.index_size += 1;
        let Some(value) = self.number.push(b)? else {
            return Ok(());
        };
        if !uncompressed {
            self.unpadded = value;
            self.state = Xz::IndexRecord {
                left,
                uncompressed: true,
            };
            return Ok(());
        }
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
        Ok(())
    }

    pub(super) fn index_padding_byte(&mut self, left: u64, b: u8) -> io::Result<()> {
        self.index_size += 1;
        if b != 0 {
            return Err(corrupt("the index's padding is not zero".into()));
        }
        if left > 1 {
            self.state = Xz::IndexPadding(left - 1);
        } else {
            self.index_padding();
        }
        Ok(())
    }

    pub(super) fn footer_byte(&mut self, b: u8) -> io::Result<()> {
        self.part.push(b);
        if self.part.len() == 12 {
            self.footer()?;
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
    pub(super) fn end(&self) -> io::Result<()> {
        match self.state {
            Xz::StreamPadding => self.stream_padding(),
            _ => Err(corrupt(format!(
                "it ends within stream {} (truncated)",
                self.streams + 1
            ))),
        }
    }
}
