//! Manual upgrades (`add-upgrade --upgrade-height`, batches): the node halts exactly at the height.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

fn with_rpc(home: &mut Home) -> u16 {
    let port = free_port();
    home.set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{port}"));
    port
}

#[test]
fn manual_upgrade_stops_exactly_at_the_height_then_upgrades() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100}),
    );
    // The manual upgrade's binary refuses to start before its height: an early switch would fail.
    let staged = home.path.join("v2-staged");
    std::fs::create_dir_all(&staged).unwrap();
    home.install("upgrades/v2", json!({"version": "v2", "ordinal": 2, "min_start_height": 6, "rpc_port": port, "block_ms": 100}));
    std::fs::rename(
        home.root().join("upgrades/v2/bin/simd"),
        staged.join("simd"),
    )
    .unwrap();
    let out = home.output(&[
        "add-upgrade",
        "v2",
        staged.join("simd").to_str().unwrap(),
        "--force",
        "--upgrade-height",
        "6",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = home.run(&[]);
    home.wait_height("v2", 8);
    let out = run.stop();
    assert_eq!(
        home.history()[..2],
        [
            ("genesis".into(), 1, 5),
            ("v2".into(), 6, home.history()[1].2)
        ],
        "{}",
        out.stderr
    );
    let first = &home.events_of("start")[0];
    let args: Vec<&str> = first["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[args.len() - 2..], ["--halt-height", "6"]);
    assert!(
        !home.data().join("upgrade-info.json.batch").exists(),
        "the applied plan leaves the batch"
    );
}

#[test]
fn a_batch_of_two_manual_upgrades_halts_at_each_height() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100}),
    );
    let bins = home.path.join("bins");
    for (name, ordinal, h) in [("v2", 2, 4), ("v3", 3, 7)] {
        home.install(&format!("../bins/{name}"), json!({"version": name, "ordinal": ordinal, "min_start_height": h, "rpc_port": port, "block_ms": 100}));
    }
    let list = format!(
        "v2:{}:4,v3:{}:7",
        bins.join("v2/bin/simd").display(),
        bins.join("v3/bin/simd").display()
    );
    let out = home.output(&["add-batch-upgrade", "--upgrade-list", &list]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The staged wrappers find their sim.json beside them.
    for name in ["v2", "v3"] {
        std::fs::copy(
            bins.join(name).join("bin/sim.json"),
            home.root().join(format!("upgrades/{name}/bin/sim.json")),
        )
        .unwrap();
    }
    let run = home.run(&[]);
    home.wait_height("v3", 8);
    run.stop();
    assert_eq!(
        home.history()[..2],
        [("genesis".into(), 1, 3), ("v2".into(), 4, 6)]
    );
    assert_eq!(home.history()[2].1, 7);
}

#[test]
fn scheduling_while_running_restarts_the_node_once_with_the_halt() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100}),
    );
    home.install("upgrades/v2", json!({"version": "v2", "ordinal": 2, "min_start_height": 8, "rpc_port": port, "block_ms": 100}));
    let run = home.run(&[]);
    home.wait_height("genesis", 2);
    let staged = home.root().join("upgrades/v2/bin/simd");
    let out = home.output(&[
        "add-upgrade",
        "v2",
        staged.to_str().unwrap(),
        "--upgrade-height",
        "8",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    home.wait_height("v2", 9);
    run.stop();
    assert_eq!(home.history()[0], ("genesis".into(), 1, 7));
    let genesis_starts: Vec<_> = home
        .events_of("start")
        .into_iter()
        .filter(|e| e["version"] == "genesis")
        .collect();
    assert_eq!(genesis_starts.len(), 2, "one restart to pass --halt-height");
    assert!(
        genesis_starts[1]["args"]
            .to_string()
            .contains("\"--halt-height\",\"8\"")
    );
}

#[test]
fn a_halt_whose_last_block_was_not_seen_is_confirmed_by_a_relaunch() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    // The first run's RPC lags three blocks, so the node halts at 6 while wasmvisor last saw 2:
    // it relaunches genesis with the same halt and sees height 5.
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100, "rpc_lag": 3, "rpc_lag_runs": 1}),
    );
    home.install("upgrades/v2", json!({"version": "v2", "ordinal": 2, "min_start_height": 6, "rpc_port": port, "block_ms": 100}));
    let staged = home.root().join("upgrades/v2/bin/simd");
    let out = home.output(&[
        "add-upgrade",
        "v2",
        staged.to_str().unwrap(),
        "--upgrade-height",
        "6",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = home.run(&[]);
    home.wait_height("v2", 7);
    let out = run.stop();
    assert_eq!(
        home.history()[0],
        ("genesis".into(), 1, 5),
        "{}",
        out.stderr
    );
    assert_eq!(home.history()[1].1, 6);
    let genesis_starts = home
        .events_of("start")
        .into_iter()
        .filter(|e| e["version"] == "genesis")
        .count();
    assert_eq!(genesis_starts, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("relaunching it with the same halt height"),
        "{}",
        out.stderr
    );
}

#[test]
fn confirming_relaunches_are_bounded_and_the_exit_status_passes_on() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 50, "rpc_lag": 3, "rpc_lag_runs": 100}),
    );
    home.install(
        "upgrades/v2",
        json!({"version": "v2", "ordinal": 2, "rpc_port": port}),
    );
    let staged = home.root().join("upgrades/v2/bin/simd");
    let out = home.output(&[
        "add-upgrade",
        "v2",
        staged.to_str().unwrap(),
        "--upgrade-height",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = home.run(&[]).finish(Duration::from_secs(20));
    assert_eq!(done.code(), 0, "{}", done.stderr);
    assert_eq!(
        home.current(),
        "genesis",
        "never upgraded without seeing the height"
    );
    assert_eq!(
        home.events_of("start").len(),
        4,
        "one run and three confirmations"
    );
    assert!(done.stderr.contains("not upgrading"), "{}", done.stderr);
}
