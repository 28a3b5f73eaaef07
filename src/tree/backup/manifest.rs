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
    pub fn read(dir: &Dir) -> Result<Option<Manifest>, String> {
        match fs::read_regular(dir, MANIFEST_FILE, MAX_MANIFEST, Follow::No) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{MANIFEST_FILE} is unreadable: {e}")),
            Err(e) => Err(format!("{MANIFEST_FILE}: {e}")),
        }
    }

    /// Checks that `dir` holds every entry as the manifest describes it, and nothing else (a file,
    /// FIFO or link added since would be restored into `data/`). Returns the first difference,
    /// in words.
    pub fn verify(&self, dir: &Dir) -> Result<(), String> {
        if self.entries.is_empty() {
            return Err(format!(
                "its {MANIFEST_FILE} lists no entries, which no backup of a node's data has"
            ));
        }
        let listed: HashSet<&Path> = self.entries.iter().map(|e| e.path.as_path()).collect();
        unlisted(dir, Path::new(""), &listed)?;
        for e in &self.entries {
            let shown = e.path.display();
            let meta = dir
                .symlink_metadata(&e.path)
                .map_err(|err| format!("{shown} is missing from the backup: {err}"))?;
            let ft = meta.file_type();
            match e.kind {
                Kind::Dir if !ft.is_dir() => return Err(format!("{shown} is no longer a folder")),
                Kind::Symlink => {
                    let target = dir
                        .read_link_contents(&e.path)
                        .map_err(|err| format!("{shown} is no longer a symlink: {err}"))?;
                    if Some(&target) != e.target.as_ref() {
                        return Err(format!("{shown} points elsewhere than when backed up"));
                    }
                }
                Kind::File if !ft.is_file() => {
                    return Err(format!("{shown} is no longer a regular file"));
                }
                Kind::File if meta.len() != e.size => {
                    return Err(format!(
                        "{shown} holds {} bytes; the backup recorded {}",
                        meta.len(),
                        e.size
                    ));
                }
                // A copy keeps its source's time and a link shares it: another time means the
                // file was written since (a linked table rewritten by the node, a hand edit).
                Kind::File
                    if i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
                        != e.mtime_ns =>
                {
                    return Err(format!("{shown} was modified after the backup was taken"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Refuses the first entry under `dir` (at `rel` in the backup) that the manifest does not list.
fn unlisted(dir: &Dir, rel: &Path, listed: &HashSet<&Path>) -> Result<(), String> {
    let shown = |p: &Path| {
        if p.as_os_str().is_empty() {
            ".".to_string()
        } else {
            p.display().to_string()
        }
    };
    let entries = dir.entries().map_err(|e| format!("{}: {e}", shown(rel)))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", shown(rel)))?;
        let name = entry.file_name();
        if rel.as_os_str().is_empty() && name == MANIFEST_FILE {
            continue;
        }
        let path = rel.join(&name);
        if !listed.contains(path.as_path()) {
            let kind = entry.file_type().map(fs::kind).unwrap_or("entry");
            return Err(format!(
                "{} (a {kind}) is not in its manifest: it was added after the backup was taken",
                path.display()
            ));
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let inner = dir
                .open_dir_nofollow(&name)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            unlisted(&inner, &path, listed)?;
        }
    }
    Ok(())
}
