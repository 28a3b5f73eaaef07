use super::*;
use std::collections::HashMap;

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load(None, &move |k| map.get(k).cloned()).map(|(c, _)| c)
}

#[test]
fn defaults_apply() {
    let c = load_env(&[
        ("DAEMON_HOME", "/home/node"),
        ("DAEMON_NAME", "gaiad"),
        ("UNSAFE_SKIP_BACKUP", "true"),
    ])
    .unwrap();
    assert!(c.restart_after_upgrade);
    assert!(!c.allow_download_binaries);
    assert_eq!(c.poll_interval, Duration::from_millis(300));
    assert_eq!(c.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    assert_eq!(c.restart_delay, None);
    assert_eq!(c.data_backup_dir, PathBuf::from("/home/node"));
    assert_eq!(c.time_format, Some(TimeFormat::Kitchen));
}

#[test]
fn booleans_accept_any_case_and_nothing_else() {
    let c = load_env(&[
        ("DAEMON_HOME", "/h"),
        ("DAEMON_NAME", "n"),
        ("UNSAFE_SKIP_BACKUP", "TRUE"),
        ("DAEMON_RESTART_AFTER_UPGRADE", "False"),
    ])
    .unwrap();
    assert!(c.unsafe_skip_backup);
    assert!(!c.restart_after_upgrade);
    let err = load_env(&[
        ("DAEMON_HOME", "/h"),
        ("DAEMON_NAME", "n"),
        ("UNSAFE_SKIP_BACKUP", "yes"),
    ])
    .unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].key, "UNSAFE_SKIP_BACKUP");
    assert!(err.problems[0].message.contains("true, false"));
}

#[test]
fn all_problems_are_reported_together() {
    let err = load_env(&[
        ("DAEMON_HOME", "relative/home"),
        ("DAEMON_POLL_INTERVAL", "300"),
        ("DAEMON_SHUTDOWN_GRACE", "-1s"),
        ("COSMOVISOR_TIMEFORMAT_LOGS", "iso"),
        ("DAEMON_PREUPGRADE_MAX_RETRIES", "many"),
    ])
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "DAEMON_HOME",
        "DAEMON_NAME",
        "DAEMON_POLL_INTERVAL",
        "DAEMON_SHUTDOWN_GRACE",
        "COSMOVISOR_TIMEFORMAT_LOGS",
        "DAEMON_PREUPGRADE_MAX_RETRIES",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}

#[test]
fn empty_time_format_means_no_timestamp() {
    let c = load_env(&[
        ("DAEMON_HOME", "/h"),
        ("DAEMON_NAME", "n"),
        ("UNSAFE_SKIP_BACKUP", "true"),
        ("COSMOVISOR_TIMEFORMAT_LOGS", ""),
    ])
    .unwrap();
    assert_eq!(c.time_format, None);
}

#[test]
fn addresses_and_file_values_of_the_wrong_type_are_refused() {
    for (key, value) in [
        ("DAEMON_GRPC_ADDRESS", "not an address"),
        ("DAEMON_GRPC_ADDRESS", "localhost"),
        ("DAEMON_GRPC_ADDRESS", "localhost:99999"),
        ("WASMVISOR_RPC_ADDRESS", "http://[::1"),
        ("WASMVISOR_HALT_HEIGHT", "after"),
    ] {
        let err = load_env(&[
            ("DAEMON_HOME", "/h"),
            ("DAEMON_NAME", "n"),
            ("UNSAFE_SKIP_BACKUP", "true"),
            (key, value),
        ])
        .unwrap_err();
        assert_eq!(err.problems[0].key, key, "{value}");
    }
    let file = std::env::temp_dir().join(format!("wv-config-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "daemon_home = \"/h\"\ndaemon_name = [\"a\", \"b\"]\nunsafe_skip_backup = true\n",
    )
    .unwrap();
    let err = Config::load(Some(&file), &|_| None).unwrap_err();
    let _ = std::fs::remove_file(&file);
    assert_eq!(err.problems.len(), 1, "{err}");
    assert!(
        err.problems[0].message.contains("a TOML array"),
        "{}",
        err.problems[0].message
    );
}

#[test]
fn custom_preupgrade_cannot_leave_the_tree() {
    for bad in ["../x.sh", "/etc/x.sh", "a/../../b"] {
        let err = load_env(&[
            ("DAEMON_HOME", "/h"),
            ("DAEMON_NAME", "n"),
            ("UNSAFE_SKIP_BACKUP", "true"),
            ("COSMOVISOR_CUSTOM_PREUPGRADE", bad),
        ])
        .unwrap_err();
        assert_eq!(err.problems[0].key, "COSMOVISOR_CUSTOM_PREUPGRADE");
    }
}
