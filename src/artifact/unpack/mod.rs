//! Unpacking archives safely: regular files and directories only (no symlinks, hard links or
//! devices), no absolute or `..` paths, a cap on the unpacked size and on the number of entries
//! (no decompression bombs), everything written through the staging folder's capability handle.
//!
//! The formats are go-getter's: tar, with gzip, xz, bzip2 or zstd around it or not; zip; and a
//! single gzip, xz, bzip2 or zstd file (the binary itself). Which one is decided from the bytes
//! (`detect`), with the URL's extension or `?archive=` where the bytes leave it open.

use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;
use wasmvisor_plugin_support::getter::{Archive, Format};

use super::Limits;
use zstd::Zstd;

mod zstd;

/// Why an archive was not unpacked (or a download not decoded), in the words the operator sees.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("?archive={} but the bytes are {bytes}", .named.name())]
    NotTheNamedArchive { named: Format, bytes: &'static str },
    #[error("the URL names a .{} file but the bytes are {bytes}", .extension.name())]
    NotTheExtension {
        extension: Format,
        bytes: &'static str,
    },
    #[error("cannot decompress the {} download: {source}", .format.name())]
    Decompress { format: Format, source: io::Error },
    #[error("not a zstd stream: {0}")]
    NotZstd(io::Error),
    #[error("{} is not a compression", .0.name())]
    NotACompression(Format),
    #[error("the archive entry {0} escapes the archive")]
    Escapes(String),
    #[error("the archive entry {:?} has no name", .0.display())]
    NoName(PathBuf),
    #[error("cannot create {}: {source}", .path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot unpack {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "the archive unpacks to more than {0} bytes (the most a node binary with its libraries may take, or the free space left): refused as a decompression bomb"
    )]
    TooLarge(u64),
    #[error("cannot set the mode of {}: {source}", .path.display())]
    Mode { path: PathBuf, source: io::Error },
    #[error("the archive has more than {0} entries")]
    TooManyEntries(u64),
    #[error("not a tar archive: {0}")]
    NotTar(io::Error),
    #[error("corrupt tar archive: {0}")]
    CorruptTar(io::Error),
    #[error("bad entry name: {0}")]
    BadName(io::Error),
    #[error(
        "the archive entry {} is a {kind:?}; only files and directories are accepted",
        .name.display()
    )]
    Special {
        name: PathBuf,
        kind: ::tar::EntryType,
    },
    #[error("not a zip archive: {0}")]
    NotZip(::zip::result::ZipError),
    #[error("corrupt zip archive: {0}")]
    CorruptZip(::zip::result::ZipError),
    #[error("bad entry name in the zip archive: {0}")]
    BadZipName(::zip::result::ZipError),
    #[error("the archive entry {0} is a symlink; only files and directories are accepted")]
    Symlink(String),
    #[error("the archive entry {0} is not a regular file")]
    NotRegular(String),
}

/// What the fetched bytes are, decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// The binary as it is.
    Raw,
    /// A tar, compressed by this format (`Gz`, `Xz`, `Bz2`, `Zst`) or not.
    Tar(Option<Format>),
    Zip,
    /// One compressed file: the binary.
    Single(Format),
}

/// The compression or archive the first bytes announce.
fn magic(head: &[u8]) -> Option<Format> {
    match head {
        [0x1f, 0x8b, ..] => Some(Format::Gz),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(Format::Xz),
        [b'B', b'Z', b'h', ..] => Some(Format::Bz2),
        // A zstd frame, or a skippable frame (pzstd starts its files with one).
        [0x28, 0xb5, 0x2f, 0xfd, ..] | [0x50..=0x5f, 0x2a, 0x4d, 0x18, ..] => Some(Format::Zst),
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Some(Format::Zip),
        _ if is_tar(head) => Some(Format::Tar),
        _ => None,
    }
}

/// A POSIX (ustar) or GNU tar header.
fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// Reads up to `n` bytes (fewer only at the end).
fn head(reader: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Decides how to unpack `file`: `archive=false` takes it as it is; `archive=<format>` names the
/// format, which the bytes must match; otherwise the bytes decide, and the URL's `extension`
/// where they leave it open (a compressed tar and a compressed single file start alike, so the
/// decompressed bytes are looked at too).
pub fn detect(
    file: &mut std::fs::File,
    archive: Archive,
    extension: Option<Format>,
) -> Result<Packing, UnpackError> {
    let start = head(file, 512)?;
    let found = magic(&start);
    let wanted = match archive {
        Archive::Off => return Ok(Packing::Raw),
        Archive::Format(f) => Some(f),
        Archive::Detect => None,
    };
    if let Some(f) = wanted {
        let expected = f.compression().unwrap_or(f);
        if found != Some(expected) && !(f == Format::Tar && found.is_none()) {
            return Err(UnpackError::NotTheNamedArchive {
                named: f,
                bytes: crate::tree::executable::describe(&start),
            });
        }
    }
    let format = match (wanted, found) {
        (Some(f), _) => f,
        (None, Some(Format::Zip)) => Format::Zip,
        (None, Some(Format::Tar)) => Format::Tar,
        (None, Some(c)) => {
            // Compressed: a tar inside, or the binary?
            io::Seek::rewind(file)?;
            let mut inner = decoder(c, BufReader::new(file.try_clone()?))?;
            let inside = head(&mut inner, 512)
                .map_err(|source| UnpackError::Decompress { format: c, source })?;
            let tar = is_tar(&inside) || extension.is_some_and(Format::is_tar);
            match (tar, c) {
                (true, Format::Gz) => Format::TarGz,
                (true, Format::Xz) => Format::TarXz,
                (true, Format::Bz2) => Format::TarBz2,
                (true, Format::Zst) => Format::TarZst,
                _ => c,
            }
        }
        // An old tar without the ustar mark is known by its name only.
        (None, None) if extension == Some(Format::Tar) => Format::Tar,
        (None, None) => match extension {
            Some(ext) => {
                return Err(UnpackError::NotTheExtension {
                    extension: ext,
                    bytes: crate::tree::executable::describe(&start),
                });
            }
            None => return Ok(Packing::Raw),
        },
    };
    Ok(match format {
        Format::Zip => Packing::Zip,
        f if f.is_tar() => Packing::Tar(f.compression()),
        f => Packing::Single(f),
    })
}

/// A reader of `c`-compressed bytes: every member, stream or frame decoded to its end (as
/// `gzip -d`, `xz -d`, `bzip2 -d` and `zstd -d` do: `pigz`, `pzstd`, `pbzip2` and `cat` make
/// files of several), every check the format has verified, and anything after the last one
/// refused. A check is verified when its stream ends, so the reader must be read to its end
/// (`TarStream::finish` after a tar) before what it gave is trusted.
pub fn decoder<R: io::BufRead + 'static>(
    c: Format,
    reader: R,
) -> Result<Box<dyn Read>, UnpackError> {
    Ok(match c {
        // Each member's CRC-32 and length; after the last, only another member.
        Format::Gz => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        // Each block's check (CRC-32, CRC-64 or SHA-256), header and index CRCs; the structure
        // (and each block's dictionary) read along by `XzStream`, stream padding included.
        Format::Xz => Box::new(lzma_rust2::XzReader::new(
            super::guard::XzStream::new(reader),
            true,
        )),
        // Each block's and stream's CRC-32.
        Format::Bz2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        Format::Zst => Box::new(Zstd::new(reader).map_err(UnpackError::NotZstd)?),
        other => return Err(UnpackError::NotACompression(other)),
    })
}

/// The path of an archive entry if it is safe: relative, no `..`, no root, not empty.
fn safe_path(name: &Path) -> Result<PathBuf, UnpackError> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return Err(UnpackError::Escapes(name.display().to_string())),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(UnpackError::NoName(name.to_path_buf()));
    }
    Ok(out)
}

/// Copies at most `left` bytes of `reader` into `path` under `dir` (its folders made), refusing
/// more: `total` is the archive's whole allowance, for the message.
pub(super) fn copy_limited(
    reader: &mut dyn Read,
    dir: &Dir,
    path: &Path,
    left: u64,
    total: u64,
) -> Result<u64, UnpackError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(dir, parent)?;
    }
    let mut file = dir.create(path).map_err(|source| UnpackError::Create {
        path: path.to_path_buf(),
        source,
    })?;
    let copied =
        io::copy(&mut reader.take(left.saturating_add(1)), &mut file).map_err(|source| {
            UnpackError::Write {
                path: path.to_path_buf(),
                source,
            }
        })?;
    if copied > left {
        return Err(UnpackError::TooLarge(total));
    }
    file.sync_all()?;
    Ok(copied)
}

fn create_dir_all(dir: &Dir, path: &Path) -> Result<(), UnpackError> {
    dir.create_dir_all(path)
        .map_err(|source| UnpackError::Create {
            path: path.to_path_buf(),
            source,
        })
}

pub(super) fn set_mode(dir: &Dir, path: &Path, mode: u32) -> Result<(), UnpackError> {
    use std::os::unix::fs::PermissionsExt;
    dir.set_permissions(
        path,
        cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(mode)),
    )
    .map_err(|source| UnpackError::Mode {
        path: path.to_path_buf(),
        source,
    })
}

/// Unpacks a tar read from `reader` (already decompressed) into `dir`.
pub(super) fn tar(reader: impl Read, dir: &Dir, limits: &Limits) -> Result<(), UnpackError> {
    let mut archive = ::tar::Archive::new(reader);
    let mut left = limits.unpacked;
    let mut count = 0u64;
    for entry in archive.entries().map_err(UnpackError::NotTar)? {
        let mut entry = entry.map_err(UnpackError::CorruptTar)?;
        count += 1;
        if count > limits.entries {
            return Err(UnpackError::TooManyEntries(limits.entries));
        }
        let name = entry.path().map_err(UnpackError::BadName)?.into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        let path = safe_path(&name)?;
        if kind.is_dir() {
            create_dir_all(dir, &path)?;
        } else if kind.is_file() || kind == ::tar::EntryType::Continuous {
            let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
            left -= copy_limited(&mut entry, dir, &path, left, limits.unpacked)?;
            set_mode(dir, &path, mode | 0o600)?;
        } else {
            return Err(UnpackError::Special { name, kind });
        }
    }
    Ok(())
}

pub(super) fn zip(file: std::fs::File, dir: &Dir, limits: &Limits) -> Result<(), UnpackError> {
    let mut archive = ::zip::ZipArchive::new(file).map_err(UnpackError::NotZip)?;
    if archive.len() as u64 > limits.entries {
        return Err(UnpackError::TooManyEntries(limits.entries));
    }
    let mut left = limits.unpacked;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(UnpackError::CorruptZip)?;
        let raw_name = entry.name().map_err(UnpackError::BadZipName)?.into_owned();
        let path = safe_path(Path::new(&raw_name))?;
        if entry.enclosed_name().is_none() {
            return Err(UnpackError::Escapes(raw_name));
        }
        if entry.is_symlink() {
            return Err(UnpackError::Symlink(raw_name));
        }
        if entry.is_dir() {
            create_dir_all(dir, &path)?;
            continue;
        }
        if let Some(mode) = entry.unix_mode()
            && mode & 0o170000 != 0
            && mode & 0o170000 != 0o100000
        {
            return Err(UnpackError::NotRegular(raw_name));
        }
        let mode = entry.unix_mode().unwrap_or(0o644) & 0o755;
        left -= copy_limited(&mut entry, dir, &path, left, limits.unpacked)?;
        set_mode(dir, &path, mode | 0o600)?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests;

#[cfg(test)]
mod fuzz;
