//! Crash-safe, symlink-safe file primitives on capability directories: nothing here can reach
//! outside the directory handle it is given, follow a symlink where wasmvisor keeps its own
//! file or folder, or block on a FIFO or device someone put where a file was expected.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, File, FileType, OpenOptions};

/// Whether the last component of a path may be a symlink (resolved inside the directory handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Files another program writes (the node's upgrade-info.json): a symlink inside the tree
    /// is followed, never one that leads out of it.
    Yes,
    /// wasmvisor's own files: a symlink there is refused.
    No,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it is a {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

/// A file type in words, for messages.
pub fn kind(ft: FileType) -> &'static str {
    use cap_std::fs::FileTypeExt;
    if ft.is_file() {
        "regular file"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// Opens `name` for reading. The open cannot block (O_NONBLOCK: a FIFO opens at once) and
/// anything but a regular file is refused before a byte is read.
pub fn open_regular(dir: &Dir, name: impl AsRef<Path>, follow: Follow) -> Result<File, ReadError> {
    let mut options = OpenOptions::new();
    options.read(true).follow(match follow {
        Follow::Yes => FollowSymlinks::Yes,
        Follow::No => FollowSymlinks::No,
    });
    cap_std::fs::OpenOptionsExt::custom_flags(&mut options, nix::libc::O_NONBLOCK);
    let file = dir.open_with(name.as_ref(), &options).map_err(|e| {
        if follow == Follow::No && is_symlink_refusal(&e) {
            ReadError::NotRegular("symlink")
        } else {
            ReadError::Io(e)
        }
    })?;
    let ft = file.metadata()?.file_type();
    if !ft.is_file() {
        return Err(ReadError::NotRegular(kind(ft)));
    }
    Ok(file)
}

/// Reads a whole regular file of at most `limit` bytes; `None` when it does not exist.
pub fn read_regular(
    dir: &Dir,
    name: impl AsRef<Path>,
    limit: u64,
    follow: Follow,
) -> Result<Option<Vec<u8>>, ReadError> {
    match open_regular(dir, name, follow) {
        Ok(file) => read_limited(file, limit).map(Some),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens a file anywhere (a path the operator gave) for reading, with the same guarantees as
/// [`open_regular`]: no blocking open, regular files only.
pub fn open_regular_path(path: &Path) -> Result<std::fs::File, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = File::from_std(
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)?,
    );
    let ft = file.metadata()?.file_type();
    if !ft.is_file() {
        return Err(ReadError::NotRegular(kind(ft)));
    }
    Ok(file.into_std())
}

/// Reads a whole regular file the operator named, of at most `limit` bytes.
pub fn read_regular_path(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    read_limited(open_regular_path(path)?, limit)
}

/// The lower-case hex sha256 of a regular file, read in chunks.
pub fn sha256_path(path: &Path) -> Result<String, ReadError> {
    use sha2::Digest;
    let mut file = open_regular_path(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn read_limited(file: impl Read, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// What openat reports for a symlink it was told not to follow.
fn is_symlink_refusal(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(nix::libc::ELOOP | nix::libc::EMLINK))
}

/// Opens (creating it if needed) a folder wasmvisor keeps for itself. A symlink or anything but
/// a directory in its place is refused: wasmvisor never writes or deletes through a link.
pub fn own_dir(parent: &Dir, name: &str) -> io::Result<Dir> {
    match parent.create_dir(name) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = parent.symlink_metadata(name)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{name} is a {}; wasmvisor keeps its own folder there: remove it",
            kind(meta.file_type())
        )));
    }
    parent.open_dir_nofollow(name)
}

/// Creates a fresh file for writing: an old file (or a link) under that name is removed first,
/// and the create is exclusive, so a link planted in between is never followed.
pub fn create_fresh(dir: &Dir, name: impl AsRef<Path>) -> io::Result<File> {
    let name = name.as_ref();
    remove_if_present(dir, name)?;
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .follow(FollowSymlinks::No);
    dir.open_with(name, &options)
}

/// Removes a file or a symlink (never what it points to); absent is fine.
pub fn remove_if_present(dir: &Dir, name: impl AsRef<Path>) -> io::Result<()> {
    match dir.remove_file_or_symlink(name.as_ref()) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Writes `bytes` to `name` inside `dir` so that a crash leaves either the old or the new content:
/// write a temporary file, fsync it, rename it over `name`, fsync the directory.
pub fn write_atomic(dir: &Dir, name: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    replace_with(dir, name.as_ref(), bytes, true)
}

/// Replaces `name` atomically (temp file + rename) without waiting for the disk: a reader or a
/// process killed at any point sees the old or the new content, but a power loss may keep the
/// old one. For records whose loss only costs information, never correctness.
pub fn replace(dir: &Dir, name: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    replace_with(dir, name.as_ref(), bytes, false)
}

fn replace_with(dir: &Dir, name: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = temp_name(name);
    let result = (|| {
        let mut file = create_fresh(dir, &tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        // rename(2) replaces the name itself: a link there is replaced, never followed.
        dir.rename(&tmp, dir, name)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}

/// The temporary name used beside `name` while it is being replaced.
pub fn temp_name(name: &Path) -> PathBuf {
    let file = name
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and per call: two threads (parallel plugin compilations) never share one.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    name.with_file_name(format!(".{file}.tmp-{}-{n}", std::process::id()))
}

/// Makes the directory's entries (renames, new links) durable. cap-std holds directories as
/// `O_PATH` handles, which cannot be fsynced: open the directory itself for reading.
pub fn sync_dir(dir: &Dir) -> io::Result<()> {
    dir.open(".")?.sync_all()
}

/// Bytes free for an unprivileged writer on the filesystem holding `dir`.
pub fn free_bytes(dir: &Dir) -> io::Result<u64> {
    Ok(space(dir)?.0)
}

/// (bytes free for an unprivileged writer, total bytes) of the filesystem holding `dir`.
pub fn space(dir: &Dir) -> io::Result<(u64, u64)> {
    let stat = nix::sys::statvfs::fstatvfs(dir).map_err(io::Error::from)?;
    let unit = stat.fragment_size() as u64;
    Ok((
        stat.blocks_available() as u64 * unit,
        stat.blocks() as u64 * unit,
    ))
}

/// The inodes free for an unprivileged writer on the filesystem holding `dir`; `None` where the
/// filesystem allocates them as it goes (btrfs reports none at all).
pub fn inodes_free(dir: &Dir) -> io::Result<Option<u64>> {
    let stat = nix::sys::statvfs::fstatvfs(dir).map_err(io::Error::from)?;
    Ok((stat.files() > 0).then_some(stat.files_available() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    fn temp() -> (tempfile::TempDir, Dir) {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open_ambient_dir(t.path(), ambient_authority()).unwrap();
        (t, d)
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let (t, d) = temp();
        nix::unistd::mkfifo(
            &t.path().join("f"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let err = read_regular(&d, "f", 10, Follow::Yes).unwrap_err();
        assert!(matches!(err, ReadError::NotRegular("FIFO")), "{err}");
        let err = read_regular_path(&t.path().join("f"), 10).unwrap_err();
        assert!(matches!(err, ReadError::NotRegular("FIFO")), "{err}");
        let err = read_regular_path(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(
            matches!(err, ReadError::NotRegular("character device")),
            "{err}"
        );
    }

    #[test]
    fn own_files_refuse_symlinks_and_sizes_are_bounded() {
        let (t, d) = temp();
        std::fs::write(t.path().join("target"), b"secret").unwrap();
        std::os::unix::fs::symlink("target", t.path().join("link")).unwrap();
        assert!(matches!(
            read_regular(&d, "link", 100, Follow::No),
            Err(ReadError::NotRegular("symlink"))
        ));
        assert_eq!(
            read_regular(&d, "link", 100, Follow::Yes).unwrap().unwrap(),
            b"secret"
        );
        assert!(matches!(
            read_regular(&d, "target", 3, Follow::No),
            Err(ReadError::TooLarge(3))
        ));
        assert!(read_regular(&d, "absent", 3, Follow::No).unwrap().is_none());
    }

    #[test]
    fn atomic_writes_replace_a_planted_link_instead_of_following_it() {
        let (t, d) = temp();
        std::fs::write(t.path().join("victim"), b"keep").unwrap();
        std::os::unix::fs::symlink("victim", t.path().join("rec")).unwrap();
        let tmp = temp_name(Path::new("rec"));
        std::os::unix::fs::symlink("victim", t.path().join(&tmp)).unwrap();
        write_atomic(&d, "rec", b"new").unwrap();
        assert_eq!(std::fs::read(t.path().join("victim")).unwrap(), b"keep");
        assert_eq!(std::fs::read(t.path().join("rec")).unwrap(), b"new");
        assert!(
            !std::fs::symlink_metadata(t.path().join("rec"))
                .unwrap()
                .is_symlink()
        );
    }

    #[test]
    fn own_dirs_refuse_links() {
        let (t, d) = temp();
        std::fs::create_dir(t.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", t.path().join("cache")).unwrap();
        let err = own_dir(&d, "cache").unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        own_dir(&d, "fresh").unwrap();
        assert!(t.path().join("fresh").is_dir());
    }
}
