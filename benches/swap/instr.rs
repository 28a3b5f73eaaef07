//! Instructions, a figure the machine's noise does not move: the user-space instructions the
//! supervisor executes per upgrade, under `valgrind --tool=callgrind` (all its threads; not the
//! programs it starts). The run's fixed costs (start-up, loading the plugins, the last node's
//! stop) cancel out between a short and a longer run of the same set-up: per upgrade is
//! (I(long) − I(short)) / (long − short). It includes what the supervisor does for the node's
//! blocks between upgrades (two per upgrade) and, with the chain polls off, little that goes
//! by the clock (the follower's `/status` each second while a new binary's first vote is
//! awaited: a refused connection here).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::floor::{Floor, run_floor_child};
use crate::harness::free_port;
use crate::runs::{home, spawn_wasmvisor_with, stop, wait_finished};

const SHORT: usize = 4;
const LONG: usize = 16;

/// Whether valgrind is here.
pub(crate) fn available() -> bool {
    std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Instructions per upgrade of (a) and of the floor (d′).
pub(crate) fn measure() -> Value {
    // The plugins compiled into the cache first: a compilation in one run and not the other
    // would be most of the difference.
    crate::runs::run_wasmvisor(1, &[("WASMVISOR_WATCH_MODE", "inotify".into())], None);
    let a = per_upgrade(wasmvisor);
    let floor = per_upgrade(floor);
    println!(
        "\ninstructions per upgrade (callgrind, user space, the supervisor's threads; ({LONG} − {SHORT} upgrades)): (a) {:.2} M, (d') {:.3} M, (a)/(d') = {:.0}",
        a / 1e6,
        floor / 1e6,
        a / floor
    );
    json!({"a": a, "d_prime": floor, "a_over_d_prime": a / floor})
}

fn per_upgrade(run: fn(usize) -> u64) -> f64 {
    let (short, long) = (run(SHORT), run(LONG));
    (long as f64 - short as f64) / (LONG - SHORT) as f64
}

fn callgrind(out: &Path) -> Vec<String> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--quiet".into(),
        format!("--callgrind-out-file={}", out.display()),
    ]
}

/// (a) over `n` upgrades under callgrind: its total instructions.
fn wasmvisor(n: usize) -> u64 {
    let port = free_port();
    let home = home(n, port);
    let (log, out) = (
        home.path.join("wasmvisor.log"),
        home.path.join("callgrind.out"),
    );
    // No chain polls: what the planner does per minute is not per upgrade.
    let env = [
        ("WASMVISOR_WATCH_MODE", "inotify".to_string()),
        ("WASMVISOR_PLAN_POLL", "off".to_string()),
    ];
    let mut child = spawn_wasmvisor_with(&home, port, &env, &log, &callgrind(&out));
    wait_finished(
        &home,
        n,
        &mut child,
        &log,
        Duration::from_secs(300 + 30 * n as u64),
    );
    stop(&mut child);
    total(&out)
}

/// The floor (d′) over `n` upgrades under callgrind.
fn floor(n: usize) -> u64 {
    let home = home(n, free_port());
    let out = home.path.join("callgrind.out");
    run_floor_child(&home, n, Floor::Protocol, &callgrind(&out));
    total(&out)
}

/// The `totals:` (or `summary:`) line of a callgrind output file.
fn total(out: &Path) -> u64 {
    let text = std::fs::read_to_string(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals: ")
                .or_else(|| l.strip_prefix("summary: "))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{}: no totals line", out.display()))
}
