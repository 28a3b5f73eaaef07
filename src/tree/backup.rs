//! The data backup taken before an upgrade.
//!
//! The copy goes to `<DAEMON_DATA_BACKUP_DIR>/data-backup-<UTC time>-<upgrade>-h<height>`, a name no
//! second upgrade can clash with. Free space is checked first. The copy is made under a
//! `.partial` name and renamed when complete, so a crash leaves nothing that looks like a backup.
//! Symlinks inside `data/` are copied as symlinks, never followed.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::cancel::Cancel;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::fs;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "not enough free space for the backup in {dir}: data/ needs {needed} bytes plus a margin of {margin} bytes kept free for the node, and {available} are free; free some space, set DAEMON_DATA_BACKUP_DIR to a larger disk, or set UNSAFE_SKIP_BACKUP=true"
    )]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        margin: u64,
        available: u64,
    },
    #[error(
        "DAEMON_DATA_BACKUP_DIR ({dir}) is inside the data folder; choose a folder outside {data}"
    )]
    InsideData { dir: PathBuf, data: PathBuf },
    #[error("backup of {data} into {dir} failed: {source}")]
    Io {
        data: PathBuf,
        dir: PathBuf,
        source: io::Error,
    },
    #[error("backup interrupted by a stop request")]
    Interrupted,
}

pub fn backup_name(dir_name: &str, height: u64) -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "data-backup-{:04}{:02}{:02}T{:02}{:02}{:02}Z-{dir_name}-h{height}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn partial(name: &str) -> String {
    format!("{name}.partial")
}

/// Removes what an interrupted backup left behind (a link in its place is removed, not followed).
pub fn discard_partial(target: &Path) {
    if let (Some(parent), Some(name)) = (target.parent(), target.file_name())
        && let Ok(dir) = Dir::open_ambient_dir(parent, ambient_authority())
    {
        let _ = dir.remove_dir_all(partial(&name.to_string_lossy()));
    }
}

/// Keep this much free for the node to go on writing after the upgrade.
const MARGIN: u64 = 64 << 20;

/// Copies `data` to `target` (whose parent must exist). Returns the number of bytes copied.
pub fn run(data: &Path, target: &Path, cancel: &Cancel) -> Result<u64, BackupError> {
    let parent = target.parent().unwrap_or(Path::new("/"));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let io_err = |source| BackupError::Io {
        data: data.to_path_buf(),
        dir: parent.to_path_buf(),
        source,
    };
    let canonical_parent = std::fs::canonicalize(parent).map_err(io_err)?;
    let canonical_data = std::fs::canonicalize(data).map_err(io_err)?;
    if canonical_parent.starts_with(&canonical_data) {
        return Err(BackupError::InsideData {
            dir: parent.to_path_buf(),
            data: data.to_path_buf(),
        });
    }
    let src = Dir::open_ambient_dir(data, ambient_authority()).map_err(io_err)?;
    let dst_parent = Dir::open_ambient_dir(parent, ambient_authority()).map_err(io_err)?;

    let needed = size(&src).map_err(io_err)?;
    let available = fs::free_bytes(&dst_parent).map_err(io_err)?;
    if needed + MARGIN > available {
        return Err(BackupError::NoSpace {
            dir: parent.to_path_buf(),
            needed,
            margin: MARGIN,
            available,
        });
    }

    let tmp = partial(&name);
    let _ = dst_parent.remove_dir_all(&tmp);
    dst_parent.create_dir(&tmp).map_err(io_err)?;
    let dst = dst_parent.open_dir(&tmp).map_err(io_err)?;
    let result = copy_tree(&src, &dst, cancel);
    if let Err(e) = result {
        let _ = dst_parent.remove_dir_all(&tmp);
        return Err(match e.kind() {
            io::ErrorKind::Interrupted => BackupError::Interrupted,
            _ => io_err(e),
        });
    }
    fs::sync_dir(&dst).map_err(io_err)?;
    dst_parent
        .rename(&tmp, &dst_parent, &name)
        .map_err(io_err)?;
    fs::sync_dir(&dst_parent).map_err(io_err)?;
    Ok(needed)
}

fn size(dir: &Dir) -> io::Result<u64> {
    let mut total = 0;
    for entry in dir.entries()? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            total += size(&entry.open_dir()?)?;
        } else if ft.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

fn copy_tree(src: &Dir, dst: &Dir, cancel: &Cancel) -> io::Result<()> {
    for entry in src.entries()? {
        if cancel.is_cancelled() {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let entry = entry?;
        let name = entry.file_name();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            dst.create_dir(&name)?;
            copy_tree(&entry.open_dir()?, &dst.open_dir(&name)?, cancel)?;
        } else if ft.is_file() {
            copy_file(src, dst, &name, cancel)?;
        } else if ft.is_symlink() {
            let target = src.read_link_contents(&name)?;
            dst.symlink_contents(target, &name)?;
        } else {
            tracing::warn!(entry = %name.to_string_lossy(), "backup skips a special file (socket, fifo or device)");
        }
    }
    Ok(())
}

/// Copies one file in chunks, so a stop request is noticed within one chunk even in a file of
/// many GiB.
fn copy_file(src: &Dir, dst: &Dir, name: &std::ffi::OsStr, cancel: &Cancel) -> io::Result<()> {
    let mut input = src.open(name)?;
    let mut output = fs::create_fresh(dst, name)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if cancel.is_cancelled() {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n])?;
    }
    output.set_permissions(input.metadata()?.permissions())?;
    output.sync_all()
}
