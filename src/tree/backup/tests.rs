//! Snapshots on real folders: what is linked and what copied, pruning in a shared folder.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

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
        Err(BackupError::Unusable(why)) => assert!(why.contains("modified after"), "{why}"),
        other => panic!("{other:?}"),
    }
}
