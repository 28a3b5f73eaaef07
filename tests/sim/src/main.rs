//! A simulated Cosmos SDK node, for wasmvisor's integration tests, benchmarks and demo.
//!
//! It behaves like a real node where a supervisor can see it:
//! - keeps its height in `<home>/data/sim-state.json` and commits a block every `block_ms`,
//!   recording what it signed in `data/priv_validator_state.json` as CometBFT does;
//! - serves CometBFT-shaped `/status` (with the latest block's time), `/block` (the block
//!   store's height; `?height=h`, that block's header, its time `block_ms` × h after genesis),
//!   `/abci_info` (the application's height) and `/abci_query` (the upgrade module's
//!   `CurrentPlan`, the gov module's `Proposals` from `data/sim-proposals.json`, v1 unless
//!   `gov_v1` is false, and v1beta1, `gov_page_size` a page) JSON on `127.0.0.1:<rpc_port>`,
//!   and those queries over gRPC on `127.0.0.1:<grpc_port>`;
//! - honours `--halt-height X` the way each Cosmos SDK line does (`sdk_halt`):
//!   `before` (v0.50.10 and later) commits X - 1, stores block X, fails to execute it and stays
//!   up; `stay-after` (v0.50.0 to v0.50.9) commits X, fails at X + 1 and stays up; `exit-after`
//!   (v0.47 and earlier) commits X, then exits 0 after a short shutdown;
//! - at the height of a plan in `<home>/data/sim-chain.json` (read again for every block and
//!   every query: a test may add, replace or cancel a plan while it runs) that it has no
//!   handler for, writes
//!   `data/upgrade-info.json` as x/upgrade does (truncate, then write), logs
//!   `UPGRADE "<name>" NEEDED at height: <h>: <info>`, then exits or stays alive failed;
//! - refuses to start on data migrated by a newer version, or before its own upgrade height;
//! - handles SIGTERM with a configurable flush delay, answers `pre-upgrade` and `version`;
//! - can fail the way a broken release does: exit at start (`fail_at_start`), or crash after a
//!   height (`exit_after_height`).
//!
//! One binary plays every version: it is installed as a small wrapper script per upgrade folder
//! that passes `--sim-config <that folder>/sim.json`. Everything it does is appended to
//! `<home>/sim-events.jsonl` (outside data/, so a restored backup does not rewrite it) with a
//! CLOCK_MONOTONIC timestamp, for the tests to read.

mod commit;
mod config;
mod gov;
mod grpc;
mod node;
mod rpc;
mod run;

use std::fs;
use std::path::PathBuf;

use serde_json::json;

use config::SimConfig;
use node::{append_event, monotonic_ns};

fn die(msg: &str, code: i32) -> ! {
    eprintln!("sim: {msg}");
    std::process::exit(code)
}

fn main() {
    // Timestamp first: the benchmark measures from the upgraded binary's first instruction.
    let born = monotonic_ns();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let config_path = take_flag(&mut args, "--sim-config");
    let cfg: SimConfig = match &config_path {
        Some(p) => {
            serde_json::from_slice(&fs::read(p).unwrap_or_else(|e| die(&format!("{p}: {e}"), 2)))
                .unwrap_or_else(|e| die(&format!("{p}: {e}"), 2))
        }
        None => SimConfig::default(),
    };
    let command = args.first().cloned().unwrap_or_default();
    match command.as_str() {
        "version" => version(&cfg, &args),
        "pre-upgrade" => pre_upgrade(&cfg, &args),
        "start" => run::start(cfg, args, born),
        other => die(
            &format!("unknown command {other:?}; use start, version or pre-upgrade"),
            1,
        ),
    }
}

fn take_flag(args: &mut Vec<String>, name: &str) -> Option<String> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        if args[i] == name && i + 1 < args.len() {
            found = Some(args.remove(i + 1));
            args.remove(i);
        } else if let Some(v) = args[i].strip_prefix(&format!("{name}=")) {
            found = Some(v.to_string());
            args.remove(i);
        } else {
            i += 1;
        }
    }
    found
}

/// The last value of a flag (pflag semantics), without removing it.
fn flag_value(args: &[String], name: &str) -> Option<String> {
    let mut value = None;
    for (i, a) in args.iter().enumerate() {
        if a == name {
            value = args.get(i + 1).cloned();
        } else if let Some(v) = a.strip_prefix(&format!("{name}=")) {
            value = Some(v.to_string());
        }
    }
    value
}

fn home(args: &[String]) -> PathBuf {
    flag_value(args, "--home")
        .or_else(|| std::env::var("DAEMON_HOME").ok())
        .map(PathBuf::from)
        .unwrap_or_else(|| die("no --home and no DAEMON_HOME", 2))
}

/// Prints the version; a run with a home (`--home` or DAEMON_HOME, as a supervisor's preflight
/// passes it) is logged, so tests see when each binary was checked.
fn version(cfg: &SimConfig, args: &[String]) {
    let home = flag_value(args, "--home")
        .or_else(|| std::env::var("DAEMON_HOME").ok())
        .map(PathBuf::from);
    if let Some(home) = home.filter(|h| h.is_dir()) {
        append_event(
            &home,
            &json!({"event": "version", "version": cfg.version, "mono_ns": monotonic_ns()}),
        );
    }
    println!("{}", cfg.version);
}

fn pre_upgrade(cfg: &SimConfig, args: &[String]) {
    let home = home(args);
    let counter = home.join(format!("sim-preupgrade-{}.count", cfg.version));
    let attempt: usize = fs::read_to_string(&counter)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let _ = fs::write(&counter, (attempt + 1).to_string());
    let codes = if cfg.preupgrade_exit_codes.is_empty() {
        vec![0]
    } else {
        cfg.preupgrade_exit_codes.clone()
    };
    let code = codes[attempt.min(codes.len() - 1)];
    append_event(
        &home,
        &json!({"event": "pre-upgrade", "version": cfg.version, "attempt": attempt + 1, "code": code, "cwd": std::env::current_dir().ok(), "mono_ns": monotonic_ns()}),
    );
    println!(
        "sim {}: pre-upgrade attempt {} -> exit {code}",
        cfg.version,
        attempt + 1
    );
    std::process::exit(code);
}
