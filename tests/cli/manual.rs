//! Manual upgrades (`add-upgrade --upgrade-height`, batches): the old binary executes exactly the
//! blocks before the height and the new binary the rest, against each way a Cosmos SDK release
//! treats `--halt-height` (simulated: `sdk_halt`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn with_rpc(home: &mut Home) -> u16 {
    let port = free_port();
    home.set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{port}"));
    port
}

/// The three behaviours real releases have, with the `WASMVISOR_HALT_HEIGHT` that matches each.
const SDKS: [(&str, &str); 3] = [
    // v0.50.10 and later: stops before executing the halt height, stays up.
    ("before", "before"),
    // v0.50.0 to v0.50.9: executes the halt height, fails at the next block, stays up.
    ("stay-after", "at"),
    // v0.47 and earlier: executes the halt height, then exits 0.
    ("exit-after", "at"),
];

fn args_of(start: &Value) -> Vec<String> {
    start["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn add_upgrade(home: &Home, name: &str, binary: &std::path::Path, height: u64) {
    let out = home.output(&[
        "add-upgrade",
        name,
        binary.to_str().unwrap(),
        "--force",
        "--upgrade-height",
        &height.to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn manual_upgrade_switches_at_exactly_the_height_for_every_sdk_halt_behaviour() {
    for (sdk, mode) in SDKS {
        let mut home = Home::new();
        let port = with_rpc(&mut home);
        home.set("WASMVISOR_HALT_HEIGHT", mode);
        home.install(
            "genesis",
            json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100, "sdk_halt": sdk}),
        );
        // The manual upgrade's binary refuses to start before its height: an early switch fails.
        home.install(
            "../staged/v2",
            json!({"version": "v2", "ordinal": 2, "min_start_height": 6, "rpc_port": port, "block_ms": 100}),
        );
        let staged = home.path.join("staged/v2/bin/simd");
        add_upgrade(&home, "v2", &staged, 6);
        std::fs::copy(
            home.path.join("staged/v2/bin/sim.json"),
            home.root().join("upgrades/v2/bin/sim.json"),
        )
        .unwrap();
        let run = home.run(&[]);
        home.wait_height("v2", 8);
        let out = run.stop();
        let history = home.history();
        assert_eq!(
            history[0],
            ("genesis".into(), 1, 5),
            "{sdk}: genesis executes blocks 1 to 5: {history:?}\n{}",
            out.stderr
        );
        assert_eq!(history[1].0, "v2", "{sdk}: {history:?}");
        assert_eq!(history[1].1, 6, "{sdk}: v2 executes block 6: {history:?}");
        let genesis_starts: Vec<Value> = home
            .events_of("start")
            .into_iter()
            .filter(|e| e["version"] == "genesis")
            .collect();
        assert_eq!(genesis_starts.len(), 1, "{sdk}: one run of genesis");
        let args = args_of(&genesis_starts[0]);
        let flag = if mode == "before" { "6" } else { "5" };
        assert_eq!(
            args[args.len() - 2..],
            ["--halt-height".to_string(), flag.to_string()],
            "{sdk}"
        );
        assert!(
            !home.data().join("upgrade-info.json.batch").exists(),
            "{sdk}: the applied plan leaves the batch"
        );
    }
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
fn a_halted_node_whose_rpc_lags_is_upgraded_once_the_rpc_shows_the_last_block() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    // The RPC reports the heights of 700 ms ago: the node halts (and stays up) well before
    // wasmvisor can see its last block, and nothing may happen until it does.
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100, "rpc_lag_ms": 700, "rpc_lag_runs": 1}),
    );
    home.install("upgrades/v2", json!({"version": "v2", "ordinal": 2, "min_start_height": 6, "rpc_port": port, "block_ms": 100}));
    add_upgrade(&home, "v2", &home.root().join("upgrades/v2/bin/simd"), 6);
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
    assert_eq!(genesis_starts, 1, "{}", out.stderr);
    // The halt came before the upgrade: wasmvisor waited for the RPC to show it.
    let halted = home.events_of("halt-height")[0]["mono_ns"]
        .as_u64()
        .unwrap();
    let stopped = home
        .events_of("signal")
        .iter()
        .find(|e| e["version"] == "genesis")
        .expect("genesis was stopped")["mono_ns"]
        .as_u64()
        .unwrap();
    assert!(
        stopped > halted + 500_000_000,
        "stopped {} ms after the halt, before the lagging RPC could show it",
        (stopped.saturating_sub(halted)) / 1_000_000
    );
}

#[test]
fn a_node_that_exits_before_its_last_block_was_seen_is_not_upgraded() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    home.set("WASMVISOR_HALT_HEIGHT", "at");
    // SDK v0.47 exits at its halt height; this node's RPC lags and goes away at once, so
    // wasmvisor never sees the last block. Upgrading anyway would guess; relaunching would let
    // the old binary execute one block more.
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100, "sdk_halt": "exit-after", "shutdown_ms": 0, "rpc_lag_ms": 2000, "rpc_lag_runs": 100}),
    );
    home.install(
        "upgrades/v2",
        json!({"version": "v2", "ordinal": 2, "rpc_port": port}),
    );
    add_upgrade(&home, "v2", &home.root().join("upgrades/v2/bin/simd"), 4);
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert_eq!(home.current(), "genesis", "never upgraded on a guess");
    assert_eq!(home.events_of("start").len(), 1, "not relaunched");
    assert_eq!(home.history(), vec![("genesis".into(), 1, 3)]);
    assert!(
        done.stderr
            .contains("while a manual upgrade to \"v2\" was pending")
            && done.stderr.contains("height 3"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_stale_answer_of_the_last_block_from_the_nodes_own_rpc_does_not_stop_it_early() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    // At height 11 the node's own RPC answers "59" for 1.2 s (longer than a poll period, so
    // a supervisor that believes one reading sees it), then the truth again.
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100,
               "lie_from_height": 11, "lie_height": "59", "lie_ms": 1200}),
    );
    home.install(
        "upgrades/v2",
        json!({"version": "v2", "ordinal": 2, "min_start_height": 60, "rpc_port": port, "block_ms": 100}),
    );
    add_upgrade(&home, "v2", &home.root().join("upgrades/v2/bin/simd"), 60);
    let run = home.run(&[]);
    home.wait_for("v2 at height 61", Duration::from_secs(60), |h| {
        h.history().iter().any(|(v, _, to)| v == "v2" && *to >= 61)
    });
    let out = run.stop();
    assert_eq!(home.events_of("rpc-lie").len(), 1, "the RPC lied");
    assert_eq!(
        home.history()[..2],
        [
            ("genesis".into(), 1, 59),
            ("v2".into(), 60, home.history()[1].2)
        ],
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("not stopping the node for the manual upgrade on this answer"),
        "the doubt is said: {}",
        out.stderr
    );
}

/// Another node's RPC on `port`: `/abci_info` says `height`, `/status` names another node.
fn another_node(port: u16, height: u64) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            use std::io::{BufRead, Write};
            let mut line = String::new();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let body = if line.contains("/abci_info") {
                json!({"result": {"response": {"last_block_height": height.to_string()}}})
            } else {
                json!({"result": {"node_info": {"id": "0123456789abcdef0123456789abcdef01234567", "network": "other-1"},
                                   "sync_info": {"latest_block_height": (height + 1).to_string()}}})
            }
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

#[test]
fn another_node_answering_on_the_rpc_address_never_stops_the_supervised_one() {
    let mut home = Home::new();
    // The configured address is another node's (the default 127.0.0.1:26657 is everyone's); the
    // supervised node serves its RPC elsewhere. That other node is at the plan's last block.
    let other = with_rpc(&mut home);
    another_node(other, 19);
    let own = free_port();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": own, "block_ms": 100}),
    );
    home.install(
        "upgrades/v2",
        json!({"version": "v2", "ordinal": 2, "min_start_height": 20, "rpc_port": own}),
    );
    add_upgrade(&home, "v2", &home.root().join("upgrades/v2/bin/simd"), 20);
    let run = home.run(&[]);
    // The supervised node reaches its own halt (19, and stays up) without being stopped.
    home.wait_height("genesis", 19);
    home.wait_for("the doubt in the log", Duration::from_secs(30), |h| {
        h.last_log()
            .contains("its port is not the supervised node's")
    });
    let out = run.stop();
    assert_eq!(home.current(), "genesis", "{}", out.stderr);
    assert_eq!(
        home.history(),
        vec![("genesis".into(), 1, 19)],
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("WASMVISOR_RPC_ADDRESS"),
        "{}",
        out.stderr
    );
    let seen = &home.journal()["seen"];
    assert!(
        seen.is_null() || seen["app_height"].as_u64() < Some(19),
        "another node's height was journaled: {seen}"
    );
}

#[test]
fn a_crash_while_a_manual_upgrade_is_pending_is_relaunched_with_the_halt() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    home.set("WASMVISOR_RESTART_ON_CRASH", "true");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100,
               "exit_after_height": 3, "exit_code": 2}),
    );
    home.install(
        "upgrades/v2",
        json!({"version": "v2", "ordinal": 2, "min_start_height": 8, "rpc_port": port, "block_ms": 100}),
    );
    add_upgrade(&home, "v2", &home.root().join("upgrades/v2/bin/simd"), 8);
    let run = home.run(&[]);
    home.wait_height("v2", 9);
    let out = run.stop();
    let starts: Vec<Value> = home
        .events_of("start")
        .into_iter()
        .filter(|e| e["version"] == "genesis")
        .collect();
    assert_eq!(starts.len(), 2, "relaunched once: {}", out.stderr);
    for start in &starts {
        assert!(
            start["args"]
                .to_string()
                .contains("\"--halt-height\",\"8\""),
            "{start}"
        );
    }
    assert_eq!(
        home.history()[0],
        ("genesis".into(), 1, 7),
        "{}",
        out.stderr
    );
}

#[test]
fn a_node_that_halts_at_its_height_with_a_failure_status_is_not_relaunched_past_it() {
    let mut home = Home::new();
    let port = with_rpc(&mut home);
    home.set("WASMVISOR_HALT_HEIGHT", "at")
        .set("WASMVISOR_RESTART_ON_CRASH", "true");
    // SDK v0.46 and earlier halt by SIGINT and exit 130, which looks like a crash; this node's
    // RPC lags and goes away at once, so its last block is never seen. Relaunched with the same
    // --halt-height, such a release would execute the upgrade's height with the old binary.
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port, "block_ms": 100, "sdk_halt": "exit-after",
               "halt_height_exit_code": 130, "shutdown_ms": 0, "rpc_lag_ms": 2000, "rpc_lag_runs": 100}),
    );
    home.install(
        "upgrades/v2",
        json!({"version": "v2", "ordinal": 2, "rpc_port": port}),
    );
    add_upgrade(&home, "v2", &home.root().join("upgrades/v2/bin/simd"), 4);
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 130, "{}", done.stderr);
    assert_eq!(
        home.events_of("start").len(),
        1,
        "not relaunched: {}",
        done.stderr
    );
    assert_eq!(home.history(), vec![("genesis".into(), 1, 3)]);
    assert_eq!(home.current(), "genesis");
}
