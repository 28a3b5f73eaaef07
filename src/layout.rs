//! The `$DAEMON_HOME` tree, opened as capability directories so that no upgrade name, file or
//! symlink content can make wasmvisor read or write outside it.
//!
//! ```text
//! $DAEMON_HOME/data/upgrade-info.json[.batch]
//! $DAEMON_HOME/cosmovisor/{current -> genesis | upgrades/<name>, genesis/bin/$DAEMON_NAME,
//!                          upgrades/<name>/bin/$DAEMON_NAME, upgrades/<name>/upgrade-info.json}
//! ```

use cap_std::fs::PermissionsExt as _;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::config::Config;
use crate::fsutil::{self, Follow};
use crate::plan::{self, Plan, Read};
use crate::swap::CURRENT_LINK;

pub const GENESIS_DIR: &str = "genesis";
/// The longest file name Linux filesystems hold (NAME_MAX).
pub const MAX_DIR_NAME: usize = 255;
/// Plan files are a few KiB; the cap keeps a hostile one from costing memory.
pub const MAX_PLAN_FILE: u64 = 1 << 20;
pub const UPGRADES_DIR: &str = "upgrades";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}; create the tree with `wasmvisor init <path-to-node-binary>`")]
    Missing { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "upgrade name {0:?} is not usable as a folder name (empty, \".\" or \"..\"); the plan must be renamed"
    )]
    BadName(String),
    #[error(
        "upgrade name {name:?}… is too long: {bytes} bytes as a folder name, and a folder name holds at most {MAX_DIR_NAME}; the plan must be renamed"
    )]
    NameTooLong { name: String, bytes: usize },
    #[error(
        "{link} is a {kind}, not a symlink; `current` must be a link to genesis or upgrades/<name>: move it aside and run `ln -s genesis {link}` (or link the upgrade that is running)"
    )]
    CurrentNotLink { link: PathBuf, kind: &'static str },
    #[error(
        "{path} is a symlink to {target:?}, which is outside {root}; wasmvisor runs only binaries inside the tree: replace the link with the binary itself (`wasmvisor add-upgrade <name> <binary> --force`)"
    )]
    BinaryOutside {
        path: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("{path}: {why}; give the path of the node binary")]
    Source { path: PathBuf, why: String },
    #[error(
        "not enough free space in {path}: the binary needs {needed} bytes plus a margin of {margin} bytes for the node, and {free} bytes are free"
    )]
    NoSpace {
        path: PathBuf,
        needed: u64,
        margin: u64,
        free: u64,
    },
    #[error(
        "{link} points to {target:?}, which is not genesis or a folder under upgrades/; point it back with `ln -sfn genesis {link}` or at the right upgrade"
    )]
    BadCurrent { link: PathBuf, target: PathBuf },
    #[error(
        "{path}: the node binary is missing; place the binary there (e.g. `wasmvisor add-upgrade`) before the upgrade"
    )]
    MissingBinary { path: PathBuf },
    #[error(
        "{path}: not an executable file ({why}); fix it with `chmod +x` or replace it with the binary itself"
    )]
    BadBinary { path: PathBuf, why: String },
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

pub struct Layout {
    pub home: PathBuf,
    pub root_path: PathBuf,
    pub daemon_name: String,
    recase: bool,
    pub root: Dir,
    pub data: Dir,
}

/// Lower-cases (unless disabled) and URL-path-escapes a plan name, exactly as Cosmovisor names the
/// upgrade folder. Names that would address something other than a child folder are refused.
pub fn upgrade_dir_name(name: &str, recase: bool) -> Result<String, LayoutError> {
    let name = if recase {
        name.to_lowercase()
    } else {
        name.to_string()
    };
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~$&+:=@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        return Err(LayoutError::BadName(name));
    }
    if out.len() > MAX_DIR_NAME {
        return Err(LayoutError::NameTooLong {
            name: name.chars().take(40).collect(),
            bytes: out.len(),
        });
    }
    Ok(out)
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
            recase: !cfg.disable_recase,
            root,
            data,
        })
    }

    pub fn dir_name(&self, plan_name: &str) -> Result<String, LayoutError> {
        upgrade_dir_name(plan_name, self.recase)
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
                        kind: fsutil::kind(meta.file_type()),
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
                why: "not a regular file".into(),
            }),
            Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Err(LayoutError::BadBinary {
                path,
                why: "no execute permission".into(),
            }),
            Ok(_) => Ok(()),
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
                    why: e.to_string(),
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

    /// The plan record of a folder: the plan that was applied when `current` was switched to it.
    pub fn applied_plan(&self, current: &Current) -> Option<Plan> {
        let rel = current.rel_dir().join(plan::UPGRADE_INFO_FILE);
        let bytes = fsutil::read_regular(&self.root, &rel, MAX_PLAN_FILE, Follow::Yes).ok()??;
        match plan::parse(&bytes) {
            Read::Valid(p) => Some(p),
            _ => None,
        }
    }

    pub fn write_record(&self, dir_name: &str, plan: &Plan) -> Result<(), LayoutError> {
        let dir = Path::new(UPGRADES_DIR).join(dir_name);
        let sub = self.root.open_dir(&dir).map_err(|e| self.io(&dir, e))?;
        fsutil::write_atomic(&sub, plan::UPGRADE_INFO_FILE, plan.to_json().as_bytes())
            .map_err(|e| self.io(dir.join(plan::UPGRADE_INFO_FILE), e))
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

    /// Reads `data/upgrade-info.json`. A symlink leading out of the data folder, a FIFO, a
    /// device or an oversized file reads as invalid, without blocking.
    pub fn read_upgrade_info(&self) -> Read {
        match fsutil::read_regular(
            &self.data,
            plan::UPGRADE_INFO_FILE,
            MAX_PLAN_FILE,
            Follow::Yes,
        ) {
            Ok(None) => Read::Absent,
            Ok(Some(bytes)) => plan::parse(&bytes),
            Err(e) => Read::Invalid(match e {
                fsutil::ReadError::Io(e) => format!("cannot read it: {e}"),
                other => other.to_string(),
            }),
        }
    }

    pub fn upgrade_info_path(&self) -> PathBuf {
        self.home.join("data").join(plan::UPGRADE_INFO_FILE)
    }

    pub fn batch_path(&self) -> PathBuf {
        self.home.join("data").join(plan::BATCH_FILE)
    }

    /// The manual plans of `data/upgrade-info.json.batch`, sorted by height.
    pub fn read_batch(&self) -> Result<Vec<Plan>, String> {
        match fsutil::read_regular(&self.data, plan::BATCH_FILE, MAX_PLAN_FILE, Follow::Yes) {
            Ok(None) => Ok(Vec::new()),
            Ok(Some(bytes)) => plan::parse_batch(&bytes)
                .map_err(|e| format!("{}: {e}", self.batch_path().display())),
            Err(e) => Err(format!("{}: {e}", self.batch_path().display())),
        }
    }

    pub fn write_batch(&self, plans: &[Plan]) -> io::Result<()> {
        if plans.is_empty() {
            return match self.data.remove_file(plan::BATCH_FILE) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => fsutil::sync_dir(&self.data),
            };
        }
        fsutil::write_atomic(
            &self.data,
            plan::BATCH_FILE,
            plan::batch_to_json(plans).as_bytes(),
        )
    }

    /// Writes `data/upgrade-info.json` the way a halting node would, but atomically.
    pub fn write_upgrade_info(&self, plan: &Plan) -> io::Result<()> {
        fsutil::write_atomic(
            &self.data,
            plan::UPGRADE_INFO_FILE,
            plan.to_json().as_bytes(),
        )
    }

    /// Copies a binary from anywhere into `<rel_dir>/bin/$DAEMON_NAME` with exec bits, atomically.
    /// The source must be a regular file (a device or FIFO is refused before a byte is read),
    /// and the copy streams: its size costs disk, checked first, never memory.
    pub fn install_binary(&self, rel_dir: &Path, source: &Path) -> Result<(), LayoutError> {
        let source_err = |why: String| LayoutError::Source {
            path: source.to_path_buf(),
            why,
        };
        let mut input = fsutil::open_regular_path(source).map_err(|e| source_err(e.to_string()))?;
        let size = input
            .metadata()
            .map_err(|e| source_err(e.to_string()))?
            .len();
        let bin_dir = rel_dir.join("bin");
        self.root
            .create_dir_all(&bin_dir)
            .map_err(|e| self.io(&bin_dir, e))?;
        let sub = self
            .root
            .open_dir(&bin_dir)
            .map_err(|e| self.io(&bin_dir, e))?;
        let free = fsutil::free_bytes(&sub).map_err(|e| self.io(&bin_dir, e))?;
        if size.saturating_add(INSTALL_MARGIN) > free {
            return Err(LayoutError::NoSpace {
                path: self.root_path.join(&bin_dir),
                needed: size,
                margin: INSTALL_MARGIN,
                free,
            });
        }
        let target = bin_dir.join(&self.daemon_name);
        let tmp = fsutil::temp_name(Path::new(&self.daemon_name));
        let copied = (|| {
            let mut out = fsutil::create_fresh(&sub, &tmp)?;
            std::io::copy(&mut input, &mut out)?;
            out.set_permissions(cap_std::fs::Permissions::from_std(
                std::fs::Permissions::from_mode(0o755),
            ))?;
            out.sync_all()?;
            sub.rename(&tmp, &sub, &self.daemon_name)?;
            fsutil::sync_dir(&sub)
        })();
        if let Err(e) = copied {
            let _ = sub.remove_file(&tmp);
            return Err(self.io(target, e));
        }
        Ok(())
    }
}

/// Room left on the disk after installing a binary, for the node's own writes.
const INSTALL_MARGIN: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_recased_and_escaped_like_cosmovisor() {
        assert_eq!(upgrade_dir_name("V2", true).unwrap(), "v2");
        assert_eq!(upgrade_dir_name("V2", false).unwrap(), "V2");
        assert_eq!(
            upgrade_dir_name("some spaces", true).unwrap(),
            "some%20spaces"
        );
        assert_eq!(
            upgrade_dir_name("../../etc", true).unwrap(),
            "..%2F..%2Fetc"
        );
        assert_eq!(upgrade_dir_name("a/b", true).unwrap(), "a%2Fb");
        assert_eq!(
            upgrade_dir_name("v1.2.3-rc+x@y", true).unwrap(),
            "v1.2.3-rc+x@y"
        );
        assert_eq!(upgrade_dir_name("a;b,c?d", true).unwrap(), "a%3Bb%2Cc%3Fd");
    }

    #[test]
    fn names_that_address_no_child_folder_are_refused() {
        for bad in ["", ".", ".."] {
            assert!(upgrade_dir_name(bad, true).is_err(), "{bad:?}");
        }
    }
}
