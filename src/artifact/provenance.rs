//! Which plan a binary wasmvisor staged was staged for. Staging ahead of the halt (a proposal's
//! binary under `WASMVISOR_PREPARE_PROPOSED`, the chain's plan days before its height) is done
//! from the plan's info as it was then; a plan can be proposed or passed again under the same
//! name with other binaries (a patched release). Each binary wasmvisor installs is recorded in
//! `upgrades/<dir>/wasmvisor-staged.json` with the info it came from and the file's identity;
//! before the resolvers are asked about a plan, a binary of wasmvisor's whose plan info has
//! changed since is moved aside to `upgrades/<dir>/.wasmvisor-replaced/`, so the plan's own
//! binaries are fetched instead of the old one being taken as staged.
//!
//! A binary without the record, or whose file is not the one recorded (replaced by hand), was
//! staged by the operator: it is never touched, as Cosmovisor never touches one. Nor is the
//! folder `current` points at (the running binary), nor anything while downloads are off
//! (nothing could be fetched in its place). Info that names the same download for this
//! machine (reformatted JSON, another platform's build added) is the same info.

use std::io;
use std::path::Path;

use cap_std::fs::{Dir, MetadataExt};
use serde::{Deserialize, Serialize};

use crate::tree::{Current, Layout, Plan};

/// The record's name in the upgrade's folder.
pub const RECORD: &str = "wasmvisor-staged.json";
/// Where a binary staged for older plan info is kept (one, the last).
pub const REPLACED: &str = ".wasmvisor-replaced";

/// What is recorded of a staged binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// The plan it was staged for.
    plan: String,
    height: u64,
    /// The plan's info, verbatim.
    info: String,
    /// The installed file's identity: a file put there since is not this one.
    ino: u64,
    size: u64,
    mtime_ns: i64,
    /// What was installed beside the binary (its `lib/`, say), relative to the folder: moved
    /// aside with it. What the operator put there is not listed, and stays.
    #[serde(default)]
    beside: Vec<String>,
}

/// What [`set_aside_if_stale`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Looked {
    /// No record, or the binary was staged for this plan's info: nothing to do.
    Unchanged,
    /// The binary was staged for other info and moved aside (to this path, relative to the
    /// cosmovisor folder).
    SetAside(String),
    /// The recorded binary was replaced by another file: the operator's, left alone (the record
    /// is removed).
    HandStaged,
    /// Staged for other info, but kept: downloads are off, or it is the running binary's folder.
    Kept(&'static str),
}

/// Whether two plan infos name the same download for this machine: the same text; the same
/// JSON (keys reordered, spaces); or binaries maps whose entry for this platform (else `any`)
/// is the same URL.
fn same_download(old: &str, new: &str) -> bool {
    if old.trim() == new.trim() {
        return true;
    }
    let (Ok(old), Ok(new)) = (
        serde_json::from_str::<serde_json::Value>(old),
        serde_json::from_str::<serde_json::Value>(new),
    ) else {
        return false;
    };
    if old == new {
        return true;
    }
    let platform = crate::plugin::platform();
    let key = format!("{}/{}", platform.os, platform.arch);
    let url = |info: &serde_json::Value| {
        let binaries = info.get("binaries")?.as_object()?;
        binaries
            .get(&key)
            .or_else(|| binaries.get("any"))?
            .as_str()
            .map(str::to_string)
    };
    url(&old).is_some_and(|u| Some(u) == url(&new))
}

/// Whether `dir` is the folder `current` points at (compared as files: the link may be
/// relative, as wasmvisor writes it, or absolute, as Cosmovisor does).
fn is_current(layout: &Layout, dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let current = id(&layout.root_path.join(crate::tree::swap::CURRENT_LINK));
    current.is_some() && current == id(&layout.root_path.join(dir))
}

fn identity(dir: &Dir, rel: &Path) -> io::Result<(u64, u64, i64)> {
    let m = dir.symlink_metadata(rel)?;
    let mtime_ns = m
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec());
    Ok((m.ino(), m.size(), mtime_ns))
}

/// Records that the binary now in `upgrades/<dir>/bin/` was staged by wasmvisor for `plan`.
/// Written without waiting for the disk: a lost record makes the binary the operator's, which
/// is what it would be without this record at all.
pub fn record(layout: &Layout, (dir, plan): (&str, &Plan), beside: Vec<String>) -> io::Result<()> {
    let target = Current::Upgrade(dir.to_string());
    let (ino, size, mtime_ns) = identity(&layout.root, &layout.binary_rel(&target))?;
    let record = Record {
        plan: plan.name.clone(),
        height: plan.height,
        info: plan.info.clone(),
        ino,
        size,
        mtime_ns,
        beside,
    };
    let bytes = serde_json::to_vec_pretty(&record).map_err(io::Error::other)?;
    let folder = layout.root.open_dir(target.rel_dir())?;
    crate::fs::replace(&folder, RECORD, &bytes)
}

/// Before the resolvers look at `plan`'s folder to stage it: a binary wasmvisor staged for
/// other plan info is moved aside (with `downloads` on: its replacement can be fetched); the
/// operator's binaries are left as they are.
pub fn set_aside_if_stale(
    layout: &Layout,
    (dir, plan): (&str, &Plan),
    downloads: bool,
) -> io::Result<Looked> {
    let target = Current::Upgrade(dir.to_string());
    let folder = match layout.root.open_dir(target.rel_dir()) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Looked::Unchanged),
        Err(e) => return Err(e),
    };
    let read = crate::fs::read_regular(&folder, RECORD, 64 * 1024, crate::fs::Follow::No);
    let record: Record = match read {
        Ok(None) => return Ok(Looked::Unchanged),
        Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            // Not ours to judge by: the binary is treated as the operator's.
            Err(_) => {
                crate::fs::remove_if_present(&folder, RECORD)?;
                return Ok(Looked::HandStaged);
            }
        },
        Err(e) => return Err(io::Error::other(format!("{RECORD}: {e}"))),
    };
    if same_download(&record.info, &plan.info) {
        return Ok(Looked::Unchanged);
    }
    if !downloads {
        return Ok(Looked::Kept(
            "downloads are off (DAEMON_ALLOW_DOWNLOAD_BINARIES)",
        ));
    }
    if is_current(layout, &target.rel_dir()) {
        return Ok(Looked::Kept("it is the folder `current` points at"));
    }
    let bin = Path::new("bin").join(&layout.daemon_name);
    match identity(&folder, &bin) {
        Ok(id) if id == (record.ino, record.size, record.mtime_ns) => {}
        Ok(_) => {
            crate::fs::remove_if_present(&folder, RECORD)?;
            return Ok(Looked::HandStaged);
        }
        // The binary is gone already (set aside before a crash): only the record is left.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            crate::fs::remove_if_present(&folder, RECORD)?;
            return Ok(Looked::Unchanged);
        }
        Err(e) => return Err(e),
    }
    // Only the last set aside is kept.
    match folder.remove_dir_all(REPLACED) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let aside = crate::fs::own_dir(&folder, REPLACED)?;
    for entry in &record.beside {
        move_aside(&folder, &aside, Path::new(entry))?;
    }
    // The binary last, then the record: a crash before leaves the record and the binary (all
    // done again); between, a record without its binary, which the next look removes.
    folder.rename(&bin, &aside, &layout.daemon_name)?;
    crate::fs::remove_if_present(&folder, RECORD)?;
    Ok(Looked::SetAside(format!(
        "{}/{REPLACED}/{}",
        target.rel_dir().display(),
        layout.daemon_name
    )))
}

/// Moves `rel` (a file or folder installed beside the binary) to the same place under `aside`.
/// One already gone (removed by the operator) is fine; a path that would leave the folder is
/// never followed (the record is wasmvisor's own, but is read from disk).
fn move_aside(folder: &Dir, aside: &Dir, rel: &Path) -> io::Result<()> {
    use std::path::Component;
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Ok(());
    }
    match folder.symlink_metadata(rel) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        aside.create_dir_all(parent)?;
    }
    folder.rename(rel, aside, rel)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A tree with `upgrades/v2/bin/simd` staged by wasmvisor for `info`.
    fn staged(info: &str) -> (tempfile::TempDir, Layout, Plan) {
        let home = tempfile::tempdir().unwrap();
        let bin = home.path().join("cosmovisor/upgrades/v2/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(home.path().join("cosmovisor/genesis/bin")).unwrap();
        std::fs::write(bin.join("simd"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(bin.join("simd"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let vars = [
            ("DAEMON_HOME", home.path().to_str().unwrap().to_string()),
            ("DAEMON_NAME", "simd".into()),
            ("UNSAFE_SKIP_BACKUP", "true".into()),
        ];
        let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        let (cfg, _) = crate::config::Config::load(None, &lookup).unwrap();
        let layout = Layout::open(&cfg).unwrap();
        let plan = Plan {
            name: "v2".into(),
            height: 100,
            info: info.into(),
        };
        std::fs::create_dir_all(home.path().join("cosmovisor/upgrades/v2/lib")).unwrap();
        std::fs::write(
            home.path().join("cosmovisor/upgrades/v2/lib/libours.so"),
            b"ours",
        )
        .unwrap();
        std::fs::write(
            home.path().join("cosmovisor/upgrades/v2/lib/libtheirs.so"),
            b"",
        )
        .unwrap();
        let beside = vec!["lib/libours.so".into(), "../../escape".into()];
        record(&layout, ("v2", &plan), beside).unwrap();
        (home, layout, plan)
    }

    fn look(layout: &Layout, dir: &str, plan: &Plan) -> Looked {
        set_aside_if_stale(layout, (dir, plan), true).unwrap()
    }

    fn with_info(plan: &Plan, info: &str) -> Plan {
        Plan {
            info: info.into(),
            ..plan.clone()
        }
    }

    #[test]
    fn a_binary_staged_for_the_same_info_stays() {
        let (home, layout, plan) = staged(r#"{"binaries":{"linux/amd64":"https://a/v2.0.0"}}"#);
        // Another height, same info: the same binary.
        let moved = Plan {
            height: 120,
            ..plan.clone()
        };
        assert_eq!(look(&layout, "v2", &moved), Looked::Unchanged);
        assert!(home.path().join("cosmovisor/upgrades/v2/bin/simd").exists());
        assert!(
            home.path()
                .join("cosmovisor/upgrades/v2")
                .join(RECORD)
                .exists()
        );
    }

    #[test]
    fn a_binary_staged_for_older_info_is_moved_aside_and_its_record_dropped() {
        let (home, layout, plan) = staged(r#"{"binaries":{"linux/amd64":"https://a/v2.0.0"}}"#);
        let patched = with_info(&plan, r#"{"binaries":{"linux/amd64":"https://a/v2.0.1"}}"#);
        let looked = look(&layout, "v2", &patched);
        assert_eq!(
            looked,
            Looked::SetAside("upgrades/v2/.wasmvisor-replaced/simd".into())
        );
        let dir = home.path().join("cosmovisor/upgrades/v2");
        assert!(!dir.join("bin/simd").exists());
        assert_eq!(
            std::fs::read(dir.join(".wasmvisor-replaced/simd")).unwrap(),
            b"#!/bin/sh\n"
        );
        // What came with it goes with it; what the operator added stays.
        assert_eq!(
            std::fs::read(dir.join(".wasmvisor-replaced/lib/libours.so")).unwrap(),
            b"ours"
        );
        assert!(!dir.join("lib/libours.so").exists());
        assert!(dir.join("lib/libtheirs.so").exists());
        assert!(!dir.join(RECORD).exists());
        // Nothing left to judge: a second look changes nothing.
        assert_eq!(look(&layout, "v2", &patched), Looked::Unchanged);
    }

    #[test]
    fn a_binary_replaced_by_hand_is_the_operators_and_never_moved() {
        let (home, layout, plan) = staged("v2.0.0");
        let bin = home.path().join("cosmovisor/upgrades/v2/bin/simd");
        // The operator copies their own build over it (a new file: another inode).
        std::fs::remove_file(&bin).unwrap();
        std::fs::write(&bin, b"#!/bin/sh\n# mine\n").unwrap();
        let looked = look(&layout, "v2", &with_info(&plan, "v2.0.1"));
        assert_eq!(looked, Looked::HandStaged);
        assert_eq!(std::fs::read(&bin).unwrap(), b"#!/bin/sh\n# mine\n");
        assert!(
            !bin.parent()
                .unwrap()
                .parent()
                .unwrap()
                .join(RECORD)
                .exists()
        );
    }

    #[test]
    fn a_binary_without_a_record_or_with_a_garbled_one_is_never_moved() {
        let (home, layout, plan) = staged("v2.0.0");
        let dir = home.path().join("cosmovisor/upgrades/v2");
        std::fs::write(dir.join(RECORD), b"{not json").unwrap();
        let other = with_info(&plan, "v2.0.1");
        assert_eq!(look(&layout, "v2", &other), Looked::HandStaged);
        assert_eq!(look(&layout, "v2", &other), Looked::Unchanged);
        assert!(dir.join("bin/simd").exists());
        // A plan with no folder at all.
        let absent = Plan {
            name: "v3".into(),
            ..other
        };
        assert_eq!(look(&layout, "v3", &absent), Looked::Unchanged);
    }

    #[test]
    fn a_record_left_by_a_crash_after_the_binary_was_moved_is_cleared() {
        let (home, layout, plan) = staged("v2.0.0");
        let dir = home.path().join("cosmovisor/upgrades/v2");
        std::fs::remove_file(dir.join("bin/simd")).unwrap();
        let other = with_info(&plan, "v2.0.1");
        assert_eq!(look(&layout, "v2", &other), Looked::Unchanged);
        assert!(!dir.join(RECORD).exists());
    }

    #[test]
    fn info_naming_the_same_download_for_this_machine_is_the_same() {
        let key = {
            let p = crate::plugin::platform();
            format!("{}/{}", p.os, p.arch)
        };
        let info = format!(r#"{{"binaries":{{"{key}":"https://a/v2.0.0"}}}}"#);
        let (home, layout, plan) = staged(&info);
        for same in [
            format!(" {info}\n"),
            format!(r#"{{ "binaries": {{ "{key}": "https://a/v2.0.0" }} }}"#),
            format!(
                r#"{{"binaries":{{"darwin/arm64":"https://a/mac","{key}":"https://a/v2.0.0"}}}}"#
            ),
        ] {
            assert_eq!(
                look(&layout, "v2", &with_info(&plan, &same)),
                Looked::Unchanged,
                "{same}"
            );
        }
        assert!(home.path().join("cosmovisor/upgrades/v2/bin/simd").exists());
    }

    #[test]
    fn with_downloads_off_or_in_currents_folder_a_stale_binary_is_kept() {
        let (home, layout, plan) = staged("v2.0.0");
        let other = with_info(&plan, "v2.0.1");
        let kept = set_aside_if_stale(&layout, ("v2", &other), false).unwrap();
        assert!(
            matches!(kept, Looked::Kept(why) if why.contains("DAEMON_ALLOW_DOWNLOAD_BINARIES"))
        );
        // `current` points at the folder (absolutely, as Cosmovisor writes it): the running
        // binary is never moved.
        let root = home.path().join("cosmovisor");
        std::os::unix::fs::symlink(root.join("upgrades/v2"), root.join("current")).unwrap();
        let kept = look(&layout, "v2", &other);
        assert!(
            matches!(kept, Looked::Kept(why) if why.contains("current")),
            "{kept:?}"
        );
        assert!(root.join("upgrades/v2/bin/simd").exists());
    }
}
