//! Unpacking archives safely: regular files and directories only (no symlinks, hard links or
//! devices), no absolute or `..` paths, a cap on the unpacked size and on the number of entries
//! (no decompression bombs), everything written through the staging folder's capability handle.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;

use super::Limits;
use crate::plugin::ArchiveFormat;

/// The format from the first bytes.
pub(super) fn sniff(file: &mut std::fs::File) -> Result<ArchiveFormat, String> {
    let mut head = [0u8; 4];
    let n = file.read(&mut head).map_err(|e| e.to_string())?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => ArchiveFormat::TarGz,
        [b'P', b'K', 3, 4] => ArchiveFormat::Zip,
        _ => ArchiveFormat::Raw,
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

pub(super) fn tar_gz(file: std::fs::File, dir: &Dir, limits: &Limits) -> Result<(), String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut left = limits.unpacked;
    let mut count = 0u64;
    for entry in archive
        .entries()
        .map_err(|e| format!("not a tar.gz archive: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("corrupt tar.gz archive: {e}"))?;
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
