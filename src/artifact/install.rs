//! Installing a fetched artifact: unpacked into a staging folder of wasmvisor's own beside the
//! upgrade folder, merged into `upgrades/<dir>` (files already there are kept), the binary moved
//! into place last — its presence means the installation is complete.

use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use super::Limits;
use super::unpack;
use crate::plugin::ArchiveFormat;

/// Unpacks the file `name` of `work` (per `format`) and installs the binary as
/// `upgrades/<dir>/bin/<daemon>` under `root`, with any other files of the archive beside it
/// (existing ones are kept).
pub fn install(
    root: &Dir,
    work: &Dir,
    name: &str,
    format: ArchiveFormat,
    dir: &str,
    daemon: &str,
    limits: &Limits,
) -> Result<(), String> {
    let upgrades = root
        .create_dir_all(crate::tree::UPGRADES_DIR)
        .and_then(|()| root.open_dir(crate::tree::UPGRADES_DIR))
        .map_err(|e| format!("cannot open upgrades/: {e}"))?;
    let staging_name = format!(".{dir}.unpack");
    let _ = upgrades.remove_dir_all(&staging_name);
    let limits = limits.within_free_space(&upgrades);
    let result = (|| {
        let staging = crate::fs::own_dir(&upgrades, &staging_name)
            .map_err(|e| format!("cannot create upgrades/{staging_name}: {e}"))?;
        let open = || {
            crate::fs::open_regular(work, name, crate::fs::Follow::No)
                .map(|f| f.into_std())
                .map_err(|e| format!("cannot open the downloaded file {name}: {e}"))
        };
        let format = match format {
            ArchiveFormat::Auto => unpack::sniff(&mut open()?)?,
            f => f,
        };
        match format {
            ArchiveFormat::Raw | ArchiveFormat::Auto => {
                staging.create_dir("bin").map_err(|e| e.to_string())?;
                unpack::copy_limited(
                    &mut open()?,
                    &staging,
                    Path::new("bin").join(daemon).as_path(),
                    limits.unpacked,
                    limits.unpacked,
                )?;
            }
            ArchiveFormat::TarGz => unpack::tar_gz(open()?, &staging, &limits)?,
            ArchiveFormat::Zip => unpack::zip(open()?, &staging, &limits)?,
        }
        let binary = [Path::new("bin").join(daemon), PathBuf::from(daemon)]
            .into_iter()
            .find(|p| staging.symlink_metadata(p).is_ok_and(|m| m.is_file()))
            .ok_or_else(|| format!("the archive holds neither bin/{daemon} nor {daemon}"))?;
        unpack::set_mode(&staging, &binary, 0o755)?;
        let target = format!("upgrades/{dir}");
        root.create_dir_all(format!("{target}/bin"))
            .map_err(|e| format!("cannot create {target}/bin: {e}"))?;
        // Everything else first (files already there are kept), the binary last.
        merge(&staging, Path::new(""), root, Path::new(&target), &binary)?;
        let final_path = format!("{target}/bin/{daemon}");
        staging
            .rename(&binary, root, &final_path)
            .map_err(|e| format!("cannot install {final_path}: {e}"))?;
        let bin_dir = root
            .open_dir(format!("{target}/bin"))
            .map_err(|e| e.to_string())?;
        crate::fs::sync_dir(&bin_dir).map_err(|e| format!("cannot sync {target}/bin: {e}"))?;
        tracing::info!(binary = %final_path, "installed the downloaded binary");
        Ok(())
    })();
    let _ = upgrades.remove_dir_all(&staging_name);
    result
}

/// Moves what `from/rel` holds into `to/rel` under `root`, entry by entry, keeping what is
/// already there and leaving `skip` (the binary) for last.
fn merge(from: &Dir, rel: &Path, root: &Dir, to: &Path, skip: &Path) -> Result<(), String> {
    let dir = if rel.as_os_str().is_empty() {
        from.try_clone().map_err(|e| e.to_string())?
    } else {
        from.open_dir(rel)
            .map_err(|e| format!("cannot open {}: {e}", rel.display()))?
    };
    for entry in dir.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let child = rel.join(entry.file_name());
        if child == skip {
            continue;
        }
        let dest = to.join(&child);
        let is_dir = entry.file_type().map_err(|e| e.to_string())?.is_dir();
        match root.symlink_metadata(&dest) {
            Err(_) => from
                .rename(&child, root, &dest)
                .map_err(|e| format!("cannot move {} into place: {e}", child.display()))?,
            Ok(meta) if is_dir && meta.is_dir() => merge(from, &child, root, to, skip)?,
            Ok(_) => {}
        }
    }
    Ok(())
}
