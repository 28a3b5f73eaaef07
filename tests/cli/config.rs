//! Configuration from the environment and `--cosmovisor-config`, as the `config` command shows it.

use crate::harness::*;

/// The plugin compile cache every test home shares (`Home::new`).
const CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-cache");

/// `config` for a test home as `Home::new` sets it up, `{home}` its folder.
const DEFAULT: [&str; 44] = [
    "Configurations:",
    "DAEMON_HOME: {home}",
    "DAEMON_NAME: simd",
    "DAEMON_ALLOW_DOWNLOAD_BINARIES: false",
    "DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM: false",
    "DAEMON_RESTART_AFTER_UPGRADE: true",
    "DAEMON_RESTART_DELAY: ",
    "DAEMON_SHUTDOWN_GRACE: 5s",
    "DAEMON_POLL_INTERVAL: 300ms",
    "UNSAFE_SKIP_BACKUP: true",
    "DAEMON_DATA_BACKUP_DIR: {home}",
    "DAEMON_PREUPGRADE_MAX_RETRIES: 0",
    "DAEMON_GRPC_ADDRESS: localhost:9090",
    "COSMOVISOR_DISABLE_LOGS: false",
    "COSMOVISOR_COLOR_LOGS: false",
    "COSMOVISOR_TIMEFORMAT_LOGS: kitchen",
    "COSMOVISOR_CUSTOM_PREUPGRADE: ",
    "COSMOVISOR_DISABLE_RECASE: false",
    "WASMVISOR_RPC_ADDRESS: http://127.0.0.1:26657",
    "WASMVISOR_METRICS_ADDRESS: ",
    "WASMVISOR_LOG_FORMAT: human",
    "WASMVISOR_WATCH_MODE: auto",
    "WASMVISOR_HALT_HEIGHT: before",
    "WASMVISOR_BACKUP_KEEP: 3",
    "WASMVISOR_ON_FAILED_UPGRADE: exit",
    "WASMVISOR_UPGRADE_PROBATION: 1m0s",
    "WASMVISOR_RESTART_ON_CRASH: false",
    "WASMVISOR_MAX_RESTARTS: 5",
    "WASMVISOR_PLUGINS: ",
    "WASMVISOR_PLUGIN_CACHE: {cache}",
    "WASMVISOR_PLAN_POLL: 1m0s",
    "WASMVISOR_PREFLIGHT_ARGS: version",
    "WASMVISOR_PREPARE_PROPOSED: false",
    "",
    "Derived:",
    "Config file: (none, environment only)",
    "Root dir: {home}/cosmovisor",
    "Genesis bin: {home}/cosmovisor/genesis/bin/simd",
    "Upgrades dir: {home}/cosmovisor/upgrades",
    "Current link: {home}/cosmovisor/current",
    "Monitored file: {home}/data/upgrade-info.json",
    "Batch file: {home}/data/upgrade-info.json.batch",
    "Journal: {home}/cosmovisor/wasmvisor-journal.json",
    "Data backup dir: (backups disabled)",
];

/// `DEFAULT` with some lines changed: each of `changed` (`NAME: value`) replaces the one line
/// that starts with its `NAME: `.
fn config_with(changed: &[&str]) -> String {
    let mut lines = DEFAULT.map(String::from);
    for line in changed {
        let (name, _) = line.split_once(": ").expect("NAME: value");
        let at: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with(&format!("{name}: ")))
            .collect();
        assert_eq!(at.len(), 1, "{name}: not one line of config to change");
        lines[at[0]] = line.to_string();
    }
    lines.join("\n") + "\n"
}

/// `wasmvisor: the configuration has N problem(s):` and one line per problem.
fn problems(lines: &[&str]) -> String {
    let mut text = format!(
        "wasmvisor: the configuration has {} problem(s):\n",
        lines.len()
    );
    for line in lines {
        text.push_str(&format!("  - {line}\n"));
    }
    text
}

#[test]
fn every_problem_is_reported_at_once_naming_the_variable() {
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "yes")
        .set("DAEMON_POLL_INTERVAL", "300")
        .set("DAEMON_SHUTDOWN_GRACE", "-2s")
        .set("COSMOVISOR_TIMEFORMAT_LOGS", "iso8601")
        .set("WASMVISOR_WATCH_MODE", "fanotify");
    Cmd::new(&home)
        .env_remove("DAEMON_NAME")
        .arg("config")
        .stderr(problems(&[
            "DAEMON_NAME: is required: set it to the file name of the node binary (e.g. gaiad)",
            "environment variable DAEMON_ALLOW_DOWNLOAD_BINARIES: \"yes\" is not a boolean; accepted values: true, false",
            "environment variable DAEMON_SHUTDOWN_GRACE: \"-2s\" is negative; durations must be greater than zero; accepted: a duration such as 300ms, 30s, 2m",
            "environment variable DAEMON_POLL_INTERVAL: \"300\" has no unit; write it like 300ms, 30s or 2m; accepted: a duration such as 300ms, 30s, 2m",
            "environment variable COSMOVISOR_TIMEFORMAT_LOGS: \"iso8601\" is not accepted; accepted values: layout, ansic, unixdate, rubydate, rfc822, rfc822z, rfc850, rfc1123, rfc1123z, rfc3339, rfc3339nano, kitchen",
            "environment variable WASMVISOR_WATCH_MODE: \"fanotify\" is not accepted; accepted values: auto, inotify, poll",
        ]))
        .status(1)
        .run();
}

const DURATION: &str = "accepted: a duration such as 300ms, 30s, 2m";

/// How `config` takes one variable: the lines it prints changed from `DEFAULT`, or why it refuses.
enum Taken {
    Shown(&'static [&'static str]),
    Refused(&'static str),
}

/// `config` with one variable set: (variable, value, how it is taken).
const TABLE: [(&str, &str, Taken); 20] = [
    (
        "UNSAFE_SKIP_BACKUP",
        "TRUE",
        Taken::Shown(&["UNSAFE_SKIP_BACKUP: true"]),
    ),
    (
        "UNSAFE_SKIP_BACKUP",
        "False",
        Taken::Shown(&["UNSAFE_SKIP_BACKUP: false", "Data backup dir: {home}"]),
    ),
    (
        "UNSAFE_SKIP_BACKUP",
        "1",
        Taken::Refused("\"1\" is not a boolean; accepted values: true, false"),
    ),
    (
        "DAEMON_RESTART_DELAY",
        "1m30s",
        Taken::Shown(&["DAEMON_RESTART_DELAY: 1m30s"]),
    ),
    (
        "DAEMON_RESTART_DELAY",
        "0s",
        Taken::Refused("\"0s\" is zero; durations must be greater than zero; {DURATION}"),
    ),
    (
        "DAEMON_RESTART_DELAY",
        "10",
        Taken::Refused("\"10\" has no unit; write it like 300ms, 30s or 2m; {DURATION}"),
    ),
    (
        "DAEMON_POLL_INTERVAL",
        "1.5s",
        Taken::Shown(&["DAEMON_POLL_INTERVAL: 1.5s"]),
    ),
    (
        "DAEMON_POLL_INTERVAL",
        "1500ms",
        Taken::Shown(&["DAEMON_POLL_INTERVAL: 1.5s"]),
    ),
    (
        "DAEMON_POLL_INTERVAL",
        "fast",
        Taken::Refused("\"fast\" is not a duration; write it like 300ms, 30s or 2m; {DURATION}"),
    ),
    (
        "WASMVISOR_PLAN_POLL",
        "OFF",
        Taken::Shown(&["WASMVISOR_PLAN_POLL: off"]),
    ),
    (
        "WASMVISOR_PLAN_POLL",
        "90s",
        Taken::Shown(&["WASMVISOR_PLAN_POLL: 1m30s"]),
    ),
    (
        "WASMVISOR_PLAN_POLL",
        "10ms",
        Taken::Refused(
            "10ms is too often to ask the node (at least 100ms); give a longer duration such as 1m, or `off`",
        ),
    ),
    (
        "WASMVISOR_PLAN_POLL",
        "hourly",
        Taken::Refused("\"hourly\" is not a duration; write it like 300ms, 30s or 2m; {DURATION}"),
    ),
    (
        "WASMVISOR_PREFLIGHT_ARGS",
        "  version   --long ",
        Taken::Shown(&["WASMVISOR_PREFLIGHT_ARGS: version --long"]),
    ),
    (
        "WASMVISOR_PREFLIGHT_ARGS",
        "off",
        Taken::Shown(&["WASMVISOR_PREFLIGHT_ARGS: off"]),
    ),
    (
        "WASMVISOR_PREPARE_PROPOSED",
        "yes",
        Taken::Refused("\"yes\" is not a boolean; accepted values: true, false"),
    ),
    (
        "DAEMON_PREUPGRADE_MAX_RETRIES",
        "3",
        Taken::Shown(&["DAEMON_PREUPGRADE_MAX_RETRIES: 3"]),
    ),
    (
        "DAEMON_PREUPGRADE_MAX_RETRIES",
        "-1",
        Taken::Refused("\"-1\" is not a whole number of 0 or more"),
    ),
    (
        "DAEMON_HOME",
        "relative/path",
        Taken::Refused("\"relative/path\" must be an absolute path"),
    ),
    (
        "WASMVISOR_RPC_ADDRESS",
        "https://node:26657",
        Taken::Refused(
            "\"https://node:26657\": https is not supported; use the node's plain RPC address (http://127.0.0.1:26657)",
        ),
    ),
];

#[test]
fn booleans_and_durations_table() {
    for (key, value, taken) in TABLE {
        let home = Home::new();
        let cmd = Cmd::new(&home)
            .env(key, value)
            .arg("config")
            .var("{cache}", CACHE);
        match taken {
            // The value read back: the whole of `config`, that line changed.
            Taken::Shown(lines) => cmd.stdout(config_with(lines)).run(),
            Taken::Refused(reason) => cmd
                .stderr(problems(&[&format!(
                    "environment variable {key}: {}",
                    reason.replace("{DURATION}", DURATION)
                )]))
                .status(1)
                .run(),
        };
    }
}

#[test]
fn the_file_fills_in_what_the_environment_leaves_and_defaults_fill_the_rest() {
    let mut home = Home::new();
    let file = home.path.join("config.toml");
    std::fs::write(
        &file,
        format!(
            "daemon_home = \"{}\"\ndaemon_name = \"fromfile\"\ndaemon_restart_delay = \"2s\"\ndaemon_shutdown_grace = 5000000000\nunsafe_skip_backup = true\nwasmvisor_plan_poll = \"5m\"\n",
            home.path.display()
        ),
    )
    .unwrap();
    home.unset("DAEMON_HOME")
        .unset("UNSAFE_SKIP_BACKUP")
        .unset("DAEMON_SHUTDOWN_GRACE");
    home.set("DAEMON_NAME", "fromenv");
    // DAEMON_NAME from the environment over the file's; the home, the restart delay, the grace
    // and the backups from the file; the poll interval and the restart flag the defaults.
    Cmd::new(&home)
        .args(["config", "--cosmovisor-config", file.to_str().unwrap()])
        .var("{cache}", CACHE)
        .stdout(config_with(&[
            "DAEMON_NAME: fromenv",
            "DAEMON_RESTART_DELAY: 2s",
            "WASMVISOR_PLAN_POLL: 5m0s",
            "Config file: {home}/config.toml",
            "Genesis bin: {home}/cosmovisor/genesis/bin/fromenv",
        ]))
        .run();
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
    Cmd::new(&home)
        .args(["run", "start", "--home", home.path.to_str().unwrap()])
        .stderr(problems(&[
            "environment variable COSMOVISOR_CUSTOM_PREUPGRADE: {home}/cosmovisor/scripts/missing.sh does not exist; put the script there, or unset the variable",
        ]))
        .status(1)
        .run();
    assert!(home.events_of("start").is_empty(), "the node was started");
}
