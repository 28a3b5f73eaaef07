//! `kill -9` of wasmvisor in every phase of an upgrade, then a restart: the node ends on the right
//! binary, with its data intact and every block run by exactly one version.

use serde_json::json;

use crate::harness::*;

const POINTS: &[&str] = &[
    "detect",
    "stop",
    "stop:end",
    "delay",
    "backup",
    "backup:end",
    "custom-preupgrade",
    "resolve",
    "swap",
    "swap:end",
    "app-preupgrade",
    "app-preupgrade:end",
];

#[test]
fn killed_in_any_phase_a_restart_converges() {
    for point in POINTS {
        let mut home = Home::new();
        home.set("UNSAFE_SKIP_BACKUP", "false")
            .set("DAEMON_RESTART_DELAY", "50ms")
            .set("COSMOVISOR_CUSTOM_PREUPGRADE", "prepare.sh");
        write_script(&home.root().join("prepare.sh"), "#!/bin/sh\nexit 0\n");
        home.upgrade("v2", 2, json!({}));
        home.chain(&[("v2", 3)]);
        home.set("WASMVISOR_TEST_KILL_AT", point);
        let out = home.run(&[]).finish(std::time::Duration::from_secs(30));
        assert_eq!(
            out.status.code(),
            None,
            "{point}: wasmvisor should have been killed: {}",
            out.stderr
        );
        home.unset("WASMVISOR_TEST_KILL_AT");
        let run = home.run(&[]);
        home.wait_height("v2", 5);
        let out = run.stop();
        assert_eq!(home.current(), "upgrades/v2", "{point}");
        let history = home.history();
        assert_eq!(
            history[0],
            ("genesis".into(), 1, 2),
            "{point}: {history:?}\n{}",
            out.stderr
        );
        assert_eq!(history[1].1, 3, "{point}: {history:?}");
        assert!(!home.events_of("pre-upgrade").is_empty(), "{point}");
        assert!(
            home.journal()["active"].is_null(),
            "{point}: the upgrade is committed"
        );
        let backups = std::fs::read_dir(&home.path)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("data-backup-"))
            .count();
        let partials = std::fs::read_dir(&home.path)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .count();
        assert_eq!(
            (backups, partials),
            (1, 0),
            "{point}: one complete backup, no partial one"
        );
    }
}
