//! Configuration from the environment and `--cosmovisor-config`, as the `config` command shows it.

use crate::harness::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into()
}

#[test]
fn every_problem_is_reported_at_once_naming_the_variable() {
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "yes")
        .set("DAEMON_POLL_INTERVAL", "300")
        .set("DAEMON_SHUTDOWN_GRACE", "-2s")
        .set("COSMOVISOR_TIMEFORMAT_LOGS", "iso8601")
        .set("WASMVISOR_WATCH_MODE", "fanotify")
        .unset("DAEMON_NAME");
    let out = home.output(&["config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for needle in [
        "DAEMON_ALLOW_DOWNLOAD_BINARIES: \"yes\" is not a boolean; accepted values: true, false",
        "DAEMON_POLL_INTERVAL",
        "DAEMON_SHUTDOWN_GRACE",
        "COSMOVISOR_TIMEFORMAT_LOGS",
        "kitchen",
        "WASMVISOR_WATCH_MODE",
        "DAEMON_NAME: is required",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn booleans_and_durations_table() {
    // (variable, value, the effective value `config` prints, or None for a refusal)
    for (key, value, shown) in [
        ("UNSAFE_SKIP_BACKUP", "TRUE", Some("true")),
        ("UNSAFE_SKIP_BACKUP", "False", Some("false")),
        ("UNSAFE_SKIP_BACKUP", "1", None),
        ("DAEMON_RESTART_DELAY", "1m30s", Some("1m30s")),
        ("DAEMON_RESTART_DELAY", "0s", None),
        ("DAEMON_RESTART_DELAY", "10", None),
        ("DAEMON_POLL_INTERVAL", "1.5s", Some("1.5s")),
        ("DAEMON_POLL_INTERVAL", "1500ms", Some("1.5s")),
        ("DAEMON_POLL_INTERVAL", "fast", None),
        ("DAEMON_PREUPGRADE_MAX_RETRIES", "3", Some("3")),
        ("DAEMON_PREUPGRADE_MAX_RETRIES", "-1", None),
        ("DAEMON_HOME", "relative/path", None),
        ("WASMVISOR_RPC_ADDRESS", "https://node:26657", None),
    ] {
        let mut home = Home::new();
        home.set(key, value);
        let out = home.output(&["config"]);
        assert_eq!(
            out.status.success(),
            shown.is_some(),
            "{key}={value}: {}",
            stderr(&out)
        );
        match shown {
            // The value read back, as the line of `config` that names the variable.
            Some(shown) => {
                let text = stdout(&out);
                let line = format!("{key}: {shown}");
                assert!(
                    text.lines().any(|l| l == line),
                    "{key}={value}: no line {line:?} in:\n{text}"
                );
            }
            None => assert!(
                stderr(&out).contains(key),
                "{key}={value}: {}",
                stderr(&out)
            ),
        }
    }
}

#[test]
fn the_file_fills_in_what_the_environment_leaves_and_defaults_fill_the_rest() {
    let mut home = Home::new();
    let file = home.path.join("config.toml");
    std::fs::write(
        &file,
        format!(
            "daemon_home = \"{}\"\ndaemon_name = \"fromfile\"\ndaemon_restart_delay = \"2s\"\ndaemon_shutdown_grace = 5000000000\nunsafe_skip_backup = true\n",
            home.path.display()
        ),
    )
    .unwrap();
    home.unset("DAEMON_HOME")
        .unset("UNSAFE_SKIP_BACKUP")
        .unset("DAEMON_SHUTDOWN_GRACE");
    home.set("DAEMON_NAME", "fromenv");
    let out = home.output(&["config", "--cosmovisor-config", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "DAEMON_NAME: fromenv",
        "DAEMON_RESTART_DELAY: 2s",
        "DAEMON_SHUTDOWN_GRACE: 5s",
        "UNSAFE_SKIP_BACKUP: true",
        "DAEMON_POLL_INTERVAL: 300ms",
        "DAEMON_RESTART_AFTER_UPGRADE: true",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn run_takes_the_config_flag_out_of_the_node_arguments() {
    let mut home = Home::new();
    let file = home.path.join("c.toml");
    std::fs::write(
        &file,
        format!(
            "daemon_home = \"{}\"\ndaemon_name = \"simd\"\n",
            home.path.display()
        ),
    )
    .unwrap();
    home.unset("DAEMON_HOME").unset("DAEMON_NAME");
    let run = home.run(&["--cosmovisor-config", file.to_str().unwrap(), "--after"]);
    home.wait_height("genesis", 1);
    run.stop();
    let args = home.events_of("start")[0]["args"].clone();
    assert_eq!(
        args,
        serde_json::json!([
            "start",
            "--home",
            home.path.display().to_string(),
            "--after"
        ])
    );
}

#[test]
fn json_logs_on_request() {
    let mut home = Home::new();
    home.set("WASMVISOR_LOG_FORMAT", "json");
    let run = home.run(&[]);
    home.wait_height("genesis", 1);
    let out = run.stop();
    let first = out
        .stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON log line");
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    assert!(
        v["level"].is_string() && v["message"].is_string(),
        "{first}"
    );
}

#[test]
fn disabled_logs_print_nothing_of_wasmvisor() {
    let mut home = Home::new();
    home.set("COSMOVISOR_DISABLE_LOGS", "true");
    let run = home.run(&[]);
    home.wait_height("genesis", 1);
    let out = run.stop();
    assert!(!out.stderr.contains("module=wasmvisor"), "{}", out.stderr);
}

#[test]
fn a_custom_preupgrade_script_that_is_not_there_is_refused_before_the_node_starts() {
    let mut home = Home::new();
    home.install(
        "genesis",
        serde_json::json!({"version": "genesis", "ordinal": 1}),
    );
    std::fs::create_dir_all(home.root().join("scripts")).unwrap();
    home.set("COSMOVISOR_CUSTOM_PREUPGRADE", "scripts/missing.sh");
    let done = home.run(&[]).finish(std::time::Duration::from_secs(30));
    assert_ne!(done.code(), 0);
    assert!(
        done.stderr.contains("COSMOVISOR_CUSTOM_PREUPGRADE")
            && done.stderr.contains("scripts/missing.sh does not exist"),
        "{}",
        done.stderr
    );
    assert!(home.events_of("start").is_empty(), "the node was started");
}
