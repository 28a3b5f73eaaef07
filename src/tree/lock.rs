//! One supervisor per home: an exclusive `flock` on `$DAEMON_HOME/cosmovisor/wasmvisor.lock`,
//! held for the supervisor's life and released by the kernel however it ends.
//!
//! The lock file is wasmvisor's own: it is opened through the tree's capability handle without
//! following a symlink and must be a regular file, so a planted link can never make wasmvisor
//! truncate or write a file elsewhere.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, File, OpenOptions};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::fs;

pub const LOCK_FILE: &str = "wasmvisor.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another wasmvisor{} is already supervising {home}; stop it first (two supervisors would fight over the node)",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held { home: PathBuf, pid: Option<i32> },
    #[error(
        "{path} is a {kind}: wasmvisor keeps its own lock file there; remove it and start again"
    )]
    NotOurs { path: PathBuf, kind: &'static str },
    #[error("{path}: cannot lock: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct Lock {
    _flock: Flock<std::fs::File>,
}

fn open(root: &Dir, root_path: &Path, create: bool) -> Result<std::fs::File, LockError> {
    let path = root_path.join(LOCK_FILE);
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(create)
        .create(create)
        .follow(FollowSymlinks::No);
    cap_std::fs::OpenOptionsExt::custom_flags(&mut options, nix::libc::O_NONBLOCK);
    let file: File = root.open_with(LOCK_FILE, &options).map_err(|source| {
        match root.symlink_metadata(LOCK_FILE) {
            Ok(meta) if !meta.is_file() => LockError::NotOurs {
                path: path.clone(),
                kind: fs::kind(meta.file_type()),
            },
            _ => LockError::Io {
                path: path.clone(),
                source,
            },
        }
    })?;
    let meta = file.metadata().map_err(|source| LockError::Io {
        path: path.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(LockError::NotOurs {
            path,
            kind: fs::kind(meta.file_type()),
        });
    }
    Ok(file.into_std())
}

fn pid_in(file: &mut std::fs::File) -> Option<i32> {
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Takes the lock for the home whose cosmovisor root is `root`, recording our pid in it.
pub fn acquire(home: &Path, root: &Dir, root_path: &Path) -> Result<Lock, LockError> {
    let file = open(root, root_path, true)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut flock) => {
            let pid = std::process::id().to_string();
            let write = flock
                .set_len(0)
                .and_then(|()| flock.rewind())
                .and_then(|()| flock.write_all(pid.as_bytes()));
            write.map_err(|source| LockError::Io {
                path: root_path.join(LOCK_FILE),
                source,
            })?;
            Ok(Lock { _flock: flock })
        }
        Err((mut file, Errno::EWOULDBLOCK)) => Err(LockError::Held {
            home: home.to_path_buf(),
            pid: pid_in(&mut file),
        }),
        Err((_, errno)) => Err(LockError::Io {
            path: root_path.join(LOCK_FILE),
            source: errno.into(),
        }),
    }
}

/// The pid of the supervisor holding the lock, if one runs (0 when it is held but the pid is
/// unreadable).
pub fn holder(root: &Dir, root_path: &Path) -> Option<i32> {
    let file = open(root, root_path, false).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => None,
        Err((mut file, _)) => pid_in(&mut file).or(Some(0)),
    }
}
