//! Reading the new binary and its `lib/` into the page cache shortly before the upgrade, so its
//! first start does not wait on a cold disk: a large node binary is paged in from disk on its
//! first run, which on a network volume takes seconds.

use std::collections::HashSet;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};

use crate::cancel::Cancel;

/// Bounds on a `lib/` walk: its depth and the files read.
const MAX_DEPTH: usize = 8;
const MAX_FILES: usize = 10_000;
const CHUNK: usize = 256 * 1024;
/// The most read ahead: a node binary and its libraries are a few hundred MiB.
const MAX_BYTES: u64 = 4 << 30;

/// What was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warmed {
    pub files: usize,
    pub bytes: u64,
    pub took: Duration,
}

/// Reads each path through: a file, or every regular file under a folder (a symlink followed
/// only when it stays inside that folder, each file once). A path that does not exist (a
/// `lib/` the upgrade does not have) is skipped. Stops between chunks once `cancel` is
/// cancelled, and after `MAX_BYTES` (what a node binary and its libraries can reasonably be).
pub fn warm(paths: &[PathBuf], cancel: &Cancel) -> io::Result<Warmed> {
    let started = Instant::now();
    let mut w = Walk {
        cancel,
        buf: vec![0u8; CHUNK],
        seen: HashSet::new(),
        files: 0,
        bytes: 0,
    };
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            let root = std::fs::canonicalize(path)?;
            w.dir(&root, &root, 0)?;
        } else if meta.is_file() {
            w.file(path, &meta)?;
        }
    }
    Ok(Warmed {
        files: w.files,
        bytes: w.bytes,
        took: started.elapsed(),
    })
}

struct Walk<'a> {
    cancel: &'a Cancel,
    buf: Vec<u8>,
    seen: HashSet<(u64, u64)>,
    files: usize,
    bytes: u64,
}

impl Walk<'_> {
    fn dir(&mut self, root: &Path, dir: &Path, depth: usize) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if self.files >= MAX_FILES {
                return Ok(());
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let target = if kind.is_symlink() {
                match std::fs::canonicalize(&path) {
                    Ok(real) if real.starts_with(root) => real,
                    _ => continue,
                }
            } else {
                path
            };
            let Ok(meta) = std::fs::metadata(&target) else {
                continue;
            };
            if meta.is_file() {
                self.file(&target, &meta)?;
            } else if meta.is_dir() && !kind.is_symlink() {
                self.dir(root, &target, depth + 1)?;
            }
        }
        Ok(())
    }

    fn file(&mut self, path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
        if !self.seen.insert((meta.dev(), meta.ino())) {
            return Ok(());
        }
        // Never blocks on a FIFO swapped in since the check above.
        let mut file = crate::fs::open_regular_path(path).map_err(io::Error::other)?;
        // Ask the kernel to start reading all of it at once, then read it through so every page
        // is in the cache when this returns.
        let _ = posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_WILLNEED);
        loop {
            if self.cancel.is_cancelled() || self.bytes >= MAX_BYTES {
                return Ok(());
            }
            match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => self.bytes += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.files += 1;
        Ok(())
    }
}
