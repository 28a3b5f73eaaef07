//! Capturing a tree of files into another, each file the cheapest way that keeps its bytes:
//!
//! 1. a reflink (`FICLONE`) where the filesystem shares blocks copy-on-write (btrfs, XFS): instant,
//!    no space, and later writes to either side stay on that side;
//! 2. otherwise a hard link for the files the node's databases never modify in place — the
//!    tables of LSM trees (goleveldb/LevelDB `*.ldb`, RocksDB/Pebble `*.sst`). Those stores write a
//!    table once, sync it and only ever read it afterwards; compaction writes new tables and deletes
//!    old ones. A hard link shares the inode, so the backup keeps the exact bytes, and when the node
//!    later deletes its name the inode lives on through the backup's. One exception is copied: a
//!    table written after its store's newest `MANIFEST-*` is not (yet) part of the store — an
//!    orphan of a compaction the halt interrupted — and the store may reuse its number, truncating
//!    that very inode;
//! 3. a copy of everything else (write-ahead logs, MANIFEST, CURRENT, LOG, CometBFT's WAL,
//!    `priv_validator_state.json`, …), and of a table file where a link cannot be made (another
//!    filesystem).
//!
//! So a snapshot's cost grows with the number of files and the size of the mutable ones, not with
//! the size of the data. Symlinks are recreated as symlinks, never followed; sockets, FIFOs and
//! devices are skipped.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use cap_fs_ext::DirExt;
use cap_std::fs::{Dir, File, FileTypeExt};

use super::manifest::{Captured, Entry, Kind};
use crate::cancel::Cancel;
use crate::output::Progress;

/// Whether a file is one a node's database writes once and never modifies in place.
pub fn immutable(name: &str) -> bool {
    name.ends_with(".ldb") || name.ends_with(".sst")
}

/// What a capture does with every file and how it went.
pub struct Capture<'a> {
    pub cancel: &'a Cancel,
    pub progress: &'a mut Progress,
    /// Whether reflinks were refused once already (then not tried again).
    reflink_refused: bool,
    /// Whether hard links are impossible (another filesystem).
    link_refused: bool,
    /// Test hook: fail with ENOSPC once this many bytes were written (copied or reflinked).
    disk_full_after: Option<u64>,
    written: u64,
    pub entries: Vec<Entry>,
}

/// The test hook that makes a capture run out of space after so many copied bytes.
pub const DISK_FULL_HOOK_ENV: &str = "WASMVISOR_TEST_DISK_FULL_AFTER";

impl<'a> Capture<'a> {
    pub fn new(cancel: &'a Cancel, progress: &'a mut Progress, same_filesystem: bool) -> Self {
        Capture {
            cancel,
            progress,
            reflink_refused: false,
            link_refused: !same_filesystem,
            disk_full_after: std::env::var(DISK_FULL_HOOK_ENV)
                .ok()
                .and_then(|v| v.parse().ok()),
            written: 0,
            entries: Vec::new(),
        }
    }

    /// Captures everything under `src` into `dst` (an empty folder), `rel` being where `src` is
    /// in the tree (for the manifest). `skip` names a top-level entry to leave out.
    pub fn tree(&mut self, src: &Dir, dst: &Dir, rel: &Path, skip: Option<&str>) -> io::Result<()> {
        let mut names: Vec<_> = src
            .entries()?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        // The store's newest MANIFEST: tables written after it are not referenced yet.
        let manifest_written = names
            .iter()
            .filter(|n| n.to_str().is_some_and(|n| n.starts_with("MANIFEST-")))
            .filter_map(|n| src.symlink_metadata(n).ok()?.modified().ok())
            .max();
        for name in names {
            if self.cancel.is_cancelled() {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            if rel.as_os_str().is_empty() && skip.is_some_and(|s| name == s) {
                continue;
            }
            let path = rel.join(&name);
            let meta = src.symlink_metadata(&name)?;
            let ft = meta.file_type();
            if ft.is_dir() {
                dst.create_dir(&name)?;
                self.tree(
                    &src.open_dir_nofollow(&name)?,
                    &dst.open_dir(&name)?,
                    &path,
                    None,
                )?;
                self.entries
                    .push(Entry::of(&path, Kind::Dir, &meta, Captured::Created));
            } else if ft.is_symlink() {
                let target = src.read_link_contents(&name)?;
                dst.symlink_contents(&target, &name)?;
                let mut entry = Entry::of(&path, Kind::Symlink, &meta, Captured::Created);
                entry.target = Some(target);
                self.entries.push(entry);
            } else if ft.is_file() {
                let referenced = match (manifest_written, meta.modified()) {
                    (Some(manifest), Ok(written)) => written <= manifest,
                    _ => true,
                };
                let how = self.file(src, dst, &name, meta.len(), referenced)?;
                self.entries.push(Entry::of(&path, Kind::File, &meta, how));
            } else {
                let what = if ft.is_fifo() {
                    "FIFO"
                } else if ft.is_socket() {
                    "socket"
                } else {
                    "device"
                };
                tracing::warn!(entry = %path.display(), "the backup skips a {what}");
            }
        }
        Ok(())
    }

    /// Captures one file; `referenced` is false for a table its store does not reference yet
    /// (copied, not linked).
    fn file(
        &mut self,
        src: &Dir,
        dst: &Dir,
        name: &std::ffi::OsStr,
        len: u64,
        referenced: bool,
    ) -> io::Result<Captured> {
        let input = src.open(name)?;
        if !self.reflink_refused {
            self.charge(len)?;
            let output = crate::fs::create_fresh(dst, name)?;
            match reflink(&input, &output) {
                Ok(()) => {
                    finish(&input, output)?;
                    self.progress.skip(len);
                    return Ok(Captured::Reflink);
                }
                Err(e) if reflink_unsupported(&e) => {
                    self.reflink_refused = true;
                    self.written -= len;
                    drop(output);
                    dst.remove_file(name)?;
                }
                Err(e) => return Err(e),
            }
        }
        if !self.link_refused && referenced && name.to_str().is_some_and(immutable) {
            match src.hard_link(name, dst, name) {
                Ok(()) => {
                    self.progress.skip(len);
                    return Ok(Captured::Link);
                }
                Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => self.link_refused = true,
                Err(e) => return Err(e),
            }
        }
        self.copy(input, dst, name)?;
        Ok(Captured::Copy)
    }

    /// Counts `n` bytes about to be written, for the disk-full test hook.
    fn charge(&mut self, n: u64) -> io::Result<()> {
        if self
            .disk_full_after
            .is_some_and(|after| self.written + n > after)
        {
            return Err(io::Error::from_raw_os_error(nix::libc::ENOSPC));
        }
        self.written += n;
        Ok(())
    }

    /// Copies in chunks, so a stop request is noticed within one chunk even in a file of GiBs.
    fn copy(&mut self, mut input: File, dst: &Dir, name: &std::ffi::OsStr) -> io::Result<()> {
        let mut output = crate::fs::create_fresh(dst, name)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            if self.cancel.is_cancelled() {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.charge(n as u64)?;
            output.write_all(&buf[..n])?;
            self.progress.advance(n as u64);
        }
        finish(&input, output)
    }
}

/// Gives the capture the source's permissions and modification time, and syncs it.
fn finish(input: &File, output: File) -> io::Result<()> {
    let meta = input.metadata()?;
    output.set_permissions(meta.permissions())?;
    let output = output.into_std();
    if let Ok(modified) = meta.modified() {
        output.set_modified(modified.into_std())?;
    }
    output.sync_all()
}

/// Shares `src`'s blocks with `dst` (copy on write).
fn reflink(src: &File, dst: &File) -> io::Result<()> {
    // FICLONE = _IOW(0x94, 9, int), the same on every Linux architecture wasmvisor builds for.
    const FICLONE: u64 = 0x4004_9409;
    // SAFETY: both descriptors are open for the call's duration; FICLONE reads no memory.
    let r = unsafe { nix::libc::ioctl(dst.as_raw_fd(), FICLONE as _, src.as_raw_fd()) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The errors of a filesystem (or a pair of them) that cannot share blocks.
fn reflink_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            nix::libc::EOPNOTSUPP
                | nix::libc::ENOTTY
                | nix::libc::EINVAL
                | nix::libc::EXDEV
                | nix::libc::EPERM
                | nix::libc::ENOSYS
        )
    )
}

/// What a capture of a tree takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sizes {
    /// The bytes of its regular files.
    pub total: u64,
    /// The part a capture copies (the mutable files, or all of them when links are impossible).
    pub copied: u64,
    /// The inodes a capture creates: one per folder, symlink and file not linked.
    pub inodes: u64,
}

/// What capturing everything under `dir` takes.
pub fn sizes(dir: &Dir, same_filesystem: bool) -> io::Result<Sizes> {
    let mut sum = Sizes::default();
    for entry in dir.entries()? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() && !ft.is_symlink() {
            let inner = sizes(&entry.open_dir()?, same_filesystem)?;
            sum.total += inner.total;
            sum.copied += inner.copied;
            sum.inodes += inner.inodes + 1;
        } else if ft.is_file() {
            let len = entry.metadata()?.len();
            sum.total += len;
            let linkable = same_filesystem && entry.file_name().to_str().is_some_and(immutable);
            if !linkable {
                sum.copied += len;
                sum.inodes += 1;
            }
        } else if ft.is_symlink() {
            sum.inodes += 1;
        }
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::immutable;

    #[test]
    fn only_lsm_tables_are_linked() {
        for name in ["000123.ldb", "001234.sst"] {
            assert!(immutable(name), "{name}");
        }
        for name in [
            "MANIFEST-000004",
            "CURRENT",
            "LOG",
            "000003.log",
            "priv_validator_state.json",
            "wal",
            "x.sst.tmp",
        ] {
            assert!(!immutable(name), "{name}");
        }
    }
}
