//! `/etc/ld.so.cache`, written by `ldconfig`, read as glibc's loader reads it
//! (`sysdeps/generic/dl-cache.h`, `elf/dl-cache.c`): the "glibc-ld.so.cache1.1" table, alone
//! (glibc 2.32 and later) or after the old "ld.so-1.7.0" table (older ldconfig wrote both).
//!
//! Layout: the old table is its 11-byte magic, `nlibs` (u32 at offset 12) and 12-byte entries
//! (flags, key, value); its strings are relative to the end of those entries. The new table
//! starts there, aligned to 8: 17-byte magic, 3-byte version, `nlibs`, `len_strings`, a flags
//! byte (byte order: 2 little, 3 big), padding, `extension_offset`, 12 unused bytes (48 bytes),
//! then 24-byte entries (flags i32, key u32, value u32, osversion u32, hwcap u64); its strings
//! are relative to its own start.

pub(super) const PATH: &str = "/etc/ld.so.cache";
/// A real cache is tens of kilobytes; one larger than this is not read.
pub(super) const MAX_BYTES: u64 = 64 << 20;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
/// Longest string read from the table (a library name or path).
const MAX_STRING: usize = 4096;

/// One library of the cache: its soname and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// FLAG_ELF_LIBC6 (3) with the architecture's bits (x86-64: 0x0303, aarch64: 0x0a03).
    pub flags: i32,
    pub key: String,
    pub value: String,
    /// Non-zero for a glibc-hwcaps or legacy hwcap subdirectory's copy.
    pub hwcap: u64,
}

/// Why a cache cannot be read: the loader would ignore it, so the preflight does too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CacheError {
    #[error("is not an ld.so.cache (no known magic)")]
    NoMagic,
    #[error("is cut short: {0}")]
    Short(&'static str),
    #[error("is written in the other byte order")]
    ByteOrder,
}

/// The entries of a cache file, in its order.
pub(super) fn parse(bytes: &[u8]) -> Result<Vec<Entry>, CacheError> {
    if bytes.starts_with(NEW_MAGIC) {
        return parse_new(bytes, 0);
    }
    if !bytes.starts_with(OLD_MAGIC) {
        return Err(CacheError::NoMagic);
    }
    let nlibs = u32_at(bytes, 12, true).ok_or(CacheError::Short("the old header"))? as usize;
    let end = nlibs
        .checked_mul(OLD_ENTRY)
        .and_then(|n| n.checked_add(OLD_HEADER))
        .filter(|&end| end <= bytes.len())
        .ok_or(CacheError::Short("the old entries"))?;
    let aligned = end
        .checked_add(7)
        .ok_or(CacheError::Short("the old entries"))?
        & !7;
    if bytes
        .get(aligned..)
        .is_some_and(|rest| rest.starts_with(NEW_MAGIC))
    {
        return parse_new(bytes, aligned);
    }
    let mut entries = Vec::with_capacity(nlibs.min(bytes.len() / OLD_ENTRY));
    for i in 0..nlibs {
        let at = OLD_HEADER + i * OLD_ENTRY;
        let field =
            |k: usize| u32_at(bytes, at + 4 * k, true).ok_or(CacheError::Short("an old entry"));
        entries.push(Entry {
            flags: field(0)? as i32,
            key: string(bytes, end, field(1)?)?,
            value: string(bytes, end, field(2)?)?,
            hwcap: 0,
        });
    }
    Ok(entries)
}

fn parse_new(bytes: &[u8], base: usize) -> Result<Vec<Entry>, CacheError> {
    let short = CacheError::Short("the header");
    let header = bytes
        .get(base..)
        .filter(|h| h.len() >= NEW_HEADER)
        .ok_or(short)?;
    let little = match header[28] {
        2 => true,
        3 => false,
        // 0: written before the byte order was recorded, in the writer's (this host's) order.
        _ => cfg!(target_endian = "little"),
    };
    if little != cfg!(target_endian = "little") {
        return Err(CacheError::ByteOrder);
    }
    let nlibs = u32_at(header, 20, little).ok_or(CacheError::Short("the header"))? as usize;
    nlibs
        .checked_mul(NEW_ENTRY)
        .and_then(|n| n.checked_add(NEW_HEADER))
        .filter(|&end| end <= header.len())
        .ok_or(CacheError::Short("the entries"))?;
    let mut entries = Vec::with_capacity(nlibs);
    for i in 0..nlibs {
        let at = NEW_HEADER + i * NEW_ENTRY;
        let field =
            |k: usize| u32_at(header, at + 4 * k, little).ok_or(CacheError::Short("an entry"));
        let lo = u64::from(field(4)?);
        let hi = u64::from(field(5)?);
        entries.push(Entry {
            flags: field(0)? as i32,
            key: string(bytes, base, field(1)?)?,
            value: string(bytes, base, field(2)?)?,
            hwcap: if little { hi << 32 | lo } else { lo << 32 | hi },
        });
    }
    Ok(entries)
}

fn u32_at(bytes: &[u8], at: usize, little: bool) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

/// A NUL-terminated string at `base + off`.
fn string(bytes: &[u8], base: usize, off: u32) -> Result<String, CacheError> {
    let start = base
        .checked_add(off as usize)
        .ok_or(CacheError::Short("a string"))?;
    let rest = bytes.get(start..).ok_or(CacheError::Short("a string"))?;
    let rest = &rest[..rest.len().min(MAX_STRING + 1)];
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(CacheError::Short("a string"))?;
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// The flags glibc accepts for a program of this machine and class (`_dl_cache_check_flags`:
/// 1, the old libc5-era ELF flag, or the architecture's default id). `None`: not known here,
/// every entry is a candidate and the library's own header decides.
pub(super) fn default_id(machine: u16, class64: bool) -> Option<i32> {
    const FLAG_ELF_LIBC6: i32 = 3;
    match (machine, class64) {
        (62, true) => Some(0x0300 | FLAG_ELF_LIBC6), // FLAG_X8664_LIB64
        (62, false) => Some(0x0800 | FLAG_ELF_LIBC6), // FLAG_X8664_LIBX32
        (183, true) => Some(0x0a00 | FLAG_ELF_LIBC6), // FLAG_AARCH64_LIB64
        (3, false) => Some(FLAG_ELF_LIBC6),
        _ => None,
    }
}

/// Whether the loader would take this entry for a program of `machine`/`class64`.
pub(super) fn accepts(entry: &Entry, machine: u16, class64: bool) -> bool {
    match default_id(machine, class64) {
        Some(id) => entry.flags == 1 || entry.flags == id,
        None => true,
    }
}
