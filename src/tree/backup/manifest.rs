//! A backup's manifest, `wasmvisor-backup.json`: what the backup is of (the upgrade, the height,
//! when) and every entry in it — its path, type, size, modification time, mode and how it was
//! captured. It is written last, so a folder without a complete manifest is not a backup; and
//! a restore checks the folder against it before anything is replaced.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use cap_fs_ext::DirExt;
use cap_std::fs::{Dir, Metadata, MetadataExt};
use serde::{Deserialize, Serialize};

use crate::fs::{self, Follow};

pub const MANIFEST_FILE: &str = "wasmvisor-backup.json";
/// A manifest lists one line per file: even a huge data folder stays well below this.
const MAX_MANIFEST: u64 = 256 << 20;

/// How an entry came into the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Captured {
    /// Shares the source's blocks (copy on write).
    Reflink,
    /// A hard link to the source's inode (a table file its database never modifies).
    Link,
    /// A full copy.
    Copy,
    /// A folder or a symlink, created anew.
    Created,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    pub mode: u32,
    pub captured: Captured,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<PathBuf>,
}

impl Entry {
    pub fn of(path: &Path, kind: Kind, meta: &Metadata, captured: Captured) -> Entry {
        Entry {
            path: path.to_path_buf(),
            kind,
            size: if kind == Kind::File { meta.len() } else { 0 },
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            mode: meta.mode() & 0o7777,
            captured,
            target: None,
        }
    }
}

/// Bytes by how they were captured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
    pub reflinked: u64,
    pub linked: u64,
    pub copied: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The upgrade the backup was taken for (its folder name) and its height.
    pub upgrade: String,
    pub height: u64,
    pub created_unix_ms: u64,
    /// The data folder it is a backup of.
    pub source: PathBuf,
    pub totals: Totals,
    pub entries: Vec<Entry>,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{MANIFEST_FILE} is unreadable: {0}")]
    Unreadable(#[source] serde_json::Error),
    #[error("{MANIFEST_FILE}: {0}")]
    Read(#[source] fs::ReadError),
}

/// The first difference between a backup folder and its manifest.
#[derive(Debug, thiserror::Error)]
pub enum Mismatch {
    #[error("its {MANIFEST_FILE} lists no entries, which no backup of a node's data has")]
    NoEntries,
    #[error("{} is missing from the backup: {source}", .path.display())]
    Missing { path: PathBuf, source: io::Error },
    #[error("{} is no longer a folder", .path.display())]
    NotFolder { path: PathBuf },
    #[error("{} is no longer a symlink: {source}", .path.display())]
    NotSymlink { path: PathBuf, source: io::Error },
    #[error("{} points elsewhere than when backed up", .path.display())]
    Retargeted { path: PathBuf },
    #[error("{} is no longer a regular file", .path.display())]
    NotFile { path: PathBuf },
    #[error("{} holds {size} bytes; the backup recorded {recorded}", .path.display())]
    Resized {
        path: PathBuf,
        size: u64,
        recorded: u64,
    },
    #[error("{} was modified after the backup was taken", .path.display())]
    Modified { path: PathBuf },
    #[error(
        "{} (a {kind}) is not in its manifest: it was added after the backup was taken",
        .path.display()
    )]
    Unlisted { path: PathBuf, kind: &'static str },
    /// A folder of the backup could not be listed or opened (`.` for its top).
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl Manifest {
    pub fn new(upgrade: &str, height: u64, source: &Path, entries: Vec<Entry>) -> Manifest {
        let mut totals = Totals::default();
        for e in entries.iter().filter(|e| e.kind == Kind::File) {
            totals.files += 1;
            totals.bytes += e.size;
            match e.captured {
                Captured::Reflink => totals.reflinked += e.size,
                Captured::Link => totals.linked += e.size,
                Captured::Copy | Captured::Created => totals.copied += e.size,
            }
        }
        Manifest {
            upgrade: upgrade.to_string(),
            height,
            created_unix_ms: crate::clock::unix_ms(),
            source: source.to_path_buf(),
            totals,
            entries,
        }
    }

    /// Writes the manifest into the backup folder, durably: the last step of a backup.
    pub fn write(&self, dir: &Dir) -> io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        fs::write_atomic(dir, MANIFEST_FILE, &bytes)
    }

    /// The manifest of the backup folder `dir`; `None` when it has none (not a backup).
    pub fn read(dir: &Dir) -> Result<Option<Manifest>, ManifestError> {
        match fs::read_regular(dir, MANIFEST_FILE, MAX_MANIFEST, Follow::No) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(ManifestError::Unreadable),
            Err(e) => Err(ManifestError::Read(e)),
        }
    }

    /// Checks that `dir` holds every entry as the manifest describes it, and nothing else (a file,
    /// FIFO or link added since would be restored into `data/`). Returns the first difference.
    pub fn verify(&self, dir: &Dir) -> Result<(), Mismatch> {
        if self.entries.is_empty() {
            return Err(Mismatch::NoEntries);
        }
        let listed: HashSet<&Path> = self.entries.iter().map(|e| e.path.as_path()).collect();
        unlisted(dir, Path::new(""), &listed)?;
        for e in &self.entries {
            let path = || e.path.clone();
            let meta = dir
                .symlink_metadata(&e.path)
                .map_err(|source| Mismatch::Missing {
                    path: path(),
                    source,
                })?;
            let ft = meta.file_type();
            match e.kind {
                Kind::Dir if !ft.is_dir() => return Err(Mismatch::NotFolder { path: path() }),
                Kind::Symlink => {
                    let target =
                        dir.read_link_contents(&e.path)
                            .map_err(|source| Mismatch::NotSymlink {
                                path: path(),
                                source,
                            })?;
                    if Some(&target) != e.target.as_ref() {
                        return Err(Mismatch::Retargeted { path: path() });
                    }
                }
                Kind::File if !ft.is_file() => return Err(Mismatch::NotFile { path: path() }),
                Kind::File if meta.len() != e.size => {
                    return Err(Mismatch::Resized {
                        path: path(),
                        size: meta.len(),
                        recorded: e.size,
                    });
                }
                // A copy keeps its source's time and a link shares it: another time means the
                // file was written since (a linked table rewritten by the node, a hand edit).
                Kind::File
                    if i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
                        != e.mtime_ns =>
                {
                    return Err(Mismatch::Modified { path: path() });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Why a backup cannot be restored; each message starts with the backup's path.
#[derive(Debug, thiserror::Error)]
pub enum UnusableBackup {
    #[error("{}: {source}", .backup.display())]
    Open { backup: PathBuf, source: io::Error },
    #[error("{}: {source}", .backup.display())]
    Manifest {
        backup: PathBuf,
        source: ManifestError,
    },
    #[error(
        "{} has no {}: it is not a complete backup",
        .backup.display(),
        MANIFEST_FILE
    )]
    NoManifest { backup: PathBuf },
    #[error(
        "{} does not match its manifest: {source}; it cannot be restored",
        .backup.display()
    )]
    Mismatch { backup: PathBuf, source: Mismatch },
}

/// Opens the backup folder `backup` and checks it against its manifest: what a restore may
/// capture, and the manifest it was checked against.
pub fn open_checked(backup: &Path) -> Result<(Dir, Manifest), UnusableBackup> {
    let path = || backup.to_path_buf();
    let dir = Dir::open_ambient_dir(backup, cap_std::ambient_authority()).map_err(|source| {
        UnusableBackup::Open {
            backup: path(),
            source,
        }
    })?;
    let manifest = Manifest::read(&dir)
        .map_err(|source| UnusableBackup::Manifest {
            backup: path(),
            source,
        })?
        .ok_or_else(|| UnusableBackup::NoManifest { backup: path() })?;
    manifest
        .verify(&dir)
        .map_err(|source| UnusableBackup::Mismatch {
            backup: path(),
            source,
        })?;
    Ok((dir, manifest))
}

/// Refuses the first entry under `dir` (at `rel` in the backup) that the manifest does not list.
fn unlisted(dir: &Dir, rel: &Path, listed: &HashSet<&Path>) -> Result<(), Mismatch> {
    let io = |path: &Path| {
        let path = if path.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            path.to_path_buf()
        };
        move |source| Mismatch::Io { path, source }
    };
    let entries = dir.entries().map_err(io(rel))?;
    for entry in entries {
        let entry = entry.map_err(io(rel))?;
        let name = entry.file_name();
        if rel.as_os_str().is_empty() && name == MANIFEST_FILE {
            continue;
        }
        let path = rel.join(&name);
        if !listed.contains(path.as_path()) {
            let kind = entry.file_type().map(fs::kind).unwrap_or("entry");
            return Err(Mismatch::Unlisted { path, kind });
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let inner = dir.open_dir_nofollow(&name).map_err(io(&path))?;
            unlisted(&inner, &path, listed)?;
        }
    }
    Ok(())
}
