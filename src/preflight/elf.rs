//! One file read as the kernel and glibc's loader read it: a script's `#!` line, or an ELF's
//! identity, interpreter and dynamic section (needed libraries, search paths, symbol versions).
//!
//! Everything is found through the program headers, as the loader finds it (section headers may
//! be stripped and the loader never reads them). The file is read through `object`'s
//! [`ReadCache`]: only the ranges asked for are read, each bounded below, so a 2 GiB node binary
//! costs a few kilobytes of reads and memory.

use std::fs::File;

use object::elf;
use object::read::elf::{Dyn as _, FileHeader, ProgramHeader as _};
use object::{Endianness, ReadCache, ReadRef};

/// The kernel's bound on a program header table (fs/binfmt_elf.c `load_elf_phdrs`).
const MAX_PHDRS_BYTES: u64 = 64 * 1024;
/// The kernel's bound on PT_INTERP (PATH_MAX).
const MAX_INTERP: u64 = 4096;
/// Bounds on what a real dynamic section and string table hold, with a wide margin.
const MAX_DYNAMIC_BYTES: u64 = 1 << 20;
const MAX_STRTAB: u64 = 64 << 20;
/// Version entries read at most per file (glibc itself has a few hundred).
const MAX_VERSION_ENTRIES: usize = 1 << 16;
/// The kernel reads this much of a script for its `#!` line (BINPRM_BUF_SIZE).
const SHEBANG_MAX: usize = 256;

/// What an ELF says of itself in its first bytes: the loader accepts a library only when these
/// match the program's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ident {
    pub class64: bool,
    pub little: bool,
    pub machine: u16,
    pub e_type: u16,
}

/// A version the file needs from one of its libraries.
#[derive(Debug, Clone)]
pub(super) struct NeedVersion {
    pub name: String,
    /// VER_FLG_WEAK: the loader does not fail when it is missing.
    pub weak: bool,
}

/// The `.gnu.version_r` entry of one library: the versions needed from it.
#[derive(Debug, Clone)]
pub(super) struct Need {
    pub file: String,
    pub versions: Vec<NeedVersion>,
}

/// An ELF file as the loader sees it.
#[derive(Debug, Clone)]
pub(super) struct Object {
    pub ident: Ident,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    pub soname: Option<String>,
    pub rpath: Option<String>,
    pub runpath: Option<String>,
    /// DF_1_NODEFLIB: neither the cache nor the default paths are searched for its needs.
    pub nodeflib: bool,
    pub verneed: Vec<Need>,
    /// `None`: no DT_VERDEF (the loader then accepts any version asked of it).
    pub verdef: Option<Vec<String>>,
}

/// What a file is, read from its start.
#[derive(Debug)]
pub(super) enum Kind {
    Elf(Box<Object>),
    /// A script, with the interpreter its `#!` line names (empty when it names none).
    Script(String),
    /// Neither: what it looks like, in words.
    Other(&'static str),
}

/// Reads what `file` is. An ELF that cannot be parsed is an error naming what is wrong.
pub(super) fn read(file: File) -> Result<Kind, String> {
    let mut head = [0u8; SHEBANG_MAX];
    let n = read_head(&file, &mut head).map_err(|e| format!("cannot be read: {e}"))?;
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        return Ok(Kind::Script(shebang(rest)));
    }
    if !head.starts_with(&elf::ELFMAG) {
        return Ok(Kind::Other(describe(head)));
    }
    let cache = ReadCache::new(file);
    let object = match head.get(EI_CLASS) {
        Some(&elf::ELFCLASS64) => parse::<elf::FileHeader64<Endianness>>(&cache),
        Some(&elf::ELFCLASS32) => parse::<elf::FileHeader32<Endianness>>(&cache),
        _ => Err("its ELF class is neither 32- nor 64-bit".to_string()),
    }?;
    Ok(Kind::Elf(Box::new(object)))
}

/// Only the identity of a candidate library, as the loader checks it before using one.
pub(super) fn ident(file: &File) -> Option<Ident> {
    let mut head = [0u8; 64];
    let n = read_head(file, &mut head).ok()?;
    let head = &head[..n];
    if !head.starts_with(&elf::ELFMAG) || head.len() < 20 {
        return None;
    }
    if head[EI_VERSION] != elf::EV_CURRENT {
        return None;
    }
    let little = match head[EI_DATA] {
        elf::ELFDATA2LSB => true,
        elf::ELFDATA2MSB => false,
        _ => return None,
    };
    let class64 = match head[EI_CLASS] {
        elf::ELFCLASS64 => true,
        elf::ELFCLASS32 => false,
        _ => return None,
    };
    let u16_at = |i: usize| {
        let b = [head[i], head[i + 1]];
        if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    Some(Ident {
        class64,
        little,
        machine: u16_at(18),
        e_type: u16_at(16),
    })
}

/// The file's first bytes, read at offset 0 whatever its position.
fn read_head(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The interpreter of a `#!` line, as the kernel splits it: blanks skipped, up to the next
/// blank or the line's end.
fn shebang(rest: &[u8]) -> String {
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let interp = line
        .split(|&b| b == b' ' || b == b'\t')
        .find(|part| !part.is_empty())
        .unwrap_or_default();
    String::from_utf8_lossy(interp).into_owned()
}

/// What a file that is neither an ELF nor a script looks like.
fn describe(head: &[u8]) -> &'static str {
    if head.is_empty() {
        "an empty file"
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "a gzip archive"
    } else if head.starts_with(b"PK\x03\x04") {
        "a zip archive"
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        "an xz archive"
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "a zstd archive"
    } else if head.starts_with(b"BZh") {
        "a bzip2 archive"
    } else if head.trim_ascii_start().starts_with(b"<") {
        "an HTML or XML document (an error page?)"
    } else if head.len() > 0x105 && &head[0x101..0x106] == b"ustar" {
        "a tar archive"
    } else {
        "data of an unknown kind"
    }
}

type Cache = ReadCache<File>;

/// Offsets in `e_ident`.
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const EI_VERSION: usize = 6;

/// A program header's loadable range: (vaddr, file offset, file size).
type Load = (u64, u64, u64);

fn parse<Elf: FileHeader<Endian = Endianness>>(data: &Cache) -> Result<Object, String> {
    let header = Elf::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let ident = Ident {
        class64: header.is_type_64(),
        little: endian == Endianness::Little,
        machine: header.e_machine(endian),
        e_type: header.e_type(endian),
    };
    let phnum = header.phnum(endian, data).map_err(|e| e.to_string())?;
    let phsize = u64::from(header.e_phentsize(endian));
    if (phnum as u64)
        .checked_mul(phsize)
        .is_none_or(|n| n > MAX_PHDRS_BYTES)
    {
        return Err(format!(
            "its program header table ({phnum} entries) is too large"
        ));
    }
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?;
    let mut interpreter = None;
    let mut dynamic = None;
    let mut loads: Vec<Load> = Vec::new();
    for ph in phdrs {
        let (offset, size) = (ph.p_offset(endian).into(), ph.p_filesz(endian).into());
        match ph.p_type(endian) {
            elf::PT_INTERP => {
                if size > MAX_INTERP {
                    return Err("its interpreter path is longer than PATH_MAX".to_string());
                }
                let bytes = data
                    .read_bytes_at(offset, size)
                    .map_err(|()| "its interpreter path lies outside the file")?;
                let path = bytes.split(|&b| b == 0).next().unwrap_or_default();
                interpreter = Some(String::from_utf8_lossy(path).into_owned());
            }
            elf::PT_DYNAMIC => dynamic = Some((offset, size)),
            elf::PT_LOAD => loads.push((ph.p_vaddr(endian).into(), offset, size)),
            _ => {}
        }
    }
    let mut object = Object {
        ident,
        interpreter,
        needed: Vec::new(),
        soname: None,
        rpath: None,
        runpath: None,
        nodeflib: false,
        verneed: Vec::new(),
        verdef: None,
    };
    if let Some((offset, size)) = dynamic {
        read_dynamic::<Elf>(data, endian, offset, size, &loads, &mut object)?;
    }
    Ok(object)
}

/// The values of the dynamic section's entries the loader acts on.
#[derive(Default)]
struct Tags {
    strtab: Option<u64>,
    strsz: u64,
    needed: Vec<u64>,
    soname: Option<u64>,
    rpath: Option<u64>,
    runpath: Option<u64>,
    flags_1: u64,
    verneed: Option<u64>,
    verneednum: u64,
    verdef: Option<u64>,
    verdefnum: u64,
}

fn read_dynamic<Elf: FileHeader<Endian = Endianness>>(
    data: &Cache,
    endian: Endianness,
    offset: u64,
    size: u64,
    loads: &[Load],
    object: &mut Object,
) -> Result<(), String> {
    if size > MAX_DYNAMIC_BYTES {
        return Err(format!("its dynamic section ({size} bytes) is too large"));
    }
    let count = (size / std::mem::size_of::<Elf::Dyn>() as u64) as usize;
    let dyns = data
        .read_slice_at::<Elf::Dyn>(offset, count)
        .map_err(|()| "its dynamic section lies outside the file")?;
    let mut t = Tags::default();
    for d in dyns {
        let tag: i64 = d.d_tag(endian).into();
        let val: u64 = d.d_val(endian).into();
        match tag {
            elf::DT_NULL => break,
            elf::DT_STRTAB => t.strtab = Some(val),
            elf::DT_STRSZ => t.strsz = val,
            elf::DT_NEEDED => t.needed.push(val),
            elf::DT_SONAME => t.soname = Some(val),
            elf::DT_RPATH => t.rpath = Some(val),
            elf::DT_RUNPATH => t.runpath = Some(val),
            elf::DT_FLAGS_1 => t.flags_1 = val,
            elf::DT_VERNEED => t.verneed = Some(val),
            elf::DT_VERNEEDNUM => t.verneednum = val,
            elf::DT_VERDEF => t.verdef = Some(val),
            elf::DT_VERDEFNUM => t.verdefnum = val,
            _ => {}
        }
    }
    let strtab = match t.strtab {
        None if t.needed.is_empty() => return Ok(()),
        None => return Err("its dynamic section has no string table".to_string()),
        Some(addr) => {
            if t.strsz > MAX_STRTAB {
                return Err(format!(
                    "its dynamic string table ({} bytes) is too large",
                    t.strsz
                ));
            }
            let off =
                file_offset(loads, addr).ok_or("its dynamic string table is not in the file")?;
            data.read_bytes_at(off, t.strsz)
                .map_err(|()| "its dynamic string table lies outside the file")?
        }
    };
    let s = |off: u64| string(strtab, off);
    object.needed = t.needed.iter().map(|&o| s(o)).collect::<Result<_, _>>()?;
    object.soname = t.soname.map(s).transpose()?;
    object.rpath = t.rpath.map(s).transpose()?;
    object.runpath = t.runpath.map(s).transpose()?;
    object.nodeflib = t.flags_1 & u64::from(elf::DF_1_NODEFLIB) != 0;
    if let Some(addr) = t.verneed {
        let off = file_offset(loads, addr).ok_or("its version needs are not in the file")?;
        object.verneed = verneed(data, endian, off, t.verneednum, strtab)?;
    }
    if let Some(addr) = t.verdef {
        let off = file_offset(loads, addr).ok_or("its version definitions are not in the file")?;
        object.verdef = Some(verdef(data, endian, off, t.verdefnum, strtab)?);
    }
    Ok(())
}

/// Where a virtual address's bytes are in the file: inside the file part of a PT_LOAD.
fn file_offset(loads: &[Load], addr: u64) -> Option<u64> {
    loads.iter().find_map(|&(vaddr, offset, filesz)| {
        let delta = addr.checked_sub(vaddr)?;
        (delta < filesz)
            .then(|| offset.checked_add(delta))
            .flatten()
    })
}

fn string(strtab: &[u8], off: u64) -> Result<String, String> {
    let rest = usize::try_from(off)
        .ok()
        .and_then(|o| strtab.get(o..))
        .ok_or("a dynamic string lies outside its table")?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or("a dynamic string is not terminated")?;
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn at(base: u64, delta: u32) -> Result<u64, String> {
    base.checked_add(u64::from(delta))
        .ok_or_else(|| "a version entry's offset overflows".to_string())
}

/// `.gnu.version_r`: per library, the versions needed from it (glibc's `_dl_check_map_versions`).
fn verneed(
    data: &Cache,
    e: Endianness,
    mut off: u64,
    num: u64,
    strtab: &[u8],
) -> Result<Vec<Need>, String> {
    let bad = |()| "its version needs lie outside the file".to_string();
    let mut needs = Vec::new();
    let mut budget = MAX_VERSION_ENTRIES;
    for _ in 0..num.min(MAX_VERSION_ENTRIES as u64) {
        let vn = data.read_at::<elf::Verneed<Endianness>>(off).map_err(bad)?;
        let mut need = Need {
            file: string(strtab, vn.vn_file.get(e).into())?,
            versions: Vec::new(),
        };
        let mut aux = at(off, vn.vn_aux.get(e))?;
        for _ in 0..vn.vn_cnt.get(e) {
            budget = budget
                .checked_sub(1)
                .ok_or("it has too many version needs")?;
            let vna = data.read_at::<elf::Vernaux<Endianness>>(aux).map_err(bad)?;
            need.versions.push(NeedVersion {
                name: string(strtab, vna.vna_name.get(e).into())?,
                weak: vna.vna_flags.get(e) & elf::VER_FLG_WEAK != 0,
            });
            match vna.vna_next.get(e) {
                0 => break,
                next => aux = at(aux, next)?,
            }
        }
        needs.push(need);
        match vn.vn_next.get(e) {
            0 => break,
            next => off = at(off, next)?,
        }
    }
    Ok(needs)
}

/// `.gnu.version_d`: the names of the versions a library defines (each entry's first aux).
fn verdef(
    data: &Cache,
    e: Endianness,
    mut off: u64,
    num: u64,
    strtab: &[u8],
) -> Result<Vec<String>, String> {
    let bad = |()| "its version definitions lie outside the file".to_string();
    let mut names = Vec::new();
    for _ in 0..num.min(MAX_VERSION_ENTRIES as u64) {
        let vd = data.read_at::<elf::Verdef<Endianness>>(off).map_err(bad)?;
        if vd.vd_cnt.get(e) > 0 {
            let vda = data
                .read_at::<elf::Verdaux<Endianness>>(at(off, vd.vd_aux.get(e))?)
                .map_err(bad)?;
            names.push(string(strtab, vda.vda_name.get(e).into())?);
        }
        match vd.vd_next.get(e) {
            0 => break,
            next => off = at(off, next)?,
        }
    }
    Ok(names)
}
