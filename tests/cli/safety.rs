//! The safety net: snapshot backups, the rollback of a failed upgrade (never retried with the
//! same binary), crash restarts, and faults during all of it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(60);
const MANIFEST: &str = "wasmvisor-backup.json";
const SIGNING_STATE: &str = "priv_validator_state.json";

/// The complete backups in the home (those with a manifest), oldest first by name.
fn backups(home: &Home) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(&home.path)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("data-backup-")
        })
        .collect();
    found.sort();
    found
}

fn signed_height(dir: &Path) -> u64 {
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join(SIGNING_STATE)).unwrap()).unwrap();
    state["height"].as_str().unwrap().parse().unwrap()
}

/// A home upgrading genesis → v2 at height 3 with backups on and failures rolled back; v2's
/// simulator gets `v2` as its extra configuration.
fn rolling_home(v2: Value) -> Home {
    let mut home = Home::new();
    home.set("UNSAFE_SKIP_BACKUP", "false")
        .set("WASMVISOR_ON_FAILED_UPGRADE", "rollback");
    plant_databases(&home);
    home.upgrade("v2", 2, v2);
    home.chain(&[("v2", 3)]);
    home
}

/// A rollback home on a filesystem without RENAME_EXCHANGE whose restore was killed between its
/// two renames (the old data aside, the restored data not yet in place); the kill hook unset.
fn killed_between_the_restores_renames() -> Home {
    let mut home = rolling_home(json!({"exit_after_height": 4, "exit_code": 2}));
    home.set("WASMVISOR_TEST_NO_EXCHANGE", "1")
        .set("WASMVISOR_TEST_KILL_AT", "restore:aside");
    let killed = home.run(&[]).finish(T);
    assert_eq!(killed.status.code(), None, "{}", killed.stderr);
    home.unset("WASMVISOR_TEST_KILL_AT");
    home
}

/// Checks the state a rollback leaves: genesis in `current`, data/ equal to the one backup
/// (the signing state aside), the chain's upgrade-info.json in place, the failure journaled.
fn assert_rolled_back(home: &Home, what: &str) {
    assert_eq!(home.current(), "genesis", "{what}");
    let taken = backups(home);
    assert_eq!(taken.len(), 1, "{what}: {taken:?}");
    assert_eq!(
        tree(&home.data(), &[SIGNING_STATE]),
        tree(&taken[0], &[MANIFEST, SIGNING_STATE]),
        "{what}: data/ is the snapshot"
    );
    assert_eq!(home.history(), [("genesis".into(), 1, 2)], "{what}");
    let info: Value =
        serde_json::from_slice(&std::fs::read(home.data().join("upgrade-info.json")).unwrap())
            .unwrap();
    assert_eq!(
        (info["name"].as_str(), info["height"].as_u64()),
        (Some("v2"), Some(3))
    );
    let journal = home.journal();
    assert!(journal["rollback"].is_null(), "{what}: {journal}");
    let failed = &journal["failed"][0];
    assert_eq!(failed["plan"]["name"], "v2", "{what}: {journal}");
    assert_eq!(
        failed["sha256"].as_str().unwrap(),
        sha256(&std::fs::read(home.root().join("upgrades/v2/bin/simd")).unwrap()),
        "{what}"
    );
    assert_eq!(
        failed["restored"].as_str().map(PathBuf::from),
        Some(taken[0].clone()),
        "{what}"
    );
    assert!(
        std::fs::read_dir(&home.path)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(".data.")),
        "{what}: no restore leftovers"
    );
}

/// Stages a fixed v2: another binary (a different sha256), whose simulator does not fail.
fn stage_fixed_v2(home: &Home) {
    let pkg = home.path.join("fixed");
    std::fs::create_dir_all(&pkg).unwrap();
    let wrapper = std::fs::read_to_string(home.root().join("upgrades/v2/bin/simd")).unwrap();
    write_script(&pkg.join("simd"), &format!("{wrapper}# v2.0.1\n"));
    std::fs::write(
        home.root().join("upgrades/v2/bin/sim.json"),
        json!({"version": "v2", "ordinal": 2, "handles": "v2", "block_ms": 50}).to_string(),
    )
    .unwrap();
    let out = home.output(&[
        "add-upgrade",
        "v2",
        pkg.join("simd").to_str().unwrap(),
        "--force",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_new_binary_that_cannot_start_is_rolled_back_never_rerun_and_a_fixed_one_upgrades() {
    let home = rolling_home(json!({"fail_at_start": 1}));
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "{}", done.stderr);
    assert!(done.stderr.contains("ROLLED BACK"), "{}", done.stderr);
    assert!(
        done.stderr.contains("add-upgrade v2 <path> --force"),
        "the log says what to do: {}",
        done.stderr
    );
    assert_rolled_back(&home, "exit 1 at start");
    assert_eq!(home.events_of("failed").len(), 1);

    // status shows the failure, why, and the backup restored; the pending upgrade is blocked.
    let status: Value = serde_json::from_slice(&home.output(&["status", "--json"]).stdout).unwrap();
    let failed = &status["failed_upgrades"][0];
    assert!(
        failed["reason"].as_str().unwrap().contains("exit code 1"),
        "{status}"
    );
    assert_eq!(failed["restored"], json!(backups(&home)[0]));
    assert!(
        status["pending"]["blocked_by_failed_binary"].is_string(),
        "{status}"
    );
    assert_eq!(status["last_upgrade"]["rolled_back"], true, "{status}");
    let text = String::from_utf8(home.output(&["status"]).stdout).unwrap();
    assert!(
        text.contains("FAILED upgrade") && text.contains("BLOCKED"),
        "{text}"
    );

    // A restarted wasmvisor does not run that binary again: it waits for another one.
    let run = home.run(&[]);
    home.wait_for("the refusal to rerun it", T, |h| {
        h.last_log().contains("not upgrading: this binary failed")
    });
    assert_eq!(
        home.events_of("failed").len(),
        1,
        "the failed binary did not run"
    );
    assert_eq!(home.current(), "genesis");

    // Staging a fixed binary upgrades, without a restart.
    stage_fixed_v2(&home);
    home.wait_height("v2", 5);
    let out = run.stop();
    assert_eq!(home.current(), "upgrades/v2", "{}", out.stderr);
    let history = home.history();
    assert_eq!(history[0], ("genesis".into(), 1, 2), "{history:?}");
    assert_eq!(
        (history[1].0.as_str(), history[1].1),
        ("v2", 3),
        "{history:?}"
    );
    assert_eq!(home.journal()["last"]["rolled_back"], Value::Null);
}

#[test]
fn an_upgraded_node_that_dies_on_probation_is_rolled_back_and_its_signing_state_kept() {
    // v2 applies the upgrade, runs blocks 3 and 4, then panics.
    let home = rolling_home(json!({"exit_after_height": 4, "exit_code": 2}));
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "{}", done.stderr);
    assert!(
        done.stderr.contains("died (exit code 2)"),
        "{}",
        done.stderr
    );
    assert_rolled_back(&home, "death on probation");
    // The validator signed up to 4 with v2: restoring the snapshot's signing state (2) would
    // let it sign 3 and 4 again.
    assert_eq!(signed_height(&backups(&home)[0]), 2);
    assert_eq!(signed_height(&home.data()), 4);
    assert!(
        done.stderr.contains("never signs a height twice"),
        "{}",
        done.stderr
    );
}

#[test]
fn an_unhealthy_verdict_rolls_back_a_running_node() {
    // v2 runs, but its RPC never answers: the health check reaches its deadline.
    let home = rolling_home(json!({}));
    let port = free_port();
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[health]]\nname = \"cometbft\"\npath = \"{}\"\nconfig = {{ rpc = \"http://127.0.0.1:{port}\" }}\nallow-hosts = [\"127.0.0.1:{port}\"]\ninterval = \"100ms\"\ndeadline = \"2s\"\n",
            wasm("wasmvisor-plugin-cometbft").display()
        ),
    )
    .unwrap();
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "{}", done.stderr);
    assert!(
        done.stderr.contains("on-unhealthy = rollback"),
        "{}",
        done.stderr
    );
    assert!(
        home.events_of("shutdown")
            .iter()
            .any(|e| e["version"] == "v2"),
        "the unhealthy node was stopped gracefully"
    );
    assert_eq!(home.current(), "genesis");
    assert_eq!(home.history(), [("genesis".into(), 1, 2)]);
    let journal = home.journal();
    assert!(
        journal["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unhealthy"),
        "{journal}"
    );
}

#[test]
fn an_exit_told_to_a_health_check_contradicting_rollback_is_refused_before_anything_runs() {
    let home = rolling_home(json!({}));
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[health]]\nname = \"strict\"\npath = \"{}\"\non-unhealthy = \"exit\"\n",
            wasm("wasmvisor-plugin-cometbft").display()
        ),
    )
    .unwrap();
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("strict")
            && done.stderr.contains("WASMVISOR_ON_FAILED_UPGRADE=rollback"),
        "{}",
        done.stderr
    );
    assert!(home.events_of("start").is_empty());
}

#[test]
fn in_exit_mode_a_failed_upgrade_is_left_as_cosmovisor_leaves_it() {
    let mut home = rolling_home(json!({"fail_at_start": 1}));
    home.set("WASMVISOR_ON_FAILED_UPGRADE", "exit");
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 1, "the node's status: {}", done.stderr);
    assert_eq!(home.current(), "upgrades/v2", "{}", done.stderr);
    assert!(home.journal()["failed"].is_null());
}

/// `kill -9` at each step of a rollback (and at the launch of the binary that fails), then a
/// restart: the rollback is finished, once.
#[test]
fn killed_anywhere_in_a_rollback_a_restart_finishes_it() {
    for point in [
        "launch",
        "rollback",
        "restore:swapped",
        "rollback:restored",
        "rollback:end",
    ] {
        let mut home = rolling_home(json!({"exit_after_height": 4, "exit_code": 2}));
        home.set("WASMVISOR_TEST_KILL_AT", point);
        let killed = home.run(&[]).finish(T);
        assert_eq!(killed.status.code(), None, "{point}: {}", killed.stderr);
        assert!(
            matches!(home.current().as_str(), "genesis" | "upgrades/v2"),
            "{point}: `current` is a valid link"
        );
        home.unset("WASMVISOR_TEST_KILL_AT");
        let run = home.run(&[]);
        if point == "rollback:end" {
            // Nothing left to finish: the restart waits for a different binary.
            home.wait_for("the refusal to rerun it", T, |h| {
                h.last_log().contains("not upgrading: this binary failed")
            });
            run.stop();
        } else {
            let done = run.finish(T);
            assert_eq!(done.code(), 4, "{point}: {}", done.stderr);
        }
        assert_rolled_back(&home, point);
        assert_eq!(
            home.journal()["failed"].as_array().unwrap().len(),
            1,
            "{point}"
        );
    }
}

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
fn a_crashed_node_is_relaunched_after_a_backoff_and_a_crash_loop_ends_in_the_tally() {
    // Crashes once at height 2, then runs on.
    let mut home = Home::new();
    home.set("WASMVISOR_RESTART_ON_CRASH", "true");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "exit_after_height": 2, "exit_code": 2}),
    );
    let run = home.run(&[]);
    home.wait_height("genesis", 5);
    let out = run.stop();
    assert!(
        out.stderr.contains("relaunching it in 1s"),
        "{}",
        out.stderr
    );
    assert_eq!(home.history(), [("genesis".into(), 1, home.height())]);
    let starts = home.events_of("start");
    assert_eq!(starts.len(), 2);
    let gap = starts[1]["mono_ns"].as_u64().unwrap() - starts[0]["mono_ns"].as_u64().unwrap();
    assert!(gap >= 1_000_000_000, "relaunched after {gap} ns");

    // A node that cannot start at all: 1 s, 2 s, then the third death is one too many.
    let mut home = Home::new();
    home.set("WASMVISOR_RESTART_ON_CRASH", "true")
        .set("WASMVISOR_MAX_RESTARTS", "2");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "fail_at_start": 7}),
    );
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 7, "{}", done.stderr);
    assert!(
        done.stderr.contains("died 3 times within 10m0s"),
        "{}",
        done.stderr
    );
    let at: Vec<u64> = home
        .events_of("start")
        .iter()
        .map(|e| e["mono_ns"].as_u64().unwrap())
        .collect();
    assert_eq!(at.len(), 3);
    assert!(at[1] - at[0] >= 1_000_000_000, "{at:?}");
    assert!(at[2] - at[1] >= 2_000_000_000, "{at:?}");
}

#[test]
fn a_stop_request_during_the_restart_backoff_ends_it_at_once() {
    let mut home = Home::new();
    home.set("WASMVISOR_RESTART_ON_CRASH", "true")
        .set("WASMVISOR_MAX_RESTARTS", "10");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "fail_at_start": 1}),
    );
    let run = home.run(&[]);
    home.wait_for("the third backoff", T, |h| {
        h.last_log().contains("relaunching it in 4s")
    });
    let asked = Instant::now();
    run.signal(SIGTERM);
    let done = run.finish(T);
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "exited {:?} after SIGTERM",
        asked.elapsed()
    );
    assert_eq!(done.code(), 128 + SIGTERM, "{}", done.stderr);
    assert_eq!(
        home.events_of("start").len(),
        3,
        "no relaunch after the stop"
    );
}

#[test]
fn an_upgrade_folder_lib_is_on_the_library_path_of_its_binary_only() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    std::fs::create_dir_all(home.root().join("upgrades/v2/lib")).unwrap();
    std::fs::write(
        home.root().join("upgrades/v2/lib/libwasmvm.x86_64.so"),
        b"\x7fELF",
    )
    .unwrap();
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();
    let starts = home.events_of("start");
    assert_eq!(starts[0]["version"], "genesis");
    assert_eq!(starts[0]["ld_library_path"], Value::Null);
    let lib = home.root().join("upgrades/v2/lib").display().to_string();
    assert_eq!(starts[1]["ld_library_path"].as_str(), Some(lib.as_str()));
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
fn a_backup_that_cannot_be_restored_does_not_wedge_the_rollback() {
    let mut home = rolling_home(json!({"exit_after_height": 4, "exit_code": 2}));
    home.set("WASMVISOR_TEST_KILL_AT", "rollback");
    let killed = home.run(&[]).finish(T);
    assert_eq!(killed.status.code(), None, "{}", killed.stderr);
    // The backup is damaged before the restart finishes the rollback.
    let backup = backups(&home).remove(0);
    std::fs::write(backup.join("application.db/MANIFEST-000004"), "damaged").unwrap();
    home.unset("WASMVISOR_TEST_KILL_AT");
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "{}", done.stderr);
    assert!(
        done.stderr.contains("cannot be restored"),
        "{}",
        done.stderr
    );
    assert_eq!(home.current(), "genesis");
    let failed = &home.journal()["failed"][0];
    assert!(failed["restored"].is_null(), "{failed}");
    assert!(
        failed["unrestored"]
            .as_str()
            .unwrap()
            .contains("does not match its manifest"),
        "{failed}"
    );
    let text = String::from_utf8(home.output(&["status"]).stdout).unwrap();
    assert!(
        text.contains("not restored: the backup cannot be restored"),
        "{text}"
    );
}

#[test]
fn an_upgraded_node_that_exits_0_unasked_on_probation_has_failed() {
    // A release that prints its usage and exits 0, say.
    let home = rolling_home(json!({"exit_after_height": 3, "exit_code": 0}));
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "{}", done.stderr);
    assert!(
        done.stderr.contains("died (exit code 0)"),
        "{}",
        done.stderr
    );
    assert_rolled_back(&home, "exit 0 on probation");
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
