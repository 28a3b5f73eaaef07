//! Whether anything still uses the data folder. A restore replaces it: a database open on it (a
//! node started by hand, a second node, a tool) would go on writing into the replaced files and
//! later find its files changed under it. The stores a node keeps in `data/` lock their folder
//! while open — goleveldb with an `flock` on `<db>/LOCK`, Pebble and RocksDB with an `fcntl`
//! lock on it — and every process with a file open there shows it in `/proc/<pid>/fd`.

use std::path::{Path, PathBuf};

use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use nix::fcntl::{Flock, FlockArg};

use crate::fs::{self, Follow};

/// The name the stores give their lock file.
const LOCK: &str = "LOCK";

/// What still uses the data folder, or why that could not be told.
#[derive(Debug, thiserror::Error)]
pub enum BusyError {
    #[error(
        "process {pid}{} has {} open: something still uses the data folder; stop it (a node started by hand?) before restoring, the restore would replace the folder under it",
        .comm.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
        .path.display()
    )]
    OpenBy {
        pid: i32,
        /// Its command name, escaped for a terminal, when it could be read.
        comm: Option<String>,
        path: PathBuf,
    },
    #[error(
        "{} is locked{}: a database in the data folder is open (a node started by hand, another node on this home?); stop that node before restoring",
        .lock.display(),
        .holder.map(|p| format!(" by process {p}")).unwrap_or_default()
    )]
    Locked { lock: PathBuf, holder: Option<i32> },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Refuses while a store under `data` (the real folder) is locked or a process other than this
/// one has a file open under it. A missing data folder is in use by no one.
pub fn check(data: &Path) -> Result<(), BusyError> {
    let Ok(dir) = Dir::open_ambient_dir(data, ambient_authority()) else {
        return Ok(());
    };
    locks(&dir, data)?;
    if let Some((pid, path)) = open_under(data) {
        return Err(BusyError::OpenBy {
            pid,
            comm: comm(pid),
            path,
        });
    }
    Ok(())
}

/// Refuses when a `LOCK` file under `dir` (at `path`) is locked by a process.
fn locks(dir: &Dir, path: &Path) -> Result<(), BusyError> {
    let io = |path: PathBuf| move |source| BusyError::Io { path, source };
    let entries = dir.entries().map_err(io(path.to_path_buf()))?;
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if let Ok(inner) = dir.open_dir_nofollow(&name) {
                locks(&inner, &path.join(&name))?;
            }
        } else if ft.is_file() && name == LOCK {
            let lock = path.join(LOCK);
            if let Some(holder) = holder(dir).map_err(io(lock.clone()))? {
                return Err(BusyError::Locked { lock, holder });
            }
        }
    }
    Ok(())
}

/// `Some(pid, if known)` when the `LOCK` file in `dir` is locked by another process.
fn holder(dir: &Dir) -> std::io::Result<Option<Option<i32>>> {
    use std::os::fd::AsRawFd;
    let file = match fs::open_regular(dir, LOCK, Follow::No) {
        Ok(f) => f.into_std(),
        Err(fs::ReadError::Io(e)) => return Err(e),
        Err(e) => return Err(std::io::Error::other(e)),
    };
    // A record lock (Pebble, RocksDB): F_GETLK reports a conflicting one and its owner.
    // SAFETY: a plain struct for the kernel to fill; the descriptor is open.
    let mut probe: nix::libc::flock = unsafe { std::mem::zeroed() };
    probe.l_type = nix::libc::F_WRLCK as nix::libc::c_short;
    probe.l_whence = nix::libc::SEEK_SET as nix::libc::c_short;
    // SAFETY: F_GETLK reads and writes the struct, which lives across the call.
    let r = unsafe {
        nix::libc::fcntl(
            file.as_raw_fd(),
            nix::libc::F_GETLK,
            &mut probe as *mut nix::libc::flock,
        )
    };
    if r == 0 && probe.l_type != nix::libc::F_UNLCK as nix::libc::c_short {
        return Ok(Some((probe.l_pid > 0).then_some(probe.l_pid)));
    }
    // An flock (goleveldb): taking it exclusively fails while anyone holds it. Taken, it is
    // released at once (dropped).
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(_taken) => Ok(None),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(Some(None)),
        Err((_, e)) => Err(e.into()),
    }
}

/// A process other than this one with a file open under `data`, and that file.
fn open_under(data: &Path) -> Option<(i32, PathBuf)> {
    let me = std::process::id() as i32;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Another user's descriptors cannot be read: that process is not the node's.
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && target.starts_with(data)
            {
                return Some((pid, target));
            }
        }
    }
    None
}

fn comm(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(crate::output::escape_controls(text.trim_end()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let data = std::fs::canonicalize(t.path()).unwrap().join("data");
        std::fs::create_dir_all(data.join("application.db")).unwrap();
        std::fs::write(data.join("application.db/LOCK"), b"").unwrap();
        std::fs::write(data.join("application.db/000001.log"), b"wal").unwrap();
        (t, data)
    }

    #[test]
    fn a_store_locked_with_flock_is_refused_and_named() {
        let (_t, data) = data();
        assert!(check(&data).is_ok());
        // What goleveldb does when it opens a store: an flock on its LOCK, through another
        // open file than the check's.
        let file = std::fs::File::open(data.join("application.db/LOCK")).unwrap();
        let held = Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap();
        let why = check(&data).unwrap_err().to_string();
        assert_eq!(
            why,
            format!(
                "{}/application.db/LOCK is locked: a database in the data folder is open (a node started by hand, another node on this home?); stop that node before restoring",
                data.display()
            )
        );
        drop(held);
        assert!(check(&data).is_ok());
    }

    #[test]
    fn a_process_with_a_file_open_under_data_is_refused_and_named() {
        let (_t, data) = data();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::fs::File::open(data.join("application.db/000001.log")).unwrap())
            .spawn()
            .unwrap();
        let why = check(&data);
        let _ = child.kill();
        let _ = child.wait();
        let why = why.unwrap_err().to_string();
        assert_eq!(
            why,
            format!(
                "process {} (sleep) has {}/application.db/000001.log open: something still uses the data folder; stop it (a node started by hand?) before restoring, the restore would replace the folder under it",
                child.id(),
                data.display()
            )
        );
    }
}
