//! One supervisor per home: an exclusive `flock` on `$DAEMON_HOME/cosmovisor/wasmvisor.lock`,
//! held for the supervisor's life and released by the kernel however it ends.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

pub const LOCK_FILE: &str = "wasmvisor.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another wasmvisor{} is already supervising {home}; stop it first (two supervisors would fight over the node)",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held { home: PathBuf, pid: Option<i32> },
    #[error("{path}: cannot lock: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct Lock {
    _flock: Flock<File>,
}

fn open(root: &Path) -> Result<(PathBuf, File), LockError> {
    let path = root.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
    Ok((path, file))
}

fn pid_in(file: &mut File) -> Option<i32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Takes the lock for the home whose cosmovisor root is `root`, recording our pid in it.
pub fn acquire(home: &Path, root: &Path) -> Result<Lock, LockError> {
    let (path, file) = open(root)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut flock) => {
            let pid = std::process::id().to_string();
            let write = flock
                .set_len(0)
                .and_then(|()| flock.rewind())
                .and_then(|()| flock.write_all(pid.as_bytes()));
            write.map_err(|source| LockError::Io { path, source })?;
            Ok(Lock { _flock: flock })
        }
        Err((mut file, Errno::EWOULDBLOCK)) => Err(LockError::Held {
            home: home.to_path_buf(),
            pid: pid_in(&mut file),
        }),
        Err((_, errno)) => Err(LockError::Io {
            path,
            source: errno.into(),
        }),
    }
}

/// The pid of the supervisor holding the lock, if one runs.
pub fn holder(root: &Path) -> Option<i32> {
    let file = std::fs::File::open(root.join(LOCK_FILE)).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => None,
        Err((mut file, _)) => pid_in(&mut file).or(Some(0)),
    }
}
