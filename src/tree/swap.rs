//! The one operation that changes which binary runs: point `current` at another folder, atomically.
//!
//! A new symlink is made under a temporary name and renamed over `current` (rename(2) replaces the
//! old link in one step), then the folder is fsynced. At every instant `current` exists and points
//! at either the old or the new folder, whatever crashes.

use std::io;
use std::path::Path;

use cap_std::fs::Dir;

use crate::fs;

pub const CURRENT_LINK: &str = "current";

/// Points `root/current` at `target` (relative to `root`, e.g. `upgrades/v2` or `genesis`),
/// durably.
pub fn point_current(root: &Dir, target: &Path) -> io::Result<()> {
    relink_current(root, target)?;
    fs::sync_dir(root)
}

/// Points `root/current` at `target` atomically, without waiting for the disk: for a caller
/// that fsyncs `root` itself before anything depends on the switch having reached the disk
/// (an upgrade's commit, whose durable journal write fsyncs the same folder before the launch).
pub fn relink_current(root: &Dir, target: &Path) -> io::Result<()> {
    let tmp = fs::temp_name(Path::new(CURRENT_LINK));
    match root.remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    root.symlink(target, &tmp)?;
    if let Err(e) = root.rename(&tmp, root, CURRENT_LINK) {
        let _ = root.remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}
