//! Snapshot backups of `data/`, taken before an upgrade, listed and restored.
//!
//! A backup is `<DAEMON_DATA_BACKUP_DIR>/data-backup-<UTC time>-<upgrade>-h<height>`, a name no
//! second upgrade can clash with. Files are captured the cheapest way that keeps their bytes
//! (`capture.rs`: reflinks, hard links to immutable table files, copies of the rest), so a backup
//! costs the number of files and the size of the mutable ones, not the size of the data. Free
//! space is checked first, for what will be copied. It is made under a `.partial` name; the
//! manifest (`manifest.rs`) is written last and the folder renamed, so a crash leaves nothing that
//! looks like a backup. The last `WASMVISOR_BACKUP_KEEP` backups are kept.
//!
//! A restore checks the backup against its manifest (nothing missing, changed or added), refuses
//! while anything uses the data folder, captures it into a temporary folder beside the data
//! folder, and renames it into place; the old data stays until that rename succeeded.

mod busy;
mod capture;
mod manifest;
mod restore;
mod signing;

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::Serialize;

pub use manifest::{Manifest, Totals, UnusableBackup};
pub use restore::{left_aside, recover_and_warn, restore};

use crate::cancel::Cancel;
use crate::fs;
use crate::output::Progress;

/// The prefix of a backup's folder name.
pub const PREFIX: &str = "data-backup-";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "not enough free space for the backup in {dir}: it copies {needed} bytes (of {total} in data/; the rest is linked) plus a margin of {margin} bytes kept free for the node, and {available} are free; free some space, point DAEMON_DATA_BACKUP_DIR at a folder with more room (on the data's filesystem, so that table files are linked rather than copied), or set UNSAFE_SKIP_BACKUP=true"
    )]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        total: u64,
        margin: u64,
        available: u64,
    },
    #[error(
        "not enough free inodes for the backup in {dir}: it creates {needed} files and folders and {available} inodes are free; free some, or set DAEMON_DATA_BACKUP_DIR to another filesystem"
    )]
    NoInodes {
        dir: PathBuf,
        needed: u64,
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
    /// The backup cannot be restored, now or later: missing, incomplete or damaged.
    #[error("{0}")]
    Unusable(UnusableBackup),
    /// The restore failed (an I/O error, no space): trying again may succeed.
    #[error("{0}")]
    Restore(String),
    /// Something still uses the data folder: the restore may succeed once it stopped.
    #[error(transparent)]
    Busy(#[from] busy::BusyError),
    /// A live signing state cannot be compared or kept: the restore may succeed once it can.
    #[error(transparent)]
    Signing(#[from] signing::SigningError),
}

/// The path of a backup taken now in `dir` for the upgrade folder `dir_name` at `height`: one
/// no other backup has (a second attempt within the same second gets a suffix).
pub fn new_backup_path(dir: &Path, dir_name: &str, height: u64) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let name = format!(
        "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}Z-{dir_name}-h{height}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let taken = |n: &str| {
        dir.join(n).symlink_metadata().is_ok() || dir.join(partial(n)).symlink_metadata().is_ok()
    };
    let mut candidate = name.clone();
    let mut n = 1;
    while taken(&candidate) {
        n += 1;
        candidate = format!("{name}-{n}");
    }
    dir.join(candidate)
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

/// Whether `path` is a complete backup (it has its manifest).
pub fn is_complete(path: &Path) -> bool {
    Dir::open_ambient_dir(path, ambient_authority())
        .is_ok_and(|d| matches!(Manifest::read(&d), Ok(Some(_))))
}

/// What a backup took.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    pub totals: Totals,
    pub seconds: f64,
}

/// Room kept free for the node: 64 MiB, or a twentieth of a small disk.
pub(super) fn margin(total_space: u64) -> u64 {
    (64u64 << 20).min(total_space / 20)
}

/// Takes a backup of `data` as `target` (whose parent must exist) for `upgrade` at `height`.
pub fn create(
    data: &Path,
    target: &Path,
    upgrade: &str,
    height: u64,
    cancel: &Cancel,
) -> Result<Taken, BackupError> {
    let started = Instant::now();
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
    let src = Dir::open_ambient_dir(&canonical_data, ambient_authority()).map_err(io_err)?;
    let dst_parent = Dir::open_ambient_dir(parent, ambient_authority()).map_err(io_err)?;
    let same_fs = same_filesystem(&canonical_data, &canonical_parent);
    let sizes = capture::sizes(&src, same_fs).map_err(io_err)?;
    check_room(&dst_parent, parent, data, &sizes)?;

    let tmp = partial(&name);
    let _ = dst_parent.remove_dir_all(&tmp);
    let dst = fs::own_dir(&dst_parent, &tmp).map_err(io_err)?;
    let mut progress = Progress::new("backup", sizes.total, "backing up data/", "backed up data/");
    let mut capture = capture::Capture::new(cancel, &mut progress, same_fs);
    let result = capture
        .tree(&src, &dst, Path::new(""), None)
        .and_then(|()| {
            let manifest = Manifest::new(upgrade, height, &canonical_data, capture.entries);
            manifest.write(&dst)?;
            Ok(manifest)
        });
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = dst_parent.remove_dir_all(&tmp);
            return Err(match e.kind() {
                io::ErrorKind::Interrupted => BackupError::Interrupted,
                _ => io_err(e),
            });
        }
    };
    fs::sync_dir(&dst).map_err(io_err)?;
    dst_parent
        .rename(&tmp, &dst_parent, &name)
        .map_err(io_err)?;
    fs::sync_dir(&dst_parent).map_err(io_err)?;
    progress.finish();
    Ok(Taken {
        totals: manifest.totals,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Refuses a backup of `data` into `dir` (at `path`) that would leave the node without room:
/// the bytes it copies plus the margin, and an inode for each file and folder.
fn check_room(
    dir: &Dir,
    path: &Path,
    data: &Path,
    sizes: &capture::Sizes,
) -> Result<(), BackupError> {
    let io_err = |source| BackupError::Io {
        data: data.to_path_buf(),
        dir: path.to_path_buf(),
        source,
    };
    let (available, space) = fs::space(dir).map_err(io_err)?;
    let margin = margin(space);
    if sizes.copied + margin > available {
        return Err(BackupError::NoSpace {
            dir: path.to_path_buf(),
            needed: sizes.copied,
            total: sizes.total,
            margin,
            available,
        });
    }
    if let Some(free) = fs::inodes_free(dir).map_err(io_err)?
        && sizes.inodes + 1 > free
    {
        return Err(BackupError::NoInodes {
            dir: path.to_path_buf(),
            needed: sizes.inodes + 1,
            available: free,
        });
    }
    Ok(())
}

pub(super) fn same_filesystem(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

/// A backup as `backup list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub name: String,
    pub path: PathBuf,
    /// The data folder it is a backup of.
    pub source: PathBuf,
    pub upgrade: String,
    pub height: u64,
    pub created_unix_ms: u64,
    pub totals: Totals,
}

/// The complete backups in `dir` (those with a manifest), oldest first, and the names of the
/// folders that look like backups but are not (no manifest, or an unreadable one).
pub fn list(dir: &Path) -> io::Result<(Vec<Listed>, Vec<String>)> {
    let parent = Dir::open_ambient_dir(dir, ambient_authority())?;
    let mut complete = Vec::new();
    let mut incomplete = Vec::new();
    for entry in parent.entries()? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !name.starts_with(PREFIX) || !entry.file_type()?.is_dir() {
            continue;
        }
        // A folder that cannot be opened or has no readable manifest is listed as incomplete.
        let manifest = parent
            .open_dir_nofollow(&name)
            .ok()
            .and_then(|d| Manifest::read(&d).ok().flatten());
        match manifest {
            Some(m) => complete.push(Listed {
                path: dir.join(&name),
                source: m.source,
                name,
                upgrade: m.upgrade,
                height: m.height,
                created_unix_ms: m.created_unix_ms,
                totals: m.totals,
            }),
            _ => incomplete.push(name),
        }
    }
    complete.sort_by_key(|b| (b.created_unix_ms, b.name.clone()));
    incomplete.sort();
    Ok((complete, incomplete))
}

/// Deletes the oldest complete backups of the data folder `source` in `dir` beyond the newest
/// `keep`, never one named in `protect` (the one just taken, one a rollback may need). Backups of
/// another data folder (homes sharing the folder) and folders without a manifest (Cosmovisor's,
/// unfinished ones) are left alone.
pub fn prune(dir: &Path, keep: u32, protect: &[&str], source: &Path) -> io::Result<Vec<String>> {
    let (complete, _) = list(dir)?;
    let source = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
    let ours: Vec<&Listed> = complete.iter().filter(|b| b.source == source).collect();
    let parent = Dir::open_ambient_dir(dir, ambient_authority())?;
    let excess = ours.len().saturating_sub(keep.max(1) as usize);
    let mut removed = Vec::new();
    for backup in ours.iter().take(excess) {
        if protect.contains(&backup.name.as_str()) {
            continue;
        }
        parent.remove_dir_all(&backup.name)?;
        removed.push(backup.name.clone());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
