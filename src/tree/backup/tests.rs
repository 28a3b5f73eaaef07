//! Snapshots on real folders: what is linked and what copied, pruning in a shared folder.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::restore::{left_aside, recover};
use super::*;

fn write(path: &Path, bytes: &[u8], age: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn tables_written_after_their_manifest_are_copied_not_linked() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let hour = Duration::from_secs(3600);
    write(&data.join("app.db/000005.ldb"), b"referenced", hour * 2);
    write(&data.join("app.db/MANIFEST-000004"), b"m", hour);
    // Left by a compaction the halt interrupted: not in the MANIFEST, its number reusable.
    write(&data.join("app.db/000009.ldb"), b"orphan", Duration::ZERO);
    write(
        &data.join("plain.db/000001.sst"),
        b"no manifest here",
        Duration::ZERO,
    );
    let target = t.path().join("data-backup-x");
    create(&data, &target, "v2", 3, &Cancel::new()).unwrap();
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let same = |rel: &str| ino(&data.join(rel)) == ino(&target.join(rel));
    assert!(same("app.db/000005.ldb"));
    assert!(!same("app.db/000009.ldb"));
    assert!(!same("app.db/MANIFEST-000004"));
    assert!(same("plain.db/000001.sst"));
    assert!(is_complete(&target));
}

#[test]
fn pruning_keeps_other_homes_backups_and_the_protected_one() {
    let t = tempfile::tempdir().unwrap();
    let shared = t.path().join("backups");
    std::fs::create_dir(&shared).unwrap();
    let (a, b) = (t.path().join("a/data"), t.path().join("b/data"));
    write(&a.join("x"), b"a", Duration::ZERO);
    write(&b.join("x"), b"b", Duration::ZERO);
    let mut names = Vec::new();
    for (i, data) in [&a, &a, &b, &a].into_iter().enumerate() {
        let target = shared.join(format!("{PREFIX}{i}"));
        create(data, &target, "v", i as u64 + 1, &Cancel::new()).unwrap();
        names.push(format!("{PREFIX}{i}"));
        std::thread::sleep(Duration::from_millis(5));
    }
    // Keep one of a's, protecting its oldest: the middle one goes, b's stays.
    let removed = prune(&shared, 1, &[names[0].as_str()], &a).unwrap();
    assert_eq!(removed, [names[1].clone()]);
    let (left, _) = list(&shared).unwrap();
    let left: Vec<&str> = left.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        left,
        [names[0].as_str(), names[2].as_str(), names[3].as_str()]
    );
}

#[test]
fn a_backup_whose_files_changed_since_is_refused_by_restore() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    write(
        &data.join("app.db/000005.ldb"),
        b"table",
        Duration::from_secs(60),
    );
    write(&data.join("app.db/MANIFEST-000001"), b"m", Duration::ZERO);
    let target = t.path().join("data-backup-x");
    create(&data, &target, "v2", 3, &Cancel::new()).unwrap();
    // The node rewrites the linked inode in place (same size): the backup no longer holds
    // what it recorded.
    write(&data.join("app.db/000005.ldb"), b"TABLE", Duration::ZERO);
    match restore(&target, &data, &Cancel::new()) {
        Err(BackupError::Unusable(why)) => assert_eq!(
            why.to_string(),
            format!(
                "{} does not match its manifest: app.db/000005.ldb was modified after the backup was taken; it cannot be restored",
                target.display()
            )
        ),
        other => panic!("{other:?}"),
    }
}

const STATE: &str = "priv_validator_state.json";

fn signing_state(height: u64) -> String {
    format!(r#"{{"height":"{height}","round":0,"step":3}}"#)
}

fn signed(path: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["height"].as_str().unwrap().parse().unwrap()
}

/// A data folder at `<t>/data` whose backup `<t>/data-backup-x` signed up to height 9.
fn backed_up_at_9() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let data = std::fs::canonicalize(t.path()).unwrap().join("data");
    write(&data.join("app.db/MANIFEST-000001"), b"m", Duration::ZERO);
    write(
        &data.join(STATE),
        signing_state(9).as_bytes(),
        Duration::ZERO,
    );
    let target = data.with_file_name("data-backup-x");
    create(&data, &target, "v2", 3, &Cancel::new()).unwrap();
    (t, data, target)
}

#[test]
fn a_live_signing_state_behind_a_symlink_is_never_lowered_by_a_restore() {
    let (t, data, backup) = backed_up_at_9();
    let volume = t.path().join("signer-volume/state.json");
    write(&volume, signing_state(25).as_bytes(), Duration::ZERO);
    std::fs::remove_file(data.join(STATE)).unwrap();
    std::os::unix::fs::symlink(&volume, data.join(STATE)).unwrap();
    let restored = restore(&backup, &data, &Cancel::new()).unwrap();
    assert!(restored.kept_signing_state);
    assert_eq!(signed(&data.join(STATE)), 25);
    assert_eq!(std::fs::read_link(data.join(STATE)).unwrap(), volume);
}

#[test]
fn a_padded_live_signing_state_is_never_lowered_by_a_restore() {
    let (_t, data, backup) = backed_up_at_9();
    let mut padded = signing_state(25).into_bytes();
    padded.resize(padded.len() + (2 << 20), b' ');
    std::fs::write(data.join(STATE), &padded).unwrap();
    let restored = restore(&backup, &data, &Cancel::new()).unwrap();
    assert!(restored.kept_signing_state);
    assert_eq!(signed(&data.join(STATE)), 25);
}

#[test]
fn a_live_signing_state_that_cannot_be_read_stops_the_restore() {
    let (_t, data, backup) = backed_up_at_9();
    std::fs::remove_file(data.join(STATE)).unwrap();
    std::os::unix::fs::symlink("/nonexistent/volume/state.json", data.join(STATE)).unwrap();
    match restore(&backup, &data, &Cancel::new()) {
        Err(BackupError::Signing(why)) => {
            assert!(why.to_string().contains("sign a height twice"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(data.join(STATE).is_symlink(), "data/ untouched");
    assert!(!data.with_file_name(".data.restoring").exists());
}

#[test]
fn what_a_manifest_does_not_list_is_refused_and_nothing_restored() {
    let fifo =
        |p: &Path| nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    type Add<'a> = &'a dyn Fn(&Path);
    let additions: [(&str, Add); 4] = [
        ("extra", &|p| std::fs::write(p, b"planted").unwrap()),
        ("app.db/fifo", &fifo),
        ("etc", &|p| std::os::unix::fs::symlink("/etc", p).unwrap()),
        ("app.db/sub", &|p| std::fs::create_dir(p).unwrap()),
    ];
    for (name, add) in additions {
        let (_t, data, backup) = backed_up_at_9();
        add(&backup.join(name));
        match restore(&backup, &data, &Cancel::new()) {
            Err(BackupError::Unusable(UnusableBackup::Mismatch {
                source: manifest::Mismatch::Unlisted { path, .. },
                ..
            })) => assert_eq!(path, Path::new(name)),
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            std::fs::symlink_metadata(data.join(name)).is_err(),
            "{name}"
        );
    }
}

#[test]
fn a_manifest_listing_nothing_is_refused() {
    let (_t, data, backup) = backed_up_at_9();
    let path = backup.join(manifest::MANIFEST_FILE);
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m["entries"] = serde_json::json!([]);
    std::fs::write(&path, m.to_string()).unwrap();
    match restore(&backup, &data, &Cancel::new()) {
        Err(BackupError::Unusable(why)) => assert_eq!(
            why.to_string(),
            format!(
                "{} does not match its manifest: its wasmvisor-backup.json lists no entries, which no backup of a node's data has; it cannot be restored",
                backup.display()
            )
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_store_locked_by_a_running_node_refuses_the_restore() {
    use nix::fcntl::{Flock, FlockArg};
    let (_t, data, backup) = backed_up_at_9();
    std::fs::write(data.join("app.db/LOCK"), b"").unwrap();
    std::fs::write(data.join(STATE), signing_state(25)).unwrap();
    // As goleveldb holds its store open.
    let file = std::fs::File::open(data.join("app.db/LOCK")).unwrap();
    let held = Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap();
    match restore(&backup, &data, &Cancel::new()) {
        Err(BackupError::Busy(why)) => {
            assert!(why.to_string().contains("app.db/LOCK is locked"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(signed(&data.join(STATE)), 25, "data/ untouched");
    drop(held);
    restore(&backup, &data, &Cancel::new()).unwrap();
}

#[test]
fn data_set_aside_beside_a_recreated_data_folder_is_never_removed() {
    // A two-rename restore was killed between its renames, then an init script created an empty
    // data/ with a fresh signing state.
    let (_t, data, backup) = backed_up_at_9();
    std::fs::write(data.join(STATE), signing_state(25)).unwrap();
    let aside = data.with_file_name(".data.replaced");
    std::fs::rename(&data, &aside).unwrap();
    write(
        &data.join(STATE),
        signing_state(0).as_bytes(),
        Duration::ZERO,
    );
    let why = left_aside(&data).expect("noticed");
    assert!(
        why.contains("signed up to height 25") && why.contains("signed up to height 0"),
        "{why}"
    );
    match restore(&backup, &data, &Cancel::new()) {
        Err(BackupError::Restore(why)) => assert!(why.contains(".data.replaced"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(signed(&aside.join(STATE)), 25, "the aside copy is kept");
    assert_eq!(signed(&data.join(STATE)), 0);
    // With data/ gone again, it is put back.
    std::fs::remove_dir_all(&data).unwrap();
    assert!(recover(&data).unwrap());
    assert_eq!(signed(&data.join(STATE)), 25);
    assert!(left_aside(&data).is_none());
}
