//! `kill -9` of wasmvisor at every point of an upgrade, then a restart: the node ends on the right
//! binary, with its data intact and every block run by exactly one version.
//!
//! The default path is the one killed: no custom pre-upgrade script (so the resolvers run while
//! the node stops), the binary downloaded and verified, a backup, a restart delay and a health
//! check. A second variant adds a custom pre-upgrade script, which moves resolving after it.

use std::time::Duration;

use serde_json::json;

use crate::harness::serve::Server;
use crate::harness::*;

/// Every point of the default path where the test hook can kill wasmvisor: each phase as it is
/// journaled and once its work is done, the commit, the launch of the upgraded node and the
/// start of its health check.
const DEFAULT_PATH: &[&str] = &[
    "detect",
    "detect:end",
    "stop",
    "stop:end",
    "delay",
    "delay:end",
    "backup",
    "backup:end",
    "resolve",
    "resolve:end",
    "fetch",
    "fetch:end",
    "swap",
    "swap:end",
    "app-preupgrade",
    "app-preupgrade:end",
    "commit",
    "launch",
    "health",
];

const WITH_SCRIPT: &[&str] = &[
    "custom-preupgrade",
    "custom-preupgrade:end",
    "resolve",
    "fetch",
];

/// A home upgrading genesis → v2 at height 3 the default way: download, backup, health.
fn default_path(server: &Server) -> (Home, Vec<u8>) {
    // The archive holds the simulator's wrapper as built into `pkg/v2` of the home.
    let mut home = Home::new();
    let port = free_port();
    home.set("UNSAFE_SKIP_BACKUP", "false")
        .set("DAEMON_RESTART_DELAY", "50ms")
        .set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true")
        .set("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM", "true")
        .set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{port}"))
        // The binary is fetched at the halt, where these crash points are: not ahead of it.
        .set("WASMVISOR_PLAN_POLL", "off");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port}),
    );
    plant_databases(&home);
    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2", "rpc_port": port}),
    );
    server.put("/simd-v2.tar.gz", archive.clone());
    let url = format!(
        "{}?checksum=sha256:{}",
        server.url("/simd-v2.tar.gz"),
        sha256(&archive)
    );
    plan_with_binary(&home, "v2", 3, &url);
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[health]]\nname = \"cometbft\"\npath = \"{}\"\nconfig = {{ rpc = \"http://127.0.0.1:{port}\", blocks = \"2\" }}\nallow-hosts = [\"127.0.0.1:{port}\"]\ninterval = \"100ms\"\ndeadline = \"30s\"\n",
            wasm("wasmvisor-plugin-cometbft").display()
        ),
    )
    .unwrap();
    (home, archive)
}

fn entries(home: &Home, pred: impl Fn(&str) -> bool) -> usize {
    std::fs::read_dir(&home.path)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| pred(&e.file_name().to_string_lossy()))
        .count()
}

/// Kills wasmvisor at `point`, restarts it, and checks that it converged: the new binary runs
/// on the data as it was, which the one backup holds.
fn kill_and_converge(mut home: Home, point: &str) {
    let before = tree(&home.data(), &[]);
    home.set("WASMVISOR_TEST_KILL_AT", point);
    let out = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        None,
        "{point}: wasmvisor should have been killed: {}",
        out.stderr
    );
    home.unset("WASMVISOR_TEST_KILL_AT");
    assert!(
        matches!(home.current().as_str(), "genesis" | "upgrades/v2"),
        "{point}: `current` is a valid link at the kill"
    );
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
    assert_eq!(history[1].0, "v2", "{point}: {history:?}");
    assert_eq!(history[1].1, 3, "{point}: {history:?}");
    assert_eq!(history.len(), 2, "{point}: one switch: {history:?}");
    assert!(!home.events_of("pre-upgrade").is_empty(), "{point}");
    assert_eq!(
        std::fs::read(home.root().join("upgrades/v2/bin/simd")).unwrap(),
        std::fs::read(home.path.join("pkg/v2/bin/simd")).unwrap(),
        "{point}: the installed binary is the verified download"
    );
    assert!(
        home.journal()["active"].is_null(),
        "{point}: the upgrade is committed"
    );
    // The databases went through the kill and the restart untouched, and into the backup.
    let after = tree(&home.data(), &[]);
    let backup = std::fs::read_dir(&home.path)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("wasmvisor-backup.json").exists())
        .expect("a complete backup");
    let backed_up = tree(&backup, &[]);
    for (path, sum) in &before {
        assert_eq!(after.get(path), Some(sum), "{point}: data/{path}");
        assert_eq!(backed_up.get(path), Some(sum), "{point}: backup {path}");
    }
    assert_eq!(
        (
            entries(&home, |n| n.starts_with("data-backup-")
                && !n.ends_with(".partial")),
            entries(&home, |n| n.ends_with(".partial"))
        ),
        (1, 0),
        "{point}: one complete backup, no partial one"
    );
    assert!(
        !home.root().join(".wasmvisor-downloads/v2").exists()
            || std::fs::read_dir(home.root().join(".wasmvisor-downloads/v2"))
                .unwrap()
                .count()
                == 0,
        "{point}: no download left behind"
    );
}

fn default_points(points: &[&str]) {
    let server = Server::start();
    for point in points {
        let (home, _) = default_path(&server);
        kill_and_converge(home, point);
    }
}

#[test]
fn killed_while_detecting_stopping_or_waiting_a_restart_converges() {
    default_points(&DEFAULT_PATH[..6]);
}

#[test]
fn killed_while_backing_up_resolving_or_fetching_a_restart_converges() {
    default_points(&DEFAULT_PATH[6..12]);
}

#[test]
fn killed_while_switching_preparing_committing_or_launching_a_restart_converges() {
    default_points(&DEFAULT_PATH[12..]);
}

#[test]
fn killed_around_a_custom_preupgrade_script_a_restart_converges() {
    let server = Server::start();
    for point in WITH_SCRIPT {
        let (mut home, _) = default_path(&server);
        home.set("COSMOVISOR_CUSTOM_PREUPGRADE", "prepare.sh");
        write_script(&home.root().join("prepare.sh"), "#!/bin/sh\nexit 0\n");
        kill_and_converge(home, point);
    }
}
