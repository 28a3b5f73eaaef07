//! Restoring a backup into `data/`, so that at every instant `data/` is either the old data or
//! the restored one, whatever is killed when:
//!
//! - **beside** (the usual case): the backup is captured into `.data.restoring` next to the real
//!   data folder (a `data` symlink is followed), on its filesystem, then exchanged with it in one
//!   `renameat2(RENAME_EXCHANGE)`; the old data is removed last. Where the filesystem cannot
//!   exchange, two renames: the old folder out of the way first (as `.data.replaced`), which
//!   [`recover`] puts back if the process dies before anything took its place, then renamed to
//!   `.data.removing` once the restored data is in place. So a `.data.replaced` beside a
//!   `data/` means a `data/` created since (by hand, by an init script): it may hold the only
//!   copy of the node's data, is never removed, and a restore is refused until the operator
//!   decided ([`left_aside`]).
//! - **in place**, when `data/` is a mount point (a disk of its own, which cannot be renamed): the
//!   backup is captured into `data/.wasmvisor-restoring`, the old entries are moved into
//!   `data/.wasmvisor-replaced` one by one and the restored ones out, then both are removed. A
//!   restore interrupted half-way is done again from the start, moving only what is left.
//!
//! The validator's signing state never goes back ([`super::signing`]). Nothing may use `data/`
//! meanwhile ([`super::busy`]): a database open on it would write into the replaced files.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::manifest::{self, MANIFEST_FILE, Totals};
use super::signing::Candidate;
use super::{BackupError, busy, capture, margin, same_filesystem, signing};
use crate::cancel::Cancel;
use crate::fs;
use crate::kill_hook::kill_hook;
use crate::output::Progress;

/// Test hook: take the two-rename path, as on a filesystem without `RENAME_EXCHANGE`.
const NO_EXCHANGE_HOOK_ENV: &str = "WASMVISOR_TEST_NO_EXCHANGE";
const RESTORING: &str = ".wasmvisor-restoring";
const REPLACED: &str = ".wasmvisor-replaced";

/// What a restore did.
#[derive(Debug, Clone, Copy)]
pub struct Restored {
    pub totals: Totals,
    /// Whether the validator's signing state was kept from the replaced data (it was ahead of
    /// the backup's, so restoring it could let the validator sign a height twice).
    pub kept_signing_state: bool,
    /// Whether `data/` is a mount point, restored entry by entry inside it.
    pub in_place: bool,
}

/// The real data folder, its parent, and its name in it.
fn locate(data: &Path) -> (PathBuf, PathBuf, String) {
    let real = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    let parent = real.parent().unwrap_or(Path::new("/")).to_path_buf();
    let base = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    (real, parent, base)
}

/// The folders a restore keeps beside the data folder `base`: the capture, the old data moved
/// aside (two-rename path), and that old data once the restored data is in place.
fn names(base: &str) -> (String, String, String) {
    (
        format!(".{base}.restoring"),
        format!(".{base}.replaced"),
        format!(".{base}.removing"),
    )
}

/// Puts back a data folder that an interrupted two-rename restore moved out of the way and
/// nothing replaced. Called before anything may create an empty `data/` in its place. Returns
/// whether it did.
pub fn recover(data: &Path) -> io::Result<bool> {
    if data.symlink_metadata().is_ok() {
        return Ok(false);
    }
    let (_, parent_path, base) = locate(data);
    let (_, outgoing, _) = names(&base);
    let Ok(parent) = Dir::open_ambient_dir(&parent_path, ambient_authority()) else {
        return Ok(false);
    };
    if parent.symlink_metadata(&outgoing).is_err() {
        return Ok(false);
    }
    parent.rename(&outgoing, &parent, &base)?;
    fs::sync_dir(&parent)?;
    Ok(true)
}

/// When a data folder an interrupted restore moved aside is beside an existing `data` (created
/// since, by hand or by an init script that creates it when missing): what to tell the
/// operator. That folder may hold the node's only copy of its data and its newest signing
/// state, so nothing removes it and a restore is refused until the operator chose.
pub fn left_aside(data: &Path) -> Option<String> {
    let (real, parent_path, base) = locate(data);
    let (_, outgoing, _) = names(&base);
    let parent = Dir::open_ambient_dir(&parent_path, ambient_authority()).ok()?;
    let aside = parent.open_dir_nofollow(&outgoing).ok()?;
    let live = Dir::open_ambient_dir(&real, ambient_authority()).ok()?;
    let aside_path = parent_path.join(&outgoing);
    let state = |dir, path: &Path| signing::describe(&Candidate { dir, path }, &real);
    Some(format!(
        "{aside} is a data folder a restore moved aside, and {data} was created since (by hand or by an init script): {aside} may hold the node's only copy of its data ({}; {data}: {}). Nothing was removed. Stop the node and decide: if {aside} is the node's data, move {data} away and rename {aside} to {data}; if {data} is, remove {aside}. `backup restore` and a rollback refuse to run until then",
        state(&aside, &aside_path),
        state(&live, &real),
        aside = aside_path.display(),
        data = real.display(),
    ))
}

/// What every command opening the home does first: [`recover`], and a loud warning when a data
/// folder left aside is beside a `data/` created since ([`left_aside`]).
pub fn recover_and_warn(data: &Path) -> io::Result<()> {
    if recover(data)? {
        tracing::warn!(data = %data.display(), "put back the data folder an interrupted restore had moved aside");
    } else if let Some(why) = left_aside(data) {
        tracing::error!("{why}");
    }
    Ok(())
}

/// Replaces the data folder `data` with the backup `backup`, checked against its manifest
/// first. The old data is kept until the restored data is in place, then removed.
pub fn restore(backup: &Path, data: &Path, cancel: &Cancel) -> Result<Restored, BackupError> {
    let (from, manifest) = manifest::open_checked(backup).map_err(BackupError::Unusable)?;
    if recover(data).map_err(|e| BackupError::Restore(format!("{}: {e}", data.display())))? {
        tracing::warn!(data = %data.display(), "put back the data folder an interrupted restore had moved aside");
    }
    let (real, parent_path, base) = locate(data);
    if let Some(why) = left_aside(data) {
        return Err(BackupError::Restore(why));
    }
    busy::check(&real)?;
    let in_place = is_mount_point(&real, &parent_path);
    let target_dir = if in_place { &real } else { &parent_path };
    check_space(&from, backup, target_dir)?;
    let mut progress = Progress::new(
        "restore",
        manifest.totals.bytes,
        "restoring data/",
        "restored data/",
    );
    let same_fs = same_filesystem(backup, target_dir);
    let mut capture = capture::Capture::new(cancel, &mut progress, same_fs);
    let kept_signing_state = if in_place {
        in_place_restore(&from, &real, &mut capture)?
    } else {
        beside(&from, &real, &parent_path, &base, &mut capture)?
    };
    progress.finish();
    Ok(Restored {
        totals: manifest.totals,
        kept_signing_state,
        in_place,
    })
}

/// Whether `real` is a mount point (on another device than its parent).
fn is_mount_point(real: &Path, parent: &Path) -> bool {
    match (std::fs::metadata(real), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// Refuses a restore that would fill the disk: the bytes the capture copies (linked files cost
/// nothing), plus the margin left to the node.
fn check_space(from: &Dir, backup: &Path, target: &Path) -> Result<(), BackupError> {
    let fail = |e: io::Error| BackupError::Restore(format!("{}: {e}", target.display()));
    let dir = Dir::open_ambient_dir(target, ambient_authority()).map_err(fail)?;
    let sizes = capture::sizes(from, same_filesystem(backup, target)).map_err(fail)?;
    let (available, total) = fs::space(&dir).map_err(fail)?;
    let margin = margin(total);
    if sizes.copied + margin > available {
        return Err(BackupError::Restore(format!(
            "not enough free space in {} to restore: it copies {} bytes plus a margin of {margin}, and {available} are free",
            target.display(),
            sizes.copied
        )));
    }
    Ok(())
}

fn failed(what: &str, e: io::Error) -> BackupError {
    match e.kind() {
        io::ErrorKind::Interrupted => BackupError::Interrupted,
        _ => BackupError::Restore(format!("{what}: {e}")),
    }
}

/// Removes `name` in `dir` if it is there.
fn clear(dir: &Dir, name: &str) -> Result<(), BackupError> {
    match dir.remove_dir_all(name) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(failed(&format!("removing the leftover {name}"), e)),
    }
}

/// The usual restore: captured beside the data folder, exchanged with it.
fn beside(
    from: &Dir,
    real: &Path,
    parent_path: &Path,
    base: &str,
    capture: &mut capture::Capture,
) -> Result<bool, BackupError> {
    let parent = Dir::open_ambient_dir(parent_path, ambient_authority())
        .map_err(|e| failed(&parent_path.display().to_string(), e))?;
    let (incoming, outgoing, removing) = names(base);
    // A leftover `.restoring` is an unfinished capture or, after an exchange, the old data whose
    // removal was interrupted; a leftover `.removing`, old data too. Both had their signing
    // state compared already. (A `.replaced` beside the data folder was refused before.)
    clear(&parent, &incoming)?;
    clear(&parent, &removing)?;
    let into = fs::own_dir(&parent, &incoming).map_err(|e| failed(&incoming, e))?;
    let into_path = parent_path.join(&incoming);
    let captured = capture
        .tree(from, &into, Path::new(""), Some(MANIFEST_FILE))
        .map_err(|e| failed("capturing the backup", e))
        .and_then(|()| match parent.open_dir_nofollow(base) {
            Ok(old) => signing::keep_newest(
                &[Candidate {
                    dir: &old,
                    path: real,
                }],
                &Candidate {
                    dir: &into,
                    path: &into_path,
                },
                real,
            )
            .map_err(BackupError::from),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(failed(&real.display().to_string(), e)),
        })
        .and_then(|kept| {
            fs::sync_dir(&into)
                .map(|()| kept)
                .map_err(|e| failed(&incoming, e))
        });
    let kept = match captured {
        Ok(kept) => kept,
        Err(e) => {
            let _ = parent.remove_dir_all(&incoming);
            return Err(e);
        }
    };
    if parent.symlink_metadata(base).is_ok() {
        exchange(&parent, &incoming, base, &outgoing)?;
    } else {
        parent
            .rename(&incoming, &parent, base)
            .map_err(|e| failed("putting the restored data in place", e))?;
    }
    fs::sync_dir(&parent).map_err(|e| failed(&parent_path.display().to_string(), e))?;
    // The old data moved aside by two renames is no longer needed: renamed before it is
    // removed, so that a `.replaced` left beside a data folder always means one created since.
    match parent.rename(&outgoing, &parent, &removing) {
        Ok(()) => {
            fs::sync_dir(&parent).map_err(|e| failed(&parent_path.display().to_string(), e))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(&format!("renaming the replaced data {outgoing}"), e)),
    }
    kill_hook("restore:swapped");
    for leftover in [&incoming, &removing] {
        if let Err(e) = parent.remove_dir_all(leftover)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(
                "cannot remove the replaced data {}: {e}",
                parent_path.join(leftover).display()
            );
        }
    }
    Ok(kept)
}

/// Puts `incoming` in place of `base` in one step (`RENAME_EXCHANGE`); where the filesystem
/// cannot exchange, two renames, the old folder first out of the way as `outgoing` ([`recover`]
/// puts it back if the process dies in between), and back again if the second fails.
fn exchange(parent: &Dir, incoming: &str, base: &str, outgoing: &str) -> Result<(), BackupError> {
    let forced = std::env::var_os(NO_EXCHANGE_HOOK_ENV).is_some();
    let exchanged = if forced {
        Err(io::Error::from_raw_os_error(nix::libc::EINVAL))
    } else {
        rename_exchange(parent, incoming, base)
    };
    match exchanged {
        // The old data is now `incoming`: removed with the leftovers.
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(nix::libc::EINVAL | nix::libc::ENOSYS)
            ) =>
        {
            parent
                .rename(base, parent, outgoing)
                .map_err(|e| failed("moving the old data aside", e))?;
            kill_hook("restore:aside");
            parent.rename(incoming, parent, base).map_err(|e| {
                let _ = parent.rename(outgoing, parent, base);
                failed("putting the restored data in place", e)
            })
        }
        Err(e) => Err(failed("putting the restored data in place", e)),
    }
}

/// `renameat2(RENAME_EXCHANGE)`, by its system call: musl's libc, which the static builds use,
/// has no wrapper older than 1.2.5.
fn rename_exchange(dir: &Dir, a: &str, b: &str) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    const RENAME_EXCHANGE: nix::libc::c_uint = 2;
    let a = CString::new(a).map_err(io::Error::other)?;
    let b = CString::new(b).map_err(io::Error::other)?;
    let fd = dir.as_raw_fd();
    // SAFETY: both paths are NUL-terminated and live across the call; the descriptor is open.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_renameat2,
            fd,
            a.as_ptr(),
            fd,
            b.as_ptr(),
            RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The restore inside a data folder that is a mount point.
fn in_place_restore(
    from: &Dir,
    real: &Path,
    capture: &mut capture::Capture,
) -> Result<bool, BackupError> {
    let data = Dir::open_ambient_dir(real, ambient_authority())
        .map_err(|e| failed(&real.display().to_string(), e))?;
    clear(&data, RESTORING)?;
    let into = fs::own_dir(&data, RESTORING).map_err(|e| failed(RESTORING, e))?;
    let replaced = fs::own_dir(&data, REPLACED).map_err(|e| failed(REPLACED, e))?;
    let (into_path, replaced_path) = (real.join(RESTORING), real.join(REPLACED));
    let captured = capture
        .tree(from, &into, Path::new(""), Some(MANIFEST_FILE))
        .map_err(|e| failed("capturing the backup", e))
        .and_then(|()| {
            // The newest signing state is among the moved-aside entries of an interrupted
            // restore, or still at the top.
            signing::keep_newest(
                &[
                    Candidate {
                        dir: &data,
                        path: real,
                    },
                    Candidate {
                        dir: &replaced,
                        path: &replaced_path,
                    },
                ],
                &Candidate {
                    dir: &into,
                    path: &into_path,
                },
                real,
            )
            .map_err(BackupError::from)
        })
        .and_then(|kept| {
            fs::sync_dir(&into)
                .map(|()| kept)
                .map_err(|e| failed(RESTORING, e))
        });
    let kept = match captured {
        Ok(kept) => kept,
        Err(e) => {
            let _ = data.remove_dir_all(RESTORING);
            return Err(e);
        }
    };
    let step = |what: &str, e: io::Error| failed(what, e);
    for name in entries(&data).map_err(|e| step("listing data/", e))? {
        if name == RESTORING || name == REPLACED {
            continue;
        }
        if replaced.symlink_metadata(&name).is_ok() {
            // Restored by the interrupted attempt: the original is already aside.
            remove_any(&data, &name).map_err(|e| step(&name, e))?;
        } else {
            data.rename(&name, &replaced, &name)
                .map_err(|e| step(&format!("moving {name} aside"), e))?;
        }
    }
    kill_hook("restore:aside");
    for name in entries(&into).map_err(|e| step(RESTORING, e))? {
        into.rename(&name, &data, &name)
            .map_err(|e| step(&format!("putting {name} in place"), e))?;
    }
    fs::sync_dir(&data).map_err(|e| step("data/", e))?;
    kill_hook("restore:swapped");
    for leftover in [RESTORING, REPLACED] {
        if let Err(e) = data.remove_dir_all(leftover) {
            tracing::warn!("cannot remove {}: {e}", real.join(leftover).display());
        }
    }
    Ok(kept)
}

fn entries(dir: &Dir) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in dir.entries()? {
        out.push(e?.file_name().to_string_lossy().into_owned());
    }
    Ok(out)
}

fn remove_any(dir: &Dir, name: &str) -> io::Result<()> {
    match dir.symlink_metadata(name)? {
        m if m.is_dir() => dir.remove_dir_all(name),
        _ => dir.remove_file(name),
    }
}
