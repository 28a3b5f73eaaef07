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
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Format::Zst),
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
) -> Result<Packing, String> {
    let start = head(file, 512).map_err(|e| e.to_string())?;
    let found = magic(&start);
    if found == Some(Format::Xz) {
        // Before any decoder allocates what its headers ask for.
        super::guard::check_xz(file)?;
        io::Seek::rewind(file).map_err(|e| e.to_string())?;
    }
    let wanted = match archive {
        Archive::Off => return Ok(Packing::Raw),
        Archive::Format(f) => Some(f),
        Archive::Detect => None,
    };
    if let Some(f) = wanted {
        let expected = f.compression().unwrap_or(f);
        if found != Some(expected) && !(f == Format::Tar && found.is_none()) {
            return Err(format!(
                "?archive={} but the bytes are {}",
                f.name(),
                crate::tree::install::describe(&start)
            ));
        }
    }
    let format = match (wanted, found) {
        (Some(f), _) => f,
        (None, Some(Format::Zip)) => Format::Zip,
        (None, Some(Format::Tar)) => Format::Tar,
        (None, Some(c)) => {
            // Compressed: a tar inside, or the binary?
            io::Seek::rewind(file).map_err(|e| e.to_string())?;
            let mut inner = decoder(
                c,
                BufReader::new(file.try_clone().map_err(|e| e.to_string())?),
            )?;
            let inside = head(&mut inner, 512)
                .map_err(|e| format!("cannot decompress the {} download: {e}", c.name()))?;
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
                return Err(format!(
                    "the URL names a .{} file but the bytes are {}",
                    ext.name(),
                    crate::tree::install::describe(&start)
                ));
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

/// A reader of `c`-compressed bytes.
pub fn decoder<R: io::BufRead + 'static>(c: Format, reader: R) -> Result<Box<dyn Read>, String> {
    Ok(match c {
        Format::Gz => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Format::Xz => Box::new(lzma_rust2::XzReader::new(reader, false)),
        Format::Bz2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        Format::Zst => Box::new(
            ruzstd::decoding::StreamingDecoder::new(reader)
                .map_err(|e| format!("not a zstd stream: {e}"))?,
        ),
        other => return Err(format!("{} is not a compression", other.name())),
    })
}

/// The path of an archive entry if it is safe: relative, no `..`, no root, not empty.
fn safe_path(name: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "the archive entry {} escapes the archive",
                    name.display()
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!(
            "the archive entry {:?} has no name",
            name.display()
        ));
    }
    Ok(out)
}

pub(super) fn copy_limited(
    reader: &mut dyn Read,
    dir: &Dir,
    path: &Path,
    left: u64,
    total: u64,
) -> Result<u64, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut file = dir
        .create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let copied = io::copy(&mut reader.take(left + 1), &mut file)
        .map_err(|e| format!("cannot unpack {}: {e}", path.display()))?;
    if copied > left {
        return Err(format!(
            "the archive unpacks to more than {total} bytes (the most a node binary with its libraries may take, or the free space left): refused as a decompression bomb"
        ));
    }
    file.sync_all().map_err(|e| e.to_string())?;
    Ok(copied)
}

pub(super) fn set_mode(dir: &Dir, path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    dir.set_permissions(
        path,
        cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(mode)),
    )
    .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
}

/// Unpacks a tar read from `reader` (already decompressed) into `dir`.
pub(super) fn tar(reader: impl Read, dir: &Dir, limits: &Limits) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    let mut left = limits.unpacked;
    let mut count = 0u64;
    for entry in archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("corrupt tar archive: {e}"))?;
        count += 1;
        if count > limits.entries {
            return Err(format!(
                "the archive has more than {} entries",
                limits.entries
            ));
        }
        let name = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        let path = safe_path(&name)?;
        if kind.is_dir() {
            dir.create_dir_all(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
            left -= copy_limited(&mut entry, dir, &path, left, limits.unpacked)?;
            set_mode(dir, &path, mode | 0o600)?;
        } else {
            return Err(format!(
                "the archive entry {} is a {kind:?}; only files and directories are accepted",
                name.display()
            ));
        }
    }
    Ok(())
}

pub(super) fn zip(file: std::fs::File, dir: &Dir, limits: &Limits) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a zip archive: {e}"))?;
    if archive.len() as u64 > limits.entries {
        return Err(format!(
            "the archive has more than {} entries",
            limits.entries
        ));
    }
    let mut left = limits.unpacked;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("corrupt zip archive: {e}"))?;
        let raw_name = entry
            .name()
            .map_err(|e| format!("bad entry name in the zip archive: {e}"))?
            .into_owned();
        let path = safe_path(Path::new(&raw_name))?;
        if entry.enclosed_name().is_none() {
            return Err(format!("the archive entry {raw_name} escapes the archive"));
        }
        if entry.is_symlink() {
            return Err(format!(
                "the archive entry {raw_name} is a symlink; only files and directories are accepted"
            ));
        }
        if entry.is_dir() {
            dir.create_dir_all(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            continue;
        }
        if let Some(mode) = entry.unix_mode()
            && mode & 0o170000 != 0
            && mode & 0o170000 != 0o100000
        {
            return Err(format!(
                "the archive entry {raw_name} is not a regular file"
            ));
        }
        let mode = entry.unix_mode().unwrap_or(0o644) & 0o755;
        left -= copy_limited(&mut entry, dir, &path, left, limits.unpacked)?;
        set_mode(dir, &path, mode | 0o600)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_entry_paths_are_refused() {
        assert!(safe_path(Path::new("../evil")).is_err());
        assert!(safe_path(Path::new("/etc/passwd")).is_err());
        assert!(safe_path(Path::new("a/../../b")).is_err());
        assert!(safe_path(Path::new("./")).is_err());
        assert_eq!(
            safe_path(Path::new("./bin/simd")).unwrap(),
            PathBuf::from("bin/simd")
        );
    }
}

#[cfg(test)]
mod fuzz;
