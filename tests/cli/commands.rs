//! init, version, add-upgrade, add-batch-upgrade, show-upgrade-info, status, help, and clap's
//! argument errors: their output is the contract, so `Cmd` compares it whole.

use serde_json::{Value, json};

use crate::harness::*;

/// A home whose log lines carry no clock time (`COSMOVISOR_TIMEFORMAT_LOGS` set but empty), so a
/// command's stderr is the same on every run.
fn home_without_clock() -> Home {
    let mut home = Home::new();
    home.set("COSMOVISOR_TIMEFORMAT_LOGS", "");
    home
}

#[test]
fn init_creates_the_tree_and_keeps_an_existing_config() {
    let mut home = home_without_clock();
    let fresh = home.path.join("fresh");
    home.set("DAEMON_HOME", fresh.to_str().unwrap());
    let binary = home.root().join("genesis/bin/simd");
    let init = |path: &std::path::Path| Cmd::new(&home).args(["init", path.to_str().unwrap()]);
    init(&binary)
        .stderr(
            "INF installed the genesis binary binary={home}/fresh/cosmovisor/genesis/bin/simd module=wasmvisor\n\
             INF pointed `current` at genesis module=wasmvisor\n\
             INF wrote the configuration file file={home}/fresh/cosmovisor/config.toml module=wasmvisor\n",
        )
        .run();
    assert_eq!(
        std::fs::read_link(fresh.join("cosmovisor/current"))
            .unwrap()
            .to_str(),
        Some("genesis")
    );
    assert_eq!(
        std::fs::read(fresh.join("cosmovisor/genesis/bin/simd")).unwrap(),
        std::fs::read(&binary).unwrap()
    );
    assert!(fresh.join("cosmovisor/upgrades").is_dir());
    let config = std::fs::read_to_string(fresh.join("cosmovisor/config.toml")).unwrap();
    assert!(config.contains("daemon_name = \"simd\""), "{config}");
    std::fs::write(fresh.join("cosmovisor/config.toml"), "# mine\n").unwrap();
    // Asked whether to overwrite it without a terminal, init takes no for an answer, even a
    // piped yes.
    init(&binary)
        .stdin("y\n")
        .stderr(
            "INF genesis binary already in place binary={home}/fresh/cosmovisor/genesis/bin/simd module=wasmvisor\n\
             INF `current` already exists; left as it is current=genesis module=wasmvisor\n\
             INF kept the existing configuration file file={home}/fresh/cosmovisor/config.toml module=wasmvisor\n",
        )
        .run();
    assert_eq!(
        std::fs::read_to_string(fresh.join("cosmovisor/config.toml")).unwrap(),
        "# mine\n"
    );
    let other = home.path.join("other");
    std::fs::write(&other, "different").unwrap();
    init(&other)
        .stderr(
            "wasmvisor: {home}/fresh/cosmovisor/genesis/bin/simd already holds a different binary; \
             remove it first if you really mean to replace the genesis binary\n",
        )
        .status(1)
        .run();
}

#[test]
fn version_in_text_and_json() {
    let home = Home::new();
    Cmd::new(&home)
        .arg("version")
        .stdout(
            "wasmvisor version: {version} (Cosmovisor v1.7.1 compatible)\napp version: genesis\n",
        )
        .run();
    Cmd::new(&home)
        .args(["version", "--cosmovisor-only"])
        .stdout("wasmvisor version: {version} (Cosmovisor v1.7.1 compatible)\n")
        .run();
    Cmd::new(&home)
        .args(["version", "--output", "json"])
        .stdout(
            r#"{"app_version":"genesis","cosmovisor_compat":"v1.7.1","wasmvisor_version":"{version}"}"#
                .to_string()
                + "\n",
        )
        .run();
    Cmd::new(&home)
        .args(["version", "--output", "json", "--cosmovisor-only"])
        .stdout(
            r#"{"cosmovisor_compat":"v1.7.1","wasmvisor_version":"{version}"}"#.to_string() + "\n",
        )
        .run();
}

#[test]
fn add_upgrade_stages_inside_the_tree_whatever_the_name() {
    let home = home_without_clock();
    let bin = home.root().join("genesis/bin/simd");
    let bin = bin.to_str().unwrap();
    let add = |args: &[&str]| Cmd::new(&home).arg("add-upgrade").args(args);
    add(&["V2", bin])
        .stderr("INF staged the upgrade binary upgrade=V2 binary={home}/cosmovisor/upgrades/v2/bin/simd module=wasmvisor\n")
        .run();
    assert!(home.root().join("upgrades/v2/bin/simd").is_file());
    let other = home.path.join("other");
    std::fs::write(&other, "#!/bin/sh\n").unwrap();
    let other = other.to_str().unwrap();
    add(&["v2", other])
        .stderr("wasmvisor: {home}/cosmovisor/upgrades/v2/bin/simd already holds a different binary; use --force to replace it\n")
        .status(1)
        .run();
    add(&["v2", other, "--force"])
        .stderr("INF staged the upgrade binary upgrade=v2 binary={home}/cosmovisor/upgrades/v2/bin/simd module=wasmvisor\n")
        .run();
    // A hostile name becomes one escaped folder under upgrades/.
    add(&["../../evil", bin])
        .stderr("INF staged the upgrade binary upgrade=../../evil binary={home}/cosmovisor/upgrades/..%2F..%2Fevil/bin/simd module=wasmvisor\n")
        .run();
    assert!(
        home.root()
            .join("upgrades/..%2F..%2Fevil/bin/simd")
            .is_file()
    );
    // Unescaped, `upgrades/../../evil` would be `$DAEMON_HOME/evil`.
    assert!(!home.path.join("evil").exists());
    assert!(!home.root().join("evil").exists());
    for bad in ["..", "."] {
        add(&[bad, bin])
            .stderr(format!(
                "wasmvisor: upgrade name {bad:?} is not usable as a folder name (empty, \".\" or \"..\"); the plan must be renamed\n"
            ))
            .status(1)
            .run();
    }
}

#[test]
fn scheduling_manual_upgrades_validates_heights() {
    let home = home_without_clock();
    let bin = home.root().join("genesis/bin/simd");
    let bin = bin.to_str().unwrap();
    let staged = |name: &str| {
        format!(
            "INF staged the upgrade binary upgrade={name} binary={{home}}/cosmovisor/upgrades/{name}/bin/simd module=wasmvisor\n"
        )
    };
    let scheduled = |name: &str, height: u64| {
        format!(
            "INF scheduled a manual upgrade: the node will halt at this height upgrade={name} height={height} module=wasmvisor\n"
        )
    };
    Cmd::new(&home)
        .args(["add-upgrade", "v2", bin, "--upgrade-height", "100"])
        .stderr(staged("v2") + &scheduled("v2", 100))
        .run();
    Cmd::new(&home)
        .args(["add-upgrade", "v3", bin, "--upgrade-height", "100"])
        .stderr(
            staged("v3")
                + "wasmvisor: height 100 already has upgrade \"v2\"; one height takes one upgrade\n",
        )
        .status(1)
        .run();
    Cmd::new(&home)
        .args(["add-batch-upgrade", "--upgrade-list"])
        .arg(format!("v4:{bin}:200,v5:/no/such/file:300"))
        .stderr(
            "wasmvisor: /no/such/file: No such file or directory (os error 2); \
             give the path of the node binary; nothing was staged\n",
        )
        .status(1)
        .run();
    assert!(!home.root().join("upgrades/v4").exists());
    let csv = home.path.join("batch.csv");
    std::fs::write(&csv, format!("v4,{bin},200\nv5,{bin},300\n")).unwrap();
    Cmd::new(&home)
        .args(["add-batch-upgrade", "--upgrade-file", csv.to_str().unwrap()])
        .stderr(staged("v4") + &staged("v5") + &scheduled("v4", 200) + &scheduled("v5", 300))
        .run();
    let batch: Value = serde_json::from_slice(
        &std::fs::read(home.data().join("upgrade-info.json.batch")).unwrap(),
    )
    .unwrap();
    let heights: Vec<u64> = batch
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["height"].as_u64().unwrap())
        .collect();
    assert_eq!(heights, [100, 200, 300]);
    let status: Value = serde_json::from_slice(&home.output(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        status["pending"],
        json!({"kind": "manual", "name": "v2", "height": 100})
    );
}

#[test]
fn show_upgrade_info_fixtures() {
    let home = Home::new();
    Cmd::new(&home)
        .arg("show-upgrade-info")
        .stdout("No upgrade info found at {home}/data/upgrade-info.json\n")
        .run();
    // (the file, why it is refused: None for a valid one)
    for (content, refusal) in [
        (
            r#"{"name":"v2","time":"0001-01-01T00:00:00Z","height":10,"info":""}"#,
            None,
        ),
        (r#"{"name":"v2","height":"10"}"#, None),
        (
            "{}",
            Some(r#"not a valid upgrade plan: "name" is missing or empty"#),
        ),
        (
            r#"{"name":"v2"}"#,
            Some(r#"not a valid upgrade plan: "height" is missing"#),
        ),
        (
            r#"{"height":10}"#,
            Some(r#"not a valid upgrade plan: "name" is missing or empty"#),
        ),
        (
            r#"{"name":"v2","height":true}"#,
            Some(r#"not a valid upgrade plan: "height" must be a number, got true"#),
        ),
        (
            r#"{"name":"v2","height":10,"time":"2031-01-01T00:00:00Z"}"#,
            Some(
                r#"not a valid upgrade plan: "time" is "2031-01-01T00:00:00Z": time-based upgrades are not supported, the plan must use a height"#,
            ),
        ),
        ("", Some("empty or incomplete (the node may be writing it)")),
        (
            r#"{"name":"v2","hei"#,
            Some("empty or incomplete (the node may be writing it)"),
        ),
    ] {
        std::fs::write(home.data().join("upgrade-info.json"), content).unwrap();
        // A valid file is printed as it is; an invalid one is printed too, and named on stderr.
        let cmd = Cmd::new(&home)
            .arg("show-upgrade-info")
            .stdout(format!("{content}\n"));
        match refusal {
            None => cmd.run(),
            Some(reason) => cmd
                .stderr(format!(
                    "wasmvisor: {{home}}/data/upgrade-info.json is {reason}\n"
                ))
                .status(1)
                .run(),
        };
    }
}

#[test]
fn status_reads_an_old_absolute_current_link() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    std::fs::remove_file(home.root().join("current")).unwrap();
    std::os::unix::fs::symlink(home.root().join("upgrades/v2"), home.root().join("current"))
        .unwrap();
    let status: Value = serde_json::from_slice(&home.output(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["current"]["upgrade"], "v2");
    assert_eq!(status["staged"], json!(["v2"]));
    std::fs::remove_file(home.root().join("current")).unwrap();
    std::os::unix::fs::symlink("/etc", home.root().join("current")).unwrap();
    Cmd::new(&home)
        .arg("status")
        .stderr(
            "wasmvisor: {home}/cosmovisor/current points to \"/etc\", which is not genesis or a folder \
             under upgrades/; point it back with `ln -sfn genesis {home}/cosmovisor/current` or at the \
             right upgrade\n",
        )
        .status(1)
        .run();
}

/// The commands `help` lists, in its order: Cosmovisor's, then wasmvisor's own, then clap's
/// `help`. A command added or removed changes this list on purpose.
const COMMANDS: [&str; 14] = [
    "init",
    "run",
    "config",
    "version",
    "add-upgrade",
    "add-batch-upgrade",
    "show-upgrade-info",
    "status",
    "prepare-upgrade",
    "backup",
    "plugin",
    "completions",
    "demo",
    "help",
];

#[test]
fn help_lists_every_command() {
    let home = Home::new();
    let mut cli = wasmvisor::cli::command();
    cli.build();
    // `help` and `--help` print what clap renders from the command line's definition, whole.
    let help = cli.render_help().to_string();
    Cmd::new(&home).arg("help").stdout(&help).run();
    Cmd::new(&home).arg("--help").stdout(&help).run();
    // The names in the first column of the "Commands:" section, up to the blank line that ends
    // it: a command named only inside a flag (`--version`) or a description does not count.
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let defined: Vec<&str> = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name())
        .collect();
    assert_eq!(listed, COMMANDS, "the commands of help:\n{help}");
    assert_eq!(defined, COMMANDS, "the commands clap defines");
    // Every command, and every command under one, has its help: `help <path>` and, where the
    // command takes the flag (`run` hands it to the node), `<path> --help`.
    let mut checked = 0;
    let mut todo: Vec<(Vec<String>, &clap::Command)> = vec![(Vec::new(), &cli)];
    while let Some((path, cmd)) = todo.pop() {
        for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
            let mut path = path.clone();
            path.push(sub.get_name().to_string());
            let help = sub.clone().render_help().to_string();
            Cmd::new(&home).arg("help").args(&path).stdout(&help).run();
            if !sub.is_disable_help_flag_set() {
                Cmd::new(&home)
                    .args(&path)
                    .arg("--help")
                    .stdout(&help)
                    .run();
            }
            checked += 1;
            todo.push((path, sub));
        }
    }
    assert!(
        checked >= COMMANDS.len() - 1 + 7,
        "{checked} commands' help checked"
    );
}

#[test]
fn argument_errors_are_clap_s_with_status_2() {
    let home = Home::new();
    Cmd::new(&home)
        .arg("add-upgrade")
        .stderr(
            "error: the following required arguments were not provided:\n  <NAME>\n  <PATH>\n\n\
             Usage: wasmvisor add-upgrade <NAME> <PATH>\n\nFor more information, try '--help'.\n",
        )
        .status(2)
        .run();
    Cmd::new(&home)
        .arg("frobnicate")
        .stderr(
            "error: unrecognized subcommand 'frobnicate'\n\n\
             Usage: wasmvisor [OPTIONS] <COMMAND>\n\nFor more information, try '--help'.\n",
        )
        .status(2)
        .run();
    Cmd::new(&home)
        .args(["status", "--jsno"])
        .stderr(
            "error: unexpected argument '--jsno' found\n\n  tip: a similar argument exists: '--json'\n\n\
             Usage: wasmvisor status --json\n\nFor more information, try '--help'.\n",
        )
        .status(2)
        .run();
}
