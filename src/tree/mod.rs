//! The `$DAEMON_HOME` tree on disk, opened as capability directories so that no upgrade name,
//! file or symlink content can make wasmvisor read or write outside it.
//!
//! ```text
//! $DAEMON_HOME/data/upgrade-info.json[.batch]            plans.rs
//! $DAEMON_HOME/cosmovisor/current -> genesis | upgrades/<name>    swap.rs
//!                         genesis/bin/$DAEMON_NAME, upgrades/<name>/bin/$DAEMON_NAME   add.rs
//!                         upgrades/<name>/upgrade-info.json        plans.rs (the plan record)
//!                         wasmvisor.lock, wasmvisor-journal.json  lock.rs, upgrade/journal.rs
//! <DAEMON_DATA_BACKUP_DIR>/data-backup-…                          backup.rs
//! ```
//!
//! This module opens the tree and says where `current` points and whether a folder holds a
//! binary that can run.

mod add;
pub mod backup;
pub mod executable;
pub mod lock;
mod names;
pub mod plans;
pub mod swap;

use std::io;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, PermissionsExt as _};

use crate::config::Config;
use crate::fs::ReadError;
use executable::BinaryFault;
pub use names::{NameError, Names};
pub use plans::{Plan, Read};
use swap::CURRENT_LINK;

pub const GENESIS_DIR: &str = "genesis";
pub const UPGRADES_DIR: &str = "upgrades";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}; create the tree with `wasmvisor init <path-to-node-binary>`")]
    Missing { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(
        "{link} is a {kind}, not a symlink; `current` must be a link to genesis or upgrades/<name>: move it aside and run `ln -s genesis {link}` (or link the upgrade that is running)"
    )]
    CurrentNotLink { link: PathBuf, kind: &'static str },
    #[error(
        "{link} points to {target:?}, which is not genesis or a folder under upgrades/; point it back with `ln -sfn genesis {link}` or at the right upgrade"
    )]
    BadCurrent { link: PathBuf, target: PathBuf },
    #[error(
        "{path}: the node binary is missing; place the binary there (e.g. `wasmvisor add-upgrade`) before the upgrade"
    )]
    MissingBinary { path: PathBuf },
    #[error(
        "{path} {why}; replace it with the right binary (`wasmvisor add-upgrade <name> <binary> --force`)"
    )]
    BadBinary {
        path: PathBuf,
        #[source]
        why: BinaryFault,
    },
    #[error(
        "{path} is a symlink to {target:?}, which is outside {root}; wasmvisor runs only binaries inside the tree: replace the link with the binary itself (`wasmvisor add-upgrade <name> <binary> --force`)"
    )]
    BinaryOutside {
        path: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("{path}: {source}; give the path of the node binary")]
    Source { path: PathBuf, source: ReadError },
    #[error(
        "not enough free space in {path}: the binary needs {needed} bytes plus a margin of {margin} bytes for the node, and {free} bytes are free"
    )]
    NoSpace {
        path: PathBuf,
        needed: u64,
        margin: u64,
        free: u64,
    },
}

/// Which folder `current` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    Genesis,
    /// The folder name under `upgrades/` (already normalised).
    Upgrade(String),
}

impl Current {
    /// The folder relative to the cosmovisor root.
    pub fn rel_dir(&self) -> PathBuf {
        match self {
            Current::Genesis => PathBuf::from(GENESIS_DIR),
            Current::Upgrade(name) => Path::new(UPGRADES_DIR).join(name),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Current::Genesis => GENESIS_DIR,
            Current::Upgrade(name) => name,
        }
    }
}

/// The opened tree of one home.
pub struct Layout {
    pub home: PathBuf,
    pub root_path: PathBuf,
    pub daemon_name: String,
    pub names: Names,
    pub root: Dir,
    pub data: Dir,
}

impl Layout {
    /// Opens an existing tree. The data folder is created when missing (a fresh node has none yet).
    pub fn open(cfg: &Config) -> Result<Layout, LayoutError> {
        let root_path = cfg.root();
        let root = Dir::open_ambient_dir(&root_path, ambient_authority()).map_err(|source| {
            LayoutError::Missing {
                path: root_path.clone(),
                source,
            }
        })?;
        let data_path = cfg.home.join("data");
        // A restore killed between its two renames left the data aside: put it back before an
        // empty folder could take its place (and say so loudly if one already did).
        if let Err(source) = backup::recover_and_warn(&data_path) {
            return Err(LayoutError::Io {
                path: data_path,
                source,
            });
        }
        if let Err(source) = std::fs::create_dir_all(&data_path) {
            return Err(LayoutError::Io {
                path: data_path,
                source,
            });
        }
        let data = Dir::open_ambient_dir(&data_path, ambient_authority()).map_err(|source| {
            LayoutError::Io {
                path: data_path.clone(),
                source,
            }
        })?;
        Ok(Layout {
            home: cfg.home.clone(),
            root_path,
            daemon_name: cfg.name.clone(),
            names: Names {
                recase: !cfg.disable_recase,
            },
            root,
            data,
        })
    }

    /// The same tree, opened again from the same folders (nothing is recovered or created): for
    /// work on another thread that must not touch `data/`.
    pub fn try_clone(&self) -> std::io::Result<Layout> {
        Ok(Layout {
            home: self.home.clone(),
            root_path: self.root_path.clone(),
            daemon_name: self.daemon_name.clone(),
            names: self.names,
            root: self.root.try_clone()?,
            data: self.data.try_clone()?,
        })
    }

    /// The folder under `upgrades/` for a plan name.
    pub fn dir_name(&self, plan_name: &str) -> Result<String, NameError> {
        self.names.dir(plan_name)
    }

    fn io(&self, rel: impl AsRef<Path>, source: io::Error) -> LayoutError {
        LayoutError::Io {
            path: self.root_path.join(rel),
            source,
        }
    }

    /// Where `current` points. A missing link means genesis, as for Cosmovisor. Absolute links
    /// (written by old Cosmovisor versions) are accepted when they lead into this tree.
    pub fn current(&self) -> Result<Current, LayoutError> {
        let target = match self.root.read_link_contents(CURRENT_LINK) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Current::Genesis),
            Err(e) => {
                return Err(match self.root.symlink_metadata(CURRENT_LINK) {
                    Ok(meta) if !meta.is_symlink() => LayoutError::CurrentNotLink {
                        link: self.root_path.join(CURRENT_LINK),
                        kind: crate::fs::kind(meta.file_type()),
                    },
                    _ => self.io(CURRENT_LINK, e),
                });
            }
        };
        let bad = || LayoutError::BadCurrent {
            link: self.root_path.join(CURRENT_LINK),
            target: target.clone(),
        };
        let rel = if target.is_absolute() {
            let canonical_root =
                std::fs::canonicalize(&self.root_path).unwrap_or_else(|_| self.root_path.clone());
            target
                .strip_prefix(&self.root_path)
                .or_else(|_| target.strip_prefix(&canonical_root))
                .map_err(|_| bad())?
                .to_path_buf()
        } else {
            target.clone()
        };
        let parts: Vec<&str> = rel
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| match c {
                Component::Normal(s) => s.to_str().ok_or_else(bad),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?;
        match parts.as_slice() {
            [GENESIS_DIR] => Ok(Current::Genesis),
            [UPGRADES_DIR, name] if *name != "." && *name != ".." => {
                Ok(Current::Upgrade(name.to_string()))
            }
            _ => Err(bad()),
        }
    }

    pub fn binary_rel(&self, current: &Current) -> PathBuf {
        current.rel_dir().join("bin").join(&self.daemon_name)
    }

    /// The absolute path to execute (the folder, not the `current` link, so a concurrent switch
    /// cannot change which binary a launch runs).
    pub fn binary_path(&self, current: &Current) -> PathBuf {
        self.root_path.join(self.binary_rel(current))
    }

    /// Checks that the folder holds an executable binary (inside the tree: a symlink leading
    /// outside is refused).
    pub fn check_binary(&self, current: &Current) -> Result<(), LayoutError> {
        let rel = self.binary_rel(current);
        let path = self.root_path.join(&rel);
        match self.root.metadata(&rel) {
            Ok(meta) if !meta.is_file() => Err(LayoutError::BadBinary {
                path,
                why: BinaryFault::NotRegular,
            }),
            Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Err(LayoutError::BadBinary {
                path,
                why: BinaryFault::NoExecBit,
            }),
            Ok(_) => {
                // A binary for another machine (or an archive taken for one) fails here, not at
                // the launch after the switch.
                let mut head = Vec::new();
                let read = self.root.open(&rel).and_then(|f| {
                    std::io::Read::read_to_end(&mut std::io::Read::take(f, 64), &mut head)
                });
                match read {
                    Ok(_) => executable::executable(&head).map_err(|e| LayoutError::BadBinary {
                        path,
                        why: e.into(),
                    }),
                    // Execute-only: nothing to look at, the kernel will judge it.
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
                    Err(e) => Err(LayoutError::BadBinary {
                        path,
                        why: BinaryFault::Unreadable(e),
                    }),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(LayoutError::MissingBinary { path })
            }
            Err(e) => Err(match self.link_outside(&rel) {
                Some(target) => LayoutError::BinaryOutside {
                    path,
                    target,
                    root: self.root_path.clone(),
                },
                None => LayoutError::BadBinary {
                    path,
                    why: BinaryFault::Unusable(e),
                },
            }),
        }
    }

    /// If `rel` (or a folder on its way) is a symlink leading out of the tree, where it leads.
    fn link_outside(&self, rel: &Path) -> Option<PathBuf> {
        let mut walked = PathBuf::new();
        for part in rel.components() {
            walked.push(part);
            if let Ok(target) = self.root.read_link_contents(&walked) {
                let escapes = target.is_absolute()
                    || walked
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(&target)
                        .components()
                        .try_fold(0usize, |depth, c| match c {
                            Component::ParentDir => depth.checked_sub(1),
                            Component::Normal(_) => Some(depth + 1),
                            _ => Some(depth),
                        })
                        .is_none();
                if escapes {
                    return Some(target);
                }
            }
        }
        None
    }

    /// `LD_LIBRARY_PATH` for running the binary of `current`: its folder's `lib/` (CosmWasm
    /// chains ship `libwasmvm` per version) before whatever wasmvisor was given. `None` when the
    /// folder has no `lib/`.
    pub fn library_path(&self, current: &Current) -> Option<std::ffi::OsString> {
        let rel = current.rel_dir().join("lib");
        if !self.root.metadata(&rel).is_ok_and(|m| m.is_dir()) {
            return None;
        }
        let mut value = self.root_path.join(rel).into_os_string();
        if let Some(inherited) = std::env::var_os("LD_LIBRARY_PATH").filter(|v| !v.is_empty()) {
            value.push(":");
            value.push(inherited);
        }
        Some(value)
    }

    /// Upgrade folders that hold a binary, sorted by name.
    pub fn staged(&self) -> Vec<String> {
        let Ok(entries) = self.root.read_dir(UPGRADES_DIR) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| self.check_binary(&Current::Upgrade(name.clone())).is_ok())
            .collect();
        names.sort();
        names
    }
}
