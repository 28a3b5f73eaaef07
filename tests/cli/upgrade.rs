//! Governance upgrades: detection, stop, backup, pre-upgrade protocol, switch and relaunch.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn genesis_to_v2_to_v3_at_exactly_the_plan_heights_with_arguments_passed_through() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.upgrade("v3", 3, json!({}));
    home.chain(&[("v2", 5), ("v3", 9)]);
    let run = home.run(&["--custom-flag", "value with spaces", "--x=1"]);
    home.wait_height("v3", 11);
    let out = run.stop();
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let history = home.history();
    assert_eq!(
        history[..2],
        [("genesis".into(), 1, 4), ("v2".into(), 5, 8)],
        "{history:?}"
    );
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!((history[2].0.as_str(), history[2].1), ("v3", 9));
    assert!(history[2].2 >= 11, "{history:?}");
    assert_eq!(home.current(), "upgrades/v3");
    let starts = home.events_of("start");
    assert_eq!(starts.len(), 3);
    for start in &starts {
        let args: Vec<&str> = start["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            args[3..],
            ["--custom-flag", "value with spaces", "--x=1"],
            "arguments changed: {args:?}"
        );
    }
    // Each upgrade's plan is recorded in its folder, and status shows the last one's phases.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(home.root().join("upgrades/v3/upgrade-info.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (record["name"].as_str(), record["height"].as_u64()),
        (Some("v3"), Some(9))
    );
    let status: serde_json::Value =
        serde_json::from_slice(&home.output(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["current"]["upgrade"], "v3");
    let phases: Vec<&str> = status["last_upgrade"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "detect",
            "stop",
            "resolve",
            "swap",
            "app-preupgrade",
            "launch"
        ]
    );
}

#[test]
fn node_that_exits_at_the_halt_is_upgraded_too() {
    let home = Home::new();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "halt": "exit", "halt_exit_code": 2}),
    );
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 4)]);
    let run = home.run(&[]);
    home.wait_height("v2", 6);
    run.stop();
    assert_eq!(home.history()[0], ("genesis".into(), 1, 3));
    assert_eq!(home.history()[1].1, 4);
}

#[test]
fn a_half_written_upgrade_info_is_read_once_complete() {
    let mut home = Home::new();
    home.set("WASMVISOR_LOG_FORMAT", "json");
    // The sim writes half of the file, waits, then writes the rest (the event
    // `upgrade-info-rest` is logged just before); the node stays alive at the halt, so only the
    // supervisor's reading of the file can start the upgrade.
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "info_write_pause_ms": 1500}),
    );
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    let info = home.data().join("upgrade-info.json");
    home.wait_for("the first half of upgrade-info.json", T, |_| {
        std::fs::read(&info).is_ok_and(|b| !b.is_empty())
    });
    // While the file is half-written, wasmvisor (woken by its creation) waits: `current` read
    // first, then the file still cut short, so no switch happened while it was.
    let current = home.current();
    let half = std::fs::read(&info).unwrap();
    assert!(
        serde_json::from_slice::<serde_json::Value>(&half).is_err_and(|e| e.is_eof()),
        "the sim's pause is over before the test looked: {}",
        String::from_utf8_lossy(&half)
    );
    assert_eq!(current, "genesis");
    home.wait_height("v2", 4);
    let out = run.stop();
    assert!(!out.stderr.contains("invalid"), "{}", out.stderr);
    assert_eq!(home.history()[1].1, 3);
    // Detected while the node still ran (not at its exit), after the file was complete.
    let written = home.events_of("upgrade-info-rest")[0]["mono_ns"]
        .as_u64()
        .unwrap();
    let detected = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "upgrade detected")
        .unwrap_or_else(|| panic!("no \"upgrade detected\" line:\n{}", out.stderr));
    assert_eq!(detected["upgrade"], "v2", "{detected}");
    assert!(
        detected["mono_ns"].as_u64().unwrap() >= written,
        "acted before the file was complete: {detected}"
    );
}

#[test]
fn upgrade_names_are_lower_cased_like_cosmovisor() {
    let home = Home::new();
    home.install(
        "upgrades/v2-final",
        json!({"version": "V2-Final", "ordinal": 2, "handles": "V2-Final"}),
    );
    home.chain(&[("V2-Final", 3)]);
    let run = home.run(&[]);
    home.wait_height("V2-Final", 4);
    run.stop();
    assert_eq!(home.current(), "upgrades/v2-final");
}

#[test]
fn missing_upgrade_binary_is_a_clear_error_and_current_is_untouched() {
    let home = Home::new();
    home.chain(&[("v2", 3)]);
    let out = home.run(&[]).finish(T);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr.contains("upgrades/v2/bin/simd") && out.stderr.contains("does not exist"),
        "{}",
        out.stderr
    );
    assert_eq!(home.current(), "genesis");
}

#[test]
fn backup_copies_data_under_a_unique_name_before_the_switch() {
    let mut home = Home::new();
    home.set("UNSAFE_SKIP_BACKUP", "false");
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();
    let backups: Vec<_> = std::fs::read_dir(&home.path)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("data-backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(backups[0].ends_with("-v2-h3"), "{backups:?}");
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(home.path.join(&backups[0]).join("sim-state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        saved["height"], 2,
        "the backup holds the data as the old binary left it"
    );
}

#[test]
fn restart_disabled_switches_and_exits_zero() {
    let mut home = Home::new();
    home.set("DAEMON_RESTART_AFTER_UPGRADE", "false");
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let out = home.run(&[]).finish(T);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(home.current(), "upgrades/v2");
    assert!(
        home.events_of("start")
            .iter()
            .all(|e| e["version"] == "genesis"),
        "v2 must not be started"
    );
}

#[test]
fn restart_delay_is_honoured_between_stop_and_start() {
    let mut home = Home::new();
    home.set("DAEMON_RESTART_DELAY", "700ms");
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 3);
    run.stop();
    let stopped = home.events_of("shutdown")[0]["mono_ns"].as_u64().unwrap();
    let started = home
        .events_of("start")
        .iter()
        .find(|e| e["version"] == "v2")
        .unwrap()["mono_ns"]
        .as_u64()
        .unwrap();
    assert!(
        started - stopped >= 700_000_000,
        "only {} ms between stop and start",
        (started - stopped) / 1_000_000
    );
}

#[test]
fn skipped_heights_are_not_upgraded() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&["--unsafe-skip-upgrades", "3"]);
    home.wait_height("genesis", 6);
    run.stop();
    assert_eq!(home.current(), "genesis");
    let history = home.history();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!((history[0].0.as_str(), history[0].1), ("genesis", 1));
    assert!(
        home.height() >= 6,
        "genesis ran past the skipped height: {history:?}"
    );
}

#[test]
fn pending_upgrade_at_start_is_applied_before_any_launch() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    // The chain halted at 3 while no supervisor ran.
    std::fs::write(
        home.data().join("sim-state.json"),
        r#"{"height":2,"ordinal":1,"history":[{"version":"genesis","from":1,"to":2}]}"#,
    )
    .unwrap();
    std::fs::write(
        home.data().join("upgrade-info.json"),
        r#"{"name":"v2","time":"0001-01-01T00:00:00Z","height":3}"#,
    )
    .unwrap();
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();
    assert!(
        home.events_of("start").iter().all(|e| e["version"] == "v2"),
        "genesis must not run again"
    );
}

#[test]
fn a_stale_plan_of_the_running_binary_is_not_applied_twice() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();
    let run = home.run(&[]);
    home.wait_height("v2", 6);
    let out = run.stop();
    assert!(!out.stderr.contains("upgrade starting"), "{}", out.stderr);
    assert_eq!(home.events_of("pre-upgrade").len(), 1);
}

#[test]
fn an_invalid_upgrade_info_is_reported_and_ignored() {
    let home = Home::new();
    let run = home.run(&[]);
    home.wait_height("genesis", 2);
    std::fs::write(
        home.data().join("upgrade-info.json"),
        r#"{"name":"v2","height":"soon"}"#,
    )
    .unwrap();
    home.wait_height("genesis", 5);
    let out = run.stop();
    assert_eq!(out.code(), 0);
    assert!(
        out.stderr.contains("ignoring an invalid upgrade plan") && out.stderr.contains("height"),
        "{}",
        out.stderr
    );
    assert_eq!(home.current(), "genesis");
}

#[test]
fn custom_preupgrade_script_gets_name_and_height_in_daemon_home() {
    let mut home = Home::new();
    home.set("COSMOVISOR_CUSTOM_PREUPGRADE", "prepare.sh");
    let log = home.path.join("script.log");
    write_script(
        &home.root().join("prepare.sh"),
        &format!("#!/bin/sh\necho \"$1 $2 $(pwd)\" > '{}'\n", log.display()),
    );
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 3);
    run.stop();
    assert_eq!(
        std::fs::read_to_string(log).unwrap().trim(),
        format!("v2 3 {}", home.path.display())
    );
}

#[test]
fn custom_preupgrade_failure_or_absence_aborts_before_the_switch() {
    for script in [Some("#!/bin/sh\nexit 4\n"), None] {
        let mut home = Home::new();
        home.set("COSMOVISOR_CUSTOM_PREUPGRADE", "prepare.sh");
        if let Some(text) = script {
            write_script(&home.root().join("prepare.sh"), text);
        }
        home.upgrade("v2", 2, json!({}));
        home.chain(&[("v2", 3)]);
        let out = home.run(&[]).finish(T);
        assert_eq!(out.code(), 1);
        assert!(out.stderr.contains("prepare.sh"), "{}", out.stderr);
        assert_eq!(home.current(), "genesis", "the switch must not happen");
    }
}

#[test]
fn app_preupgrade_protocol() {
    // (exit codes the new binary's pre-upgrade gives, max retries, upgrade succeeds, attempts)
    for (codes, retries, ok, attempts) in [
        (vec![0], 0, true, 1),
        (vec![1], 0, true, 1),
        (vec![31, 31, 0], 2, true, 3),
        (vec![31, 31, 0], 1, false, 2),
        (vec![30], 5, false, 1),
        (vec![2], 5, false, 1),
    ] {
        let mut home = Home::new();
        home.set("DAEMON_PREUPGRADE_MAX_RETRIES", &retries.to_string());
        home.upgrade("v2", 2, json!({"preupgrade_exit_codes": codes}));
        home.chain(&[("v2", 3)]);
        let run = home.run(&[]);
        if ok {
            home.wait_height("v2", 3);
            run.stop();
        } else {
            let out = run.finish(T);
            assert_eq!(out.code(), 1, "codes {codes:?}: {}", out.stderr);
            assert!(out.stderr.contains("pre-upgrade"), "{}", out.stderr);
        }
        assert_eq!(
            home.events_of("pre-upgrade").len(),
            attempts,
            "codes {codes:?} retries {retries}"
        );
    }
}

#[test]
fn a_failed_preupgrade_is_retried_before_the_next_launch() {
    let mut home = Home::new();
    home.upgrade("v2", 2, json!({"preupgrade_exit_codes": [2, 0]}));
    home.chain(&[("v2", 3)]);
    assert_eq!(home.run(&[]).finish(T).code(), 1);
    assert_eq!(home.current(), "upgrades/v2");
    home.set("COSMOVISOR_COLOR_LOGS", "false");
    let run = home.run(&[]);
    home.wait_height("v2", 3);
    run.stop();
    assert_eq!(home.events_of("pre-upgrade").len(), 2);
    // Before the next launch: the new binary started only after its last pre-upgrade attempt
    // (both in the order of the sim's event log and by the monotonic clock).
    let events = home.events();
    let index = |e: &serde_json::Value| events.iter().position(|x| x == e).unwrap();
    let attempts = home.events_of("pre-upgrade");
    let v2_starts: Vec<_> = home
        .events_of("start")
        .into_iter()
        .filter(|e| e["version"] == "v2")
        .collect();
    assert!(!v2_starts.is_empty(), "{events:?}");
    let (last_attempt, first_start) = (attempts.last().unwrap(), &v2_starts[0]);
    assert_eq!(last_attempt["code"], 0, "{attempts:?}");
    assert!(
        index(last_attempt) < index(first_start)
            && last_attempt["mono_ns"].as_u64() < first_start["mono_ns"].as_u64(),
        "v2 started before its pre-upgrade was retried: {events:?}"
    );
}
