//! Set-up (e): (a) with the governance plan known ahead. The simulated node serves its RPC and
//! gRPC, and wasmvisor asks it for x/upgrade's current plan every 100 ms. Nothing is staged:
//! each plan's info carries a binaries map whose archive a loopback server holds, and downloads
//! are allowed. Upgrade by upgrade, this program announces the next plan (adds it to
//! `data/sim-chain.json`, which the node reads at every block) at least a second of blocks
//! ahead of its height, waits for wasmvisor's record (`cosmovisor/wasmvisor-upcoming.json`) to
//! say the plan is ready — resolved, downloaded, staged and preflighted — then lets the chain
//! reach the height. The halt then only stops, swaps and launches: no fetch, no preflight.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::serve::Server;
use crate::harness::{Home, free_port, platform, sha256, sim_archive};
use crate::runs::{Ahead, Run, block_ms_of, collect, spawn_wasmvisor, still_running, stop};

/// Each plan is announced at least this long (in blocks of the running version) before its
/// height.
const LEAD: Duration = Duration::from_secs(1);
/// How often wasmvisor asks the chain.
const PLAN_POLL: &str = "100ms";

/// `extra` with `base`'s keys added.
fn with(base: &Value, mut extra: Value) -> Value {
    for (k, v) in base.as_object().unwrap() {
        extra[k] = v.clone();
    }
    extra
}

/// CLOCK_MONOTONIC in nanoseconds, the clock the simulator stamps its events with.
fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// Whether wasmvisor's record says `name` is ready.
fn ready(home: &Home, name: &str) -> bool {
    let Ok(bytes) = std::fs::read(home.root().join("wasmvisor-upcoming.json")) else {
        return false;
    };
    let Ok(record) = serde_json::from_slice::<Value>(&bytes) else {
        return false;
    };
    record["upcoming"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["name"] == name && e["ready"] == true)
}

/// Whether the node has halted for `name` (it wrote upgrade-info.json for it).
fn halted_for(home: &Home, name: &str) -> bool {
    std::fs::read(home.data().join("upgrade-info.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| v["name"] == name)
}

/// Writes the plans governance passed, whole (a rename: the node reads the old list or the
/// new one).
fn announce(home: &Home, plans: &[Value]) {
    let tmp = home.data().join(".sim-chain.json.tmp");
    std::fs::write(&tmp, json!({ "plans": plans }).to_string()).unwrap();
    std::fs::rename(&tmp, home.data().join("sim-chain.json")).unwrap();
}

pub(crate) fn run_ahead(n: usize) -> Run {
    let server = Server::start();
    let (rpc, grpc) = (free_port(), free_port());
    let home = Home::new();
    let base = json!({"rpc_port": rpc, "grpc_port": grpc, "halt": "stay"});
    home.install(
        "genesis",
        with(
            &base,
            json!({"version": "genesis", "ordinal": 1, "block_ms": block_ms_of(0)}),
        ),
    );
    let log = home.path.join("wasmvisor.log");
    let env = [
        ("WASMVISOR_WATCH_MODE", "inotify".to_string()),
        ("DAEMON_GRPC_ADDRESS", format!("127.0.0.1:{grpc}")),
        ("WASMVISOR_PLAN_POLL", PLAN_POLL.into()),
        ("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true".into()),
    ];
    let mut child = spawn_wasmvisor(&home, rpc, &env, &log);
    let deadline = Instant::now() + Duration::from_secs(60 + 5 * n as u64);
    let mut plans = Vec::new();
    let mut ready_ns = std::collections::BTreeMap::new();
    for i in 1..=n {
        let name = format!("u{i}");
        let config =
            json!({"version": name, "ordinal": i + 1, "handles": name, "block_ms": block_ms_of(i)});
        let archive = sim_archive(&home, with(&base, config));
        let path = format!("/{name}.tar.gz");
        server.put(&path, archive.clone());
        let url = format!("{}?checksum=sha256:{}", server.url(&path), sha256(&archive));
        // At least LEAD of the running version's blocks ahead, and one more for a height read
        // a block late.
        let blocks = LEAD.as_millis() as u64 / block_ms_of(i - 1) + 2;
        let height = home.height() + blocks;
        let info = json!({"binaries": {platform(): url}}).to_string();
        plans.push(json!({"name": name, "height": height, "info": info}));
        announce(&home, &plans);
        let wait = |what: &str, done: &dyn Fn() -> bool, child: &mut std::process::Child| {
            while !done() {
                assert!(
                    Instant::now() < deadline,
                    "(e) did not finish: waiting for {what} of {name}; log {}",
                    log.display()
                );
                still_running(child, &log);
                std::thread::sleep(Duration::from_millis(2));
            }
        };
        wait(
            "the record saying ready, or the halt",
            &|| ready(&home, &name) || halted_for(&home, &name),
            &mut child,
        );
        if !halted_for(&home, &name) {
            ready_ns.insert(name.clone(), monotonic_ns());
        }
        wait(
            "its binary committing its height",
            &|| home.height() >= height,
            &mut child,
        );
    }
    stop(&mut child);
    let mut run = collect(&home, &log, n);
    let halts: std::collections::BTreeMap<String, u64> = home
        .events_of("upgrade-needed")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_string(),
                e["mono_ns"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    run.ahead = Some(Ahead {
        ready: ready_ns.len(),
        lead_s: ready_ns
            .iter()
            .filter_map(|(name, at)| Some((*halts.get(name)? as f64 - *at as f64) / 1e9))
            .collect(),
    });
    run
}
