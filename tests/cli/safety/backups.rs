//! Backups and `backup restore`: a full disk or no free inodes, snapshots that link the table
//! files, restores refused beside a supervisor or an open store and otherwise atomic, and data
//! folders on disks of their own or recreated by an init script.

use std::os::unix::fs::MetadataExt;

use serde_json::{Value, json};

use crate::harness::*;

use super::{
    MANIFEST, SIGNING_STATE, T, assert_rolled_back, backups, killed_between_the_restores_renames,
    rolling_home, signed_height,
};

#[test]
fn a_disk_full_during_the_backup_aborts_cleanly_and_a_retry_succeeds() {
    let mut home = Home::new();
    home.set("UNSAFE_SKIP_BACKUP", "false")
        .set("WASMVISOR_TEST_DISK_FULL_AFTER", "100000");
    plant_databases(&home);
    // The hook fails the capture once 100 kB were written (the mutable files hold about
    // 170 kB), as a full disk would.
    let before = tree(&home.data(), &[]);
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("backup failed") && done.stderr.contains("No space left"),
        "{}",
        done.stderr
    );
    assert!(
        backups(&home).is_empty(),
        "nothing that looks like a backup"
    );
    assert_eq!(home.current(), "genesis");
    // The databases are untouched; the node only added its own records.
    let after = tree(&home.data(), &[]);
    for (path, sum) in &before {
        assert_eq!(after.get(path), Some(sum), "{path}");
    }
    assert_eq!(home.history(), [("genesis".into(), 1, 2)]);

    home.unset("WASMVISOR_TEST_DISK_FULL_AFTER");
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();
    assert_eq!(backups(&home).len(), 1);
}

#[test]
fn a_backup_disk_without_free_inodes_is_refused_before_anything_is_written() {
    let mut home = Home::new();
    let disk = home.path.join("disk");
    let Some(_disk) = Tmpfs::mount(&disk, "size=64m,nr_inodes=16") else {
        return;
    };
    home.set("UNSAFE_SKIP_BACKUP", "false")
        .set("DAEMON_DATA_BACKUP_DIR", disk.to_str().unwrap());
    plant_databases(&home);
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("free inodes"), "{}", done.stderr);
    assert_eq!(std::fs::read_dir(&disk).unwrap().count(), 0);
    assert_eq!(home.current(), "genesis");
}

#[test]
fn snapshots_link_the_table_files_copy_the_rest_and_keep_the_newest() {
    let mut home = Home::new();
    home.set("UNSAFE_SKIP_BACKUP", "false")
        .set("WASMVISOR_BACKUP_KEEP", "1");
    plant_databases(&home);
    home.upgrade("v2", 2, json!({}));
    home.upgrade("v3", 3, json!({}));
    home.chain(&[("v2", 3), ("v3", 6)]);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    // The first backup: table files share the data's inodes, everything else is a copy.
    let first = backups(&home);
    assert_eq!(first.len(), 1);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(first[0].join(MANIFEST)).unwrap()).unwrap();
    for entry in manifest["entries"].as_array().unwrap() {
        let path = entry["path"].as_str().unwrap();
        let captured = entry["captured"].as_str().unwrap();
        let in_data = std::fs::symlink_metadata(home.data().join(path)).unwrap();
        let in_backup = std::fs::symlink_metadata(first[0].join(path)).unwrap();
        if path.ends_with(".ldb") || path.ends_with(".sst") {
            // A reflink where the filesystem shares blocks, a hard link otherwise.
            assert!(matches!(captured, "link" | "reflink"), "{path}: {captured}");
            if captured == "link" {
                assert_eq!(in_data.ino(), in_backup.ino(), "{path}");
            }
        } else if entry["kind"] == "file" {
            assert!(matches!(captured, "copy" | "reflink"), "{path}: {captured}");
            assert_ne!(in_data.ino(), in_backup.ino(), "{path}");
        }
    }
    assert_eq!(manifest["upgrade"], "v2");
    assert_eq!(manifest["height"], 3);
    home.wait_height("v3", 7);
    run.stop();
    // WASMVISOR_BACKUP_KEEP=1: only v3's backup is left.
    let kept = backups(&home);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].to_string_lossy().ends_with("-v3-h6"), "{kept:?}");

    let listed: Value =
        serde_json::from_slice(&home.output(&["backup", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed["backups"][0]["upgrade"], "v3", "{listed}");
    assert_eq!(listed["backups"][0]["height"], 6, "{listed}");
    assert!(
        listed["backups"][0]["totals"]["linked"].as_u64().unwrap() > 0
            || listed["backups"][0]["totals"]["reflinked"]
                .as_u64()
                .unwrap()
                > 0,
        "{listed}"
    );
}

#[test]
fn backup_restore_refuses_beside_a_supervisor_and_otherwise_restores_atomically() {
    let mut home = Home::new();
    home.set("UNSAFE_SKIP_BACKUP", "false");
    plant_databases(&home);
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 5);
    let name = backups(&home)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let refused = home.output(&["backup", "restore", &name]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("no supervisor runs"), "{err}");
    run.stop();

    // A folder without a manifest (a Cosmovisor backup, an unfinished one) is listed as such
    // and cannot be restored.
    std::fs::create_dir_all(home.path.join("data-backup-2024-01-01")).unwrap();
    let text = String::from_utf8(home.output(&["backup", "list"]).stdout).unwrap();
    assert!(
        text.contains(&name)
            && text.contains("not backups (no complete manifest): data-backup-2024-01-01"),
        "{text}"
    );
    let bad = home.output(&["backup", "restore", "data-backup-2024-01-01"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a complete backup"));

    // A node height journaled for a pending manual upgrade belongs to the data being replaced:
    // believed over the restored (older) data, it would upgrade a node with blocks to execute.
    let journal_file = home.root().join("wasmvisor-journal.json");
    let mut journal = home.journal();
    journal["seen"] = json!({"upgrade": "v9", "upgrade_height": 60, "app_height": 59});
    std::fs::write(&journal_file, journal.to_string()).unwrap();
    let signed = signed_height(&home.data());
    let out = home.output(&["backup", "restore", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("kept the newer priv_validator_state.json")
    );
    assert!(home.journal()["seen"].is_null(), "{}", home.journal());
    let backup = home.path.join(&name);
    assert_eq!(
        tree(&home.data(), &[SIGNING_STATE]),
        tree(&backup, &[MANIFEST, SIGNING_STATE])
    );
    assert_eq!(signed_height(&home.data()), signed);
    assert_eq!(home.history(), [("genesis".into(), 1, 2)]);

    // A backup whose files no longer match its manifest is not restored.
    std::fs::write(backup.join("application.db/MANIFEST-000004"), "truncated").unwrap();
    let refused = home.output(&["backup", "restore", &name]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("does not match its manifest"), "{err}");
}

#[test]
fn a_restore_killed_between_its_two_renames_is_put_right_by_the_next_start() {
    // A filesystem without RENAME_EXCHANGE: the old data goes aside before the restored data
    // takes its place. Killed in between, data/ is missing; the next start puts it back, then
    // restores again, keeping the newest signing state.
    let home = killed_between_the_restores_renames();
    assert!(!home.data().exists(), "the kill came between the renames");
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "{}", done.stderr);
    assert!(
        done.stderr.contains("put back the data folder"),
        "{}",
        done.stderr
    );
    assert_rolled_back(&home, "two renames");
    assert_eq!(signed_height(&home.data()), 4);
}

#[test]
fn a_data_folder_on_a_disk_of_its_own_is_restored_inside_it() {
    let home = rolling_home(json!({"exit_after_height": 4, "exit_code": 2}));
    // data/ becomes a mount point holding what it held.
    let staged = home.path.join("data-before");
    std::fs::rename(home.data(), &staged).unwrap();
    let Some(_disk) = Tmpfs::mount(&home.data(), "size=64m") else {
        return;
    };
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", staged.display()))
        .arg(home.data())
        .status()
        .unwrap();
    assert!(copied.success());
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "{}", done.stderr);
    assert!(done.stderr.contains("in_place=true"), "{}", done.stderr);
    assert_rolled_back(&home, "in place");
    assert_ne!(
        std::fs::metadata(home.data()).unwrap().dev(),
        std::fs::metadata(&home.path).unwrap().dev(),
        "data/ is still its own disk"
    );
    assert_eq!(signed_height(&home.data()), 4);
}

#[test]
fn data_left_aside_beside_a_data_folder_an_init_script_recreated_is_never_deleted() {
    // A filesystem without RENAME_EXCHANGE, a restore killed between its renames, then an init
    // script that creates a fresh data/ (and signing state) when it finds none.
    let home = killed_between_the_restores_renames();
    let aside = home.path.join(".data.replaced");
    assert_eq!(signed_height(&aside), 4, "the only copy of the live data");
    std::fs::create_dir(home.data()).unwrap();
    std::fs::write(
        home.data().join(SIGNING_STATE),
        r#"{"height":"0","round":0,"step":0}"#,
    )
    .unwrap();

    let listed = home.output(&["backup", "list"]);
    let err = String::from_utf8_lossy(&listed.stderr);
    assert!(
        err.contains(".data.replaced") && err.contains("only copy"),
        "{err}"
    );
    // The start says so, and starts no node on the re-created data/ (it would sign from the
    // older state), nor restores over it.
    let starts = home.events_of("start").len();
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert_eq!(
        home.events_of("start").len(),
        starts,
        "a node was started: {}",
        done.stderr
    );
    assert!(
        done.stderr.contains("only copy") && done.stderr.contains("signed up to height 4"),
        "{}",
        done.stderr
    );
    assert_eq!(signed_height(&aside), 4);
    let name = backups(&home)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let refused = home.output(&["backup", "restore", &name]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains(".data.replaced"), "{err}");
    assert_eq!(signed_height(&aside), 4);
    assert_eq!(signed_height(&home.data()), 0);

    // The operator keeps the aside folder: the next start puts it back and finishes the
    // rollback with the newest signing state, leaving nothing aside.
    std::fs::remove_dir_all(home.data()).unwrap();
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "{}", done.stderr);
    assert_rolled_back(&home, "two renames, data/ recreated");
    assert_eq!(signed_height(&home.data()), 4);
    assert!(!aside.exists());
    assert!(!home.path.join(".data.removing").exists());
}

#[test]
fn backup_restore_refuses_while_a_store_is_locked_or_a_file_under_data_is_open() {
    let mut home = Home::new();
    home.set("UNSAFE_SKIP_BACKUP", "false");
    plant_databases(&home);
    std::fs::write(home.data().join("application.db/LOCK"), "").unwrap();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 5);
    run.stop();
    let name = backups(&home)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let before = tree(&home.data(), &[]);

    // A node started by hand holds its store open: goleveldb's flock on LOCK.
    let lock = std::fs::File::open(home.data().join("application.db/LOCK")).unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    let refused = home.output(&["backup", "restore", &name]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("application.db/LOCK is locked") && err.contains("stop that node"),
        "{err}"
    );
    drop(held);
    assert_eq!(tree(&home.data(), &[]), before, "data/ untouched");

    // Any other process with a file open under data/.
    let mut reader = std::process::Command::new("sleep")
        .arg("30")
        .stdin(std::fs::File::open(home.data().join("cs.wal/wal")).unwrap())
        .spawn()
        .unwrap();
    let refused = home.output(&["backup", "restore", &name]);
    let _ = reader.kill();
    let _ = reader.wait();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&format!("process {}", reader.id())) && err.contains("cs.wal/wal"),
        "{err}"
    );
    assert_eq!(tree(&home.data(), &[]), before, "data/ untouched");

    let out = home.output(&["backup", "restore", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
