//! Crash-safe file primitives on capability directories: nothing here can reach outside the
//! directory handle it is given.

use std::io::{self, Write};
use std::path::Path;

use cap_std::fs::Dir;

/// Writes `bytes` to `name` inside `dir` so that a crash leaves either the old or the new content:
/// write a temporary file, fsync it, rename it over `name`, fsync the directory.
pub fn write_atomic(dir: &Dir, name: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    let name = name.as_ref();
    let tmp = temp_name(name);
    let result = (|| {
        let mut file = dir.create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        dir.rename(&tmp, dir, name)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}

/// Replaces `name` atomically (temp file + rename) without waiting for the disk: a reader or a
/// process killed at any point sees the old or the new content, but a power loss may keep the
/// old one. For records whose loss only costs information, never correctness.
pub fn replace(dir: &Dir, name: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    let name = name.as_ref();
    let tmp = temp_name(name);
    let result = (|| {
        let mut file = dir.create(&tmp)?;
        file.write_all(bytes)?;
        dir.rename(&tmp, dir, name)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}

/// The temporary name used beside `name` while it is being replaced.
pub fn temp_name(name: &Path) -> std::path::PathBuf {
    let file = name
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.with_file_name(format!(".{file}.tmp-{}", std::process::id()))
}

/// Makes the directory's entries (renames, new links) durable. cap-std holds directories as
/// `O_PATH` handles, which cannot be fsynced: open the directory itself for reading.
pub fn sync_dir(dir: &Dir) -> io::Result<()> {
    dir.open(".")?.sync_all()
}

/// Reads a file, mapping "not found" to `None`.
pub fn read_optional(dir: &Dir, name: impl AsRef<Path>) -> io::Result<Option<Vec<u8>>> {
    match dir.read(name) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
