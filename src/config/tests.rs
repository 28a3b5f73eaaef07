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

fn in_home(home: &Path, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let home = home.to_str().unwrap().to_string();
    let mut all = vec![
        ("DAEMON_HOME", home.as_str()),
        ("DAEMON_NAME", "simd"),
        ("UNSAFE_SKIP_BACKUP", "true"),
    ];
    all.extend_from_slice(pairs);
    load_env(&all)
}

#[test]
fn a_custom_preupgrade_script_that_cannot_run_is_refused_at_start() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("cosmovisor");
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::write(root.join("ok.sh"), "#!/bin/sh\n").unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    in_home(home.path(), &[("COSMOVISOR_CUSTOM_PREUPGRADE", "ok.sh")]).unwrap();
    for (bad, says) in [
        ("missing.sh", "does not exist"),
        ("a/b", "does not exist"),
        ("a", "a directory"),
        ("fifo", "FIFO"),
    ] {
        let err = in_home(home.path(), &[("COSMOVISOR_CUSTOM_PREUPGRADE", bad)]).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{bad}: {err}");
        assert_eq!(err.problems[0].key, "COSMOVISOR_CUSTOM_PREUPGRADE");
        assert!(err.problems[0].message.contains(says), "{bad}: {err}");
        assert!(
            err.problems[0]
                .message
                .contains(&root.join(bad).display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn a_home_that_is_not_a_directory_is_refused_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("home");
    std::fs::write(&file, "").unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    for home in [file, fifo] {
        let err = in_home(&home, &[]).unwrap_err();
        assert_eq!(err.problems[0].key, "DAEMON_HOME", "{err}");
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }
}

#[test]
fn a_daemon_name_only_a_typo_could_give_is_refused() {
    let long = "d".repeat(300);
    for bad in [
        "gaiad\n",
        " gaiad",
        "gaiad ",
        "ga\u{7}iad",
        long.as_str(),
        "a/b",
        "..",
    ] {
        let err = load_env(&[
            ("DAEMON_HOME", "/h"),
            ("DAEMON_NAME", bad),
            ("UNSAFE_SKIP_BACKUP", "true"),
        ])
        .unwrap_err();
        assert_eq!(err.problems[0].key, "DAEMON_NAME", "{bad:?}");
    }
    for good in ["gaiad", "osmosisd-v25", "simd.bin"] {
        let c = load_env(&[
            ("DAEMON_HOME", "/h"),
            ("DAEMON_NAME", good),
            ("UNSAFE_SKIP_BACKUP", "true"),
        ])
        .unwrap();
        assert_eq!(c.name, good);
    }
}

fn load_file(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, text).unwrap();
    Config::load(Some(&file), &|_| None)
}

#[test]
fn file_keys_are_read_whatever_their_case() {
    let (c, warnings) =
        load_file("DAEMON_HOME = \"/h\"\nDaemon_Name = \"gaiad\"\nunsafe_skip_backup = true\n")
            .unwrap();
    assert_eq!(c.name, "gaiad");
    assert!(warnings.is_empty(), "{warnings:?}");
    let err = load_file(
        "daemon_home = \"/h\"\ndaemon_name = \"a\"\nDAEMON_NAME = \"b\"\nunsafe_skip_backup = true\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("set twice"), "{err}");
}

#[test]
fn a_misspelt_key_is_named_with_the_key_it_resembles() {
    let err = load_file("daemon_home = \"/h\"\ndaemon_nmae = \"gaiad\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("DAEMON_NAME: is required"), "{text}");
    assert!(
        text.contains("key daemon_nmae: unknown key, ignored; did you mean daemon_name?"),
        "{text}"
    );
    let (_, warnings) =
        load_file("daemon_home = \"/h\"\ndaemon_name = \"g\"\nunsafe_skip_backup = true\nshutdown_grase = \"5s\"\n")
            .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("shutdown_grase: unknown key, ignored"),
        "{warnings:?}"
    );
}

/// The words of a file that cannot be read, exactly as they were when the reason was a string.
#[test]
fn a_config_file_that_is_not_text_or_not_there_is_named_with_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, b"daemon_home = \"\xff\"\n").unwrap();
    let err = Config::load(Some(&file), &|_| None).unwrap_err();
    assert_eq!(
        err.problems[0].to_string(),
        format!(
            "--cosmovisor-config: cannot read {}: it is not UTF-8 text",
            file.display()
        )
    );
    let missing = dir.path().join("missing.toml");
    let err = Config::load(Some(&missing), &|_| None).unwrap_err();
    assert_eq!(
        err.problems[0].to_string(),
        format!(
            "--cosmovisor-config: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

#[test]
fn toml_values_are_written_as_toml_reads_them_back() {
    let cases = [
        r#"a = "quote \" backslash \\ tab	 newline \n bell \u0007 é""#,
        "a = 42",
        "a = -7",
        "a = 1.5",
        "a = 2.0",
        "a = 1e300",
        "a = true",
        "a = 1979-05-27T07:32:00Z",
        r#"a = [1, "two", [3.0, false]]"#,
        r#"a = { plain = 1, "with space" = "x" }"#,
    ];
    for case in cases {
        let table: toml::Table = case.parse().unwrap();
        let written = format!("a = {}", super::toml_value(&table["a"]));
        let again: toml::Table = written.parse().unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(again, table, "{case} was written as {written}");
    }
    let f: toml::Table = "a = 2.0".parse().unwrap();
    assert_eq!(
        super::toml_value(&f["a"]),
        "2.0",
        "a plugin is given 2.0 as TOML wrote it"
    );
}
