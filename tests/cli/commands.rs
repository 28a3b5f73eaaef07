//! init, version, add-upgrade, add-batch-upgrade, show-upgrade-info, status, help.

use serde_json::{Value, json};

use crate::harness::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into()
}

#[test]
fn init_creates_the_tree_and_keeps_an_existing_config() {
    let mut home = Home::new();
    let fresh = home.path.join("fresh");
    home.set("DAEMON_HOME", fresh.to_str().unwrap());
    let binary = home.root().join("genesis/bin/simd");
    let out = home.output(&["init", binary.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
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
    assert!(
        home.output(&["init", binary.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(fresh.join("cosmovisor/config.toml")).unwrap(),
        "# mine\n"
    );
    let other = home.path.join("other");
    std::fs::write(&other, "different").unwrap();
    let out = home.output(&["init", other.to_str().unwrap()]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("different binary"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_in_text_and_json() {
    let home = Home::new();
    let out = home.output(&["version"]);
    assert!(
        text(&out.stdout).contains("wasmvisor version:")
            && text(&out.stdout).contains("app version: genesis"),
        "{}",
        text(&out.stdout)
    );
    let v: Value =
        serde_json::from_slice(&home.output(&["version", "--output", "json"]).stdout).unwrap();
    assert_eq!(v["app_version"], "genesis");
    let v: Value = serde_json::from_slice(
        &home
            .output(&["version", "--output", "json", "--cosmovisor-only"])
            .stdout,
    )
    .unwrap();
    assert!(v["app_version"].is_null() && v["wasmvisor_version"].is_string());
}

#[test]
fn add_upgrade_stages_inside_the_tree_whatever_the_name() {
    let home = Home::new();
    let bin = home.root().join("genesis/bin/simd");
    let bin = bin.to_str().unwrap();
    assert!(home.output(&["add-upgrade", "V2", bin]).status.success());
    assert!(home.root().join("upgrades/v2/bin/simd").is_file());
    let other = home.path.join("other");
    std::fs::write(&other, "#!/bin/sh\n").unwrap();
    let out = home.output(&["add-upgrade", "v2", other.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out.stderr).contains("--force"));
    assert!(
        home.output(&["add-upgrade", "v2", other.to_str().unwrap(), "--force"])
            .status
            .success()
    );
    // A hostile name becomes one escaped folder under upgrades/.
    assert!(
        home.output(&["add-upgrade", "../../evil", bin])
            .status
            .success()
    );
    assert!(
        home.root()
            .join("upgrades/..%2F..%2Fevil/bin/simd")
            .is_file()
    );
    // Unescaped, `upgrades/../../evil` would be `$DAEMON_HOME/evil`.
    assert!(!home.path.join("evil").exists());
    assert!(!home.root().join("evil").exists());
    for bad in ["..", "."] {
        let out = home.output(&["add-upgrade", bad, bin]);
        assert!(
            !out.status.success() && text(&out.stderr).contains("not usable"),
            "{bad}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn scheduling_manual_upgrades_validates_heights() {
    let home = Home::new();
    let bin = home.root().join("genesis/bin/simd");
    let bin = bin.to_str().unwrap();
    assert!(
        home.output(&["add-upgrade", "v2", bin, "--upgrade-height", "100"])
            .status
            .success()
    );
    let out = home.output(&["add-upgrade", "v3", bin, "--upgrade-height", "100"]);
    assert!(!out.status.success() && text(&out.stderr).contains("one height takes one upgrade"));
    let out = home.output(&[
        "add-batch-upgrade",
        "--upgrade-list",
        &format!("v4:{bin}:200,v5:/no/such/file:300"),
    ]);
    assert!(!out.status.success() && text(&out.stderr).contains("nothing was staged"));
    assert!(!home.root().join("upgrades/v4").exists());
    let csv = home.path.join("batch.csv");
    std::fs::write(&csv, format!("v4,{bin},200\nv5,{bin},300\n")).unwrap();
    assert!(
        home.output(&["add-batch-upgrade", "--upgrade-file", csv.to_str().unwrap()])
            .status
            .success()
    );
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
    let out = home.output(&["show-upgrade-info"]);
    assert!(out.status.success() && text(&out.stdout).contains("No upgrade info"));
    for (content, ok, needle) in [
        (
            r#"{"name":"v2","time":"0001-01-01T00:00:00Z","height":10,"info":""}"#,
            true,
            "\"height\":10",
        ),
        (r#"{"name":"v2","height":"10"}"#, true, "\"height\":\"10\""),
        ("{}", false, "name"),
        (r#"{"name":"v2"}"#, false, "height"),
        (r#"{"height":10}"#, false, "name"),
        (r#"{"name":"v2","height":true}"#, false, "height"),
        (
            r#"{"name":"v2","height":10,"time":"2031-01-01T00:00:00Z"}"#,
            false,
            "time",
        ),
        ("", false, "incomplete"),
        (r#"{"name":"v2","hei"#, false, "incomplete"),
    ] {
        std::fs::write(home.data().join("upgrade-info.json"), content).unwrap();
        let out = home.output(&["show-upgrade-info"]);
        assert_eq!(out.status.success(), ok, "{content}: {}", text(&out.stderr));
        // A valid file is printed as it is; an invalid one is printed and named on stderr.
        assert_eq!(
            text(&out.stdout).trim_end(),
            content.trim_end(),
            "{content}"
        );
        let report = if ok {
            text(&out.stdout)
        } else {
            text(&out.stderr)
        };
        assert!(report.contains(needle), "{content}: {report}");
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
    let out = home.output(&["status"]);
    assert!(
        !out.status.success()
            && text(&out.stderr).contains("not genesis or a folder under upgrades"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_lists_every_command() {
    let out = Home::new().output(&["help"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let help = text(&out.stdout);
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
    let commands: Vec<String> = wasmvisor::cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(commands.len() >= 9, "{commands:?}");
    for cmd in &commands {
        assert!(
            listed.contains(&cmd.as_str()),
            "{cmd} missing from the commands of help (listed: {listed:?}):\n{help}"
        );
    }
}
