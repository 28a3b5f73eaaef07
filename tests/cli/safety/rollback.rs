//! Rollback: a new binary that cannot start, dies or is judged unhealthy on probation is rolled
//! back (never rerun), a kill anywhere in the rollback is finished by the next start, and a
//! backup that cannot be restored does not wedge it.

use serde_json::{Value, json};

use crate::harness::*;

use super::{T, assert_rolled_back, backups, rolling_home, signed_height};

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
