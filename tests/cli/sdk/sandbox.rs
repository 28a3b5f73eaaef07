//! What a plugin is given and what it leaves behind: `env` grants, its captured output, imports
//! checked before compiling, a component that does not compile, and the `plugin` commands
//! without a node's home.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Home, WASMVISOR, sha256, wasm};

use super::{entry, miscompiling, stderr, write_plugins};

#[test]
fn env_grants_expose_exactly_the_named_variables() {
    let mut home = Home::new();
    home.set("WASMVISOR_TEST_GRANTED", "yes");
    let plan = home.plan_file("v2");
    write_plugins(
        &home,
        &format!(
            "{}{}",
            entry(
                "granted",
                "wasmvisor-fixture-probe",
                "config = { mode = \"env\", name = \"WASMVISOR_TEST_GRANTED\" }\nenv = [\"WASMVISOR_TEST_GRANTED\"]"
            ),
            entry(
                "ungranted",
                "wasmvisor-fixture-probe",
                "config = { mode = \"env\", name = \"DAEMON_HOME\" }\nenv = [\"WASMVISOR_TEST_GRANTED\"]"
            ),
        ),
    );
    let (_, answer, err) = home.plugin_call("resolver", "granted", &plan);
    // The chain runs up to the plugin asked: `granted` first.
    assert_eq!(
        answer["answers"][0]["reason"], "env WASMVISOR_TEST_GRANTED=yes",
        "{answer} {err}"
    );
    let (_, answer, err) = home.plugin_call("resolver", "ungranted", &plan);
    assert_eq!(
        answer["answers"][1]["reason"], "env DAEMON_HOME unset",
        "{answer} {err}"
    );

    write_plugins(
        &home,
        &entry("bad", "wasmvisor-fixture-probe", "env = [\"NOT-A NAME\"]"),
    );
    let out = home.output(&["plugin", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("env entry \"NOT-A NAME\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn what_a_failing_plugin_printed_is_logged_and_quoted_in_the_error() {
    let home = Home::new();
    let plan = home.plan_file("v2");
    write_plugins(
        &home,
        &entry(
            "loud",
            "wasmvisor-fixture-probe",
            "config = { mode = \"panic\", message = \"the registry answered 418\" }",
        ),
    );
    let (code, _, err) = home.plugin_call("resolver", "loud", &plan);
    assert_eq!(code, Some(1), "{err}");
    let error = err
        .lines()
        .find(|l| l.starts_with("wasmvisor:"))
        .unwrap_or_default();
    assert!(error.contains("plugin loud (resolver)"), "{err}");
    assert!(error.contains("the registry answered 418"), "{err}");
    assert!(error.contains("probe: details on stderr"), "{err}");
    // Each line is also in the log, under the plugin's name and stream.
    assert!(
        err.lines()
            .any(|l| l.contains("probe: about to fail (stdout)") && l.contains("stream=stdout")),
        "{err}"
    );
}

#[test]
fn a_missing_import_is_refused_before_compiling_and_nothing_is_cached() {
    let home = Home::new();
    write_plugins(&home, &entry("needs", "wasmvisor-fixture-needs", ""));
    let out = home.output(&["plugin", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("it imports fixture:needs/secrets") && err.contains("does not provide"),
        "{err}"
    );
    let digest = sha256(&std::fs::read(wasm("wasmvisor-fixture-needs")).unwrap());
    let cache = concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-cache");
    let cached: Vec<String> = std::fs::read_dir(cache)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !cached.iter().any(|n| n.contains(&digest[..32])),
        "{cached:?}"
    );
}

#[test]
fn plugin_commands_work_without_a_home() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugins.toml");
    std::fs::write(
        &file,
        format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n[[resolver]]\nname = \"policy\"\npath = \"{}\"\nconfig = {{ deny = \"v3\" }}\n",
            wasm("wasmvisor-plugin-template").display()
        ),
    )
    .unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, json!({"name": "v3", "height": 9}).to_string()).unwrap();
    let bare = |args: &[&str]| {
        Command::new(WASMVISOR)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let file = file.to_str().unwrap();
    let out = bare(&["plugin", "--plugins", file, "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Two resolvers and the bundled source.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 plugin(s) ready"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Compiled into the user's cache, not into a home.
    assert!(dir.path().join(".cache/wasmvisor").is_dir());

    let out = bare(&[
        "plugin",
        "--plugins",
        file,
        "call",
        "resolver",
        "policy",
        "--plan",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["decided_by"], "policy", "{answer}");

    let out = bare(&["plugin", "--plugins", file, "call", "resolver", "policy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--plan FILE"), "{}", stderr(&out));

    // Without --plugins, the home is still required, and named.
    let out = bare(&["plugin", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("DAEMON_HOME"), "{}", stderr(&out));
}

#[test]
fn a_plugin_that_cannot_compile_stops_the_upgrade_before_the_switch() {
    let mut home = Home::new();
    // A cache of its own: nothing compiled earlier stands in for it.
    let cache = home.path.join("cache");
    home.set("WASMVISOR_PLUGIN_CACHE", cache.to_str().unwrap());
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let broken = miscompiling(&home, "wasmvisor-plugin-cometbft");
    write_plugins(
        &home,
        &format!(
            "[[health]]\nname = \"broken\"\npath = \"{}\"\n",
            broken.display()
        ),
    );
    // `plugin check` compiles now and says so.
    let out = home.output(&["plugin", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("plugin broken (health)"),
        "{}",
        stderr(&out)
    );

    // The supervisor checks it (it reads fine), launches the node, compiles in the background;
    // at the upgrade, the switch waits for the compilation, and does not happen.
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("1 plugin(s) cannot be used")
            && done.stderr.contains("plugin broken (health)"),
        "{}",
        done.stderr
    );
    assert_eq!(home.current(), "genesis", "nothing was switched");
    assert_eq!(home.history()[0].0, "genesis");
}
