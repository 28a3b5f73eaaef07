use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(60);

/// A home upgrading to v2 at height 3, v2 serving its RPC on a port of its own (`v2` merged
/// into its config), the bundled signing check configured with `extra` lines.
fn signing_home(v2: Value, extra: &str) -> (Home, u16) {
    let home = Home::new();
    let port = free_port();
    let mut config = v2;
    config["rpc_port"] = json!(port);
    home.upgrade("v2", 2, config);
    home.chain(&[("v2", 3)]);
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            r#"[[health]]
name = "signing"
path = "bundled:signing"
config = {{ rpc = "http://127.0.0.1:{port}", window = "8" }}
allow-hosts = ["127.0.0.1:{port}"]
interval = "50ms"
deadline = "45s"
{extra}
"#
        ),
    )
    .unwrap();
    (home, port)
}

fn verdict(home: &Home) -> Value {
    home.journal()["last"]["health"].clone()
}

fn wait_verdict(home: &Home) -> Value {
    home.wait_for("the health verdict", T, |h| verdict(h).is_object());
    verdict(home)
}

#[test]
fn a_validator_that_signs_again_is_healthy() {
    let (home, _) = signing_home(json!({}), "");
    let run = home.run(&[]);
    let v = wait_verdict(&home);
    let out = run.stop();
    assert_eq!(v["healthy"], true, "{v}\n{}", out.stderr);
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("signs again"), "{detail}");
    // The commits looked at are the upgrade height's and later ones.
    assert!(detail.contains("upgrade at 3"), "{detail}");
    assert!(
        out.stderr.contains("upgraded node is healthy"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_validator_that_never_signs_is_unhealthy_after_the_window_and_warned_of_by_default() {
    // Even with rollbacks configured for failed upgrades: a rollback does not bring a remote
    // signer back.
    let (mut home, port) = signing_home(json!({"signs": false}), "");
    home.set("WASMVISOR_ON_FAILED_UPGRADE", "rollback")
        .set("UNSAFE_SKIP_BACKUP", "false");
    // And a height check beside it that would roll back (it follows the variable): the check
    // that said unhealthy decides what follows, not the strongest of those configured.
    let toml = std::fs::read_to_string(home.root().join("plugins.toml")).unwrap();
    let cometbft = format!(
        "\n[[health]]\nname = \"cometbft\"\npath = \"{}\"\nconfig = {{ rpc = \"http://127.0.0.1:{port}\" }}\nallow-hosts = [\"127.0.0.1:{port}\"]\n",
        wasm("wasmvisor-plugin-cometbft").display()
    );
    std::fs::write(home.root().join("plugins.toml"), toml + &cometbft).unwrap();
    let run = home.run(&[]);
    let v = wait_verdict(&home);
    // Still supervising v2 after the verdict: it keeps committing.
    let at = home.height();
    home.wait_height("v2", at + 2);
    let out = run.stop();
    assert_eq!(v["healthy"], false, "{v}");
    assert_eq!(v["by"], "signing", "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("signed none of the 8 commits"), "{detail}");
    assert!(out.stderr.contains("on-unhealthy = warn"), "{}", out.stderr);
    assert_eq!(home.current(), "upgrades/v2");
    assert!(
        home.journal()["failed"]
            .as_array()
            .is_none_or(|f| f.is_empty())
    );
}

#[test]
fn configured_to_roll_back_a_validator_that_never_signs_is_rolled_back() {
    let (mut home, _) = signing_home(json!({"signs": false}), "on-unhealthy = \"rollback\"");
    home.set("WASMVISOR_ON_FAILED_UPGRADE", "rollback")
        .set("UNSAFE_SKIP_BACKUP", "false");
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "{}", done.stderr);
    assert!(
        done.stderr.contains("on-unhealthy = rollback"),
        "{}",
        done.stderr
    );
    assert_eq!(home.current(), "genesis");
    let reason = home.journal()["failed"][0]["reason"].to_string();
    assert!(reason.contains("signed none"), "{reason}");
}

#[test]
fn a_chain_stalled_after_the_upgrade_is_pending_never_unhealthy() {
    // v2 commits nothing for 3 s (two thirds of the power not back), 60 blocks' worth of time:
    // judged by the clock, the window of 8 would have passed many times over.
    let (home, _) = signing_home(json!({"stall_ms": 3000}), "");
    let run = home.run(&[]);
    let v = wait_verdict(&home);
    let out = run.stop();
    assert_eq!(v["healthy"], true, "{v}\n{}", out.stderr);
    assert!(v["after_ms"].as_f64().unwrap() >= 3000.0, "{v}");
    assert!(
        v["checks"].as_u64().unwrap() > 10,
        "asked through the stall: {v}"
    );
    assert_eq!(home.events_of("stall").len(), 1);
}

#[test]
fn a_node_outside_the_active_set_is_healthy_unless_required_active() {
    let (home, _) = signing_home(json!({"voting_power": 0}), "");
    let run = home.run(&[]);
    let v = wait_verdict(&home);
    run.stop();
    assert_eq!(v["healthy"], true, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("not in the active set"),
        "{v}"
    );

    let (home, _) = signing_home(json!({"voting_power": 0}), "");
    let toml = std::fs::read_to_string(home.root().join("plugins.toml")).unwrap();
    let toml = toml.replace(
        "window = \"8\"",
        "window = \"8\", require-active = \"true\"",
    );
    std::fs::write(home.root().join("plugins.toml"), toml).unwrap();
    let run = home.run(&[]);
    let v = wait_verdict(&home);
    run.stop();
    assert_eq!(v["healthy"], false, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("signed none"), "{v}");
}
