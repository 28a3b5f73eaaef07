//! What the decompressors and the `tar` crate would otherwise let a hostile archive do to memory:
//!
//! - [`TarStream`] sits between the decompressed stream and the `tar` crate and reads along the
//!   tar headers: the bodies of GNU long names and links and of PAX headers, which the crate
//!   reads whole into memory, are capped at 64 KiB each; sparse entries are refused; and the
//!   whole stream is capped (an archive of skipped entries is a bomb all the same).
//! - [`check_xz`] reads an xz file's index and block headers before anything decodes it: the
//!   decoder allocates each block's whole dictionary at once, so a dictionary over 256 MiB (xz
//!   itself uses at most 64 MiB) is refused, as are concatenated streams.

use std::io::{self, Read, Seek, SeekFrom};

/// The most a long name, long link or PAX header may take.
const MAX_EXTENSION: u64 = 64 << 10;
/// The largest xz dictionary accepted.
const MAX_DICTIONARY: u64 = 256 << 20;

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
        self.body_left = size.div_ceil(512) * 512;
        Ok(())
    }
}

impl<R: Read> Read for TarStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(bomb(format!(
                "the archive unpacks to more than {} bytes (the most a node binary with its libraries may take, or the free space left): refused as a decompression bomb",
                self.limit
            )));
        }
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

/// Checks an xz file before it is decoded: one stream, each block's LZMA2 dictionary at most
/// 256 MiB, found through the stream's index (every block, not only the first).
pub fn check_xz(file: &mut std::fs::File) -> Result<(), String> {
    let fail = |why: &str| format!("not a valid xz file: {why}");
    let len = file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    let mut footer = [0u8; 12];
    if len < 24 {
        return Err(fail("too short"));
    }
    read_at(file, len - 12, &mut footer)?;
    if &footer[10..12] != b"YZ" {
        return Err(fail(
            "no stream footer at its end (concatenated or padded streams are not accepted)",
        ));
    }
    let index_size = (u64::from(u32::from_le_bytes([
        footer[4], footer[5], footer[6], footer[7],
    ])) + 1)
        * 4;
    let index_at = (len - 12)
        .checked_sub(index_size)
        .ok_or_else(|| fail("its index is larger than the file"))?;
    if index_size > 1 << 24 {
        return Err(fail("its index is larger than 16 MiB"));
    }
    let mut index = vec![0u8; index_size as usize];
    read_at(file, index_at, &mut index)?;
    if index.first() != Some(&0) {
        return Err(fail("no index where the footer says"));
    }
    let mut rest = &index[1..];
    let records = varint(&mut rest).ok_or_else(|| fail("a bad index"))?;
    let mut block_at = 12u64; // after the stream header
    for _ in 0..records {
        let unpadded = varint(&mut rest).ok_or_else(|| fail("a bad index record"))?;
        let _uncompressed = varint(&mut rest).ok_or_else(|| fail("a bad index record"))?;
        let dictionary = block_dictionary(file, block_at).map_err(|why| fail(&why))?;
        if dictionary > MAX_DICTIONARY {
            return Err(format!(
                "the xz file asks for a dictionary of {} MiB (at most {} MiB are accepted): refused as a memory bomb",
                dictionary >> 20,
                MAX_DICTIONARY >> 20
            ));
        }
        block_at = block_at
            .checked_add(unpadded.div_ceil(4) * 4)
            .filter(|&at| at <= index_at)
            .ok_or_else(|| fail("a block runs past the index"))?;
    }
    Ok(())
}

/// The LZMA2 dictionary size of the block whose header starts at `at` (0 without LZMA2).
fn block_dictionary(file: &mut std::fs::File, at: u64) -> Result<u64, String> {
    let mut first = [0u8; 1];
    read_at(file, at, &mut first)?;
    if first[0] == 0 {
        return Err("an index where a block header should be".into());
    }
    let size = (usize::from(first[0]) + 1) * 4;
    let mut header = vec![0u8; size];
    read_at(file, at, &mut header)?;
    let flags = header[1];
    let mut rest = &header[2..size - 4];
    if flags & 0x40 != 0 {
        varint(&mut rest).ok_or("a bad block header")?;
    }
    if flags & 0x80 != 0 {
        varint(&mut rest).ok_or("a bad block header")?;
    }
    let mut dictionary = 0;
    for _ in 0..=(flags & 0x03) {
        let id = varint(&mut rest).ok_or("a bad filter")?;
        let props_len = varint(&mut rest).ok_or("a bad filter")? as usize;
        let props = rest.get(..props_len).ok_or("a bad filter")?;
        rest = &rest[props_len..];
        if id == 0x21 {
            let bits = *props
                .first()
                .ok_or("an LZMA2 filter without its dictionary")?;
            if bits > 40 {
                return Err("an LZMA2 dictionary size out of range".into());
            }
            dictionary = if bits == 40 {
                u64::from(u32::MAX)
            } else {
                u64::from(2 | (bits & 1)) << (bits / 2 + 11)
            };
        }
    }
    Ok(dictionary)
}

fn read_at(file: &mut std::fs::File, at: u64, buf: &mut [u8]) -> Result<(), String> {
    file.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    file.read_exact(buf)
        .map_err(|e| format!("not a valid xz file: {e}"))
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
