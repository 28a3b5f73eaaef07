//! A tar stream read along its headers, between the decompressor and the `tar` crate: the bodies
//! the crate reads whole into memory are capped, sparse entries refused, the whole stream capped.

use std::io::{self, Read};

use super::bomb;

/// The most a long name, long link or PAX header may take.
const MAX_EXTENSION: u64 = 64 << 10;

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
