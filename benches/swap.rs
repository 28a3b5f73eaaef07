//! Swap-to-restart latency: from the moment the node writes `upgrade-info.json` (the simulator
//! stamps CLOCK_MONOTONIC just before) to the first instruction of the new binary (it stamps its
//! start), over many upgrades, for eight set-ups:
//!
//! - (a) wasmvisor, inotify, no backup, the bundled default plugins only;
//! - (b) the same plus a resolver plugin (the template, after the bundled one) and the cometbft
//!   health check;
//! - (c) wasmvisor polling every 300 ms (Cosmovisor's default policy);
//! - (d) a floor: this program waits on inotify, stops the node, renames a symlink and spawns;
//! - (d′) the floor that does the protocol's work (`swap/floor.rs`): (d) plus the new binary's
//!   `pre-upgrade`, which the Cosmos SDK defines and every upgrade runs;
//! - (e) (a) with the governance plan known ahead: the node serves its RPC and gRPC, each plan
//!   is announced a second or more before its height with a binaries map, and wasmvisor's
//!   planner (asking every 100 ms) downloads, stages and preflights it before the halt
//!   (`swap/ahead.rs`);
//! - (f) (a) with `WASMVISOR_PREFLIGHT_ARGS=off`: (a)−(f) is what the preflight's `<binary>
//!   version` at the halt costs a binary that was not checked ahead;
//! - (g) (a) with the webhook notifier posting every event to a receiver that never
//!   answers: (g)/(a) is what a hung notifier costs an upgrade (nothing, by design).
//!
//! Each phase's duration comes from wasmvisor's JSON log, and so do the counts of the table's
//! last columns: upgrades with a fetch phase, preflights run at the halt (while the node stops)
//! and binaries that passed theirs ahead of it. Prints a table with p50/p99/max and the ratios,
//! (a)/(d′) and (a)/(d) at p50, p99 and max first; then
//!
//! - the tail (`swap/tail.rs`): the slowest 1% of (a)'s and (d′)'s upgrades, mark by mark from
//!   the halt (the node's events and wasmvisor's log lines), beside the median upgrade's;
//! - the hot path counted (`swap/count.rs`): the supervisor's system calls, fsyncs, files
//!   written, renames, spawns and plugin instances per upgrade, under strace, for (a) and (d′);
//! - the same (a) and (d′) under load (`swap/load.rs`: a CPU hog and a disk writer the bench
//!   starts and stops), and their ratio;
//! - instructions per upgrade under callgrind (`swap/instr.rs`), (a) and (d′): a figure the
//!   machine's noise does not move;
//! - for the supervisor idling with the plugins loaded from the compile cache, its resident
//!   memory and its wake-ups per second (inotify and poll), and the binary's size.
//!
//! Writes `target/bench/swap.json`, `target/bench/swap.svg` and the two traces
//! (`target/bench/strace-a.txt`, `strace-d-prime.txt`).
//!
//! `cargo bench --bench swap` (about 25 minutes). `WASMVISOR_BENCH_UPGRADES=N` changes the 200
//! upgrades per set-up; `WASMVISOR_BENCH_ONLY=a,d',counts,load,instructions,idle` runs only those
//! parts; `WASMVISOR_BENCH_BINARY=PATH` measures another build of wasmvisor (an older one, to
//! compare its counts and instructions with this one's).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

#[path = "swap/ahead.rs"]
mod ahead;
#[path = "swap/count.rs"]
mod count;
#[path = "swap/floor.rs"]
mod floor;
#[path = "../tests/harness/mod.rs"]
#[allow(dead_code)]
mod harness;
#[path = "swap/instr.rs"]
mod instr;
#[path = "swap/load.rs"]
mod load;
#[path = "swap/report.rs"]
mod report;
#[path = "swap/runs.rs"]
mod runs;
#[path = "swap/tail.rs"]
mod tail;

use floor::{Floor, run_floor};
use harness::WASMVISOR;
use report::{machine, pct, stats, svg};
use runs::{Ahead, Run, Said, idle, run_wasmvisor};

const PLUGINS_DIR: &str = env!("WASMVISOR_PLUGINS_DIR");
const BLOCK_MS: u64 = 20;
const PHASES: &[&str] = &[
    "detect",
    "stop",
    "resolve",
    "fetch",
    "swap",
    "app-preupgrade",
    "launch",
    "health",
];

fn main() {
    // The bench binary started again as a floor or a load, by the bench itself.
    if let Ok(spec) = std::env::var(floor::CHILD) {
        return floor::child(&spec);
    }
    if let Ok(spec) = std::env::var(load::CHILD) {
        return load::child(&spec);
    }
    let n: usize = std::env::var("WASMVISOR_BENCH_UPGRADES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let only = std::env::var("WASMVISOR_BENCH_ONLY").ok();
    let wanted = |key: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|k| k.trim() == key))
    };
    println!("swap-to-restart over {n} upgrades per set-up (block times 10–160 ms)…");
    let started = Instant::now();
    let mut runs: Vec<(&str, &str, Run)> = Vec::new();
    for (key, title) in SETUPS {
        if wanted(key) {
            runs.push((key, title, setup(key, n)));
        }
    }
    let mut report = json!({"upgrades": n, "block_ms": BLOCK_MS, "setups": {}});
    let table_runs: Vec<(&str, &str, &Run)> = runs.iter().map(|(k, t, r)| (*k, *t, r)).collect();
    table(&table_runs, &mut report);
    let by_key: BTreeMap<&str, &Run> = runs.iter().map(|(k, _, r)| (*k, r)).collect();
    report["ratios"] = ratios(&by_key);
    if let Some(a) = by_key.get("a") {
        report["tail"] = tail::report("a", a);
    }
    if let Some(d) = by_key.get("d'") {
        report["tail_d_prime"] = tail::report("d'", d);
    }
    if wanted("counts") {
        let (a, floor) = (count::count_wasmvisor(COUNTED), count::count_floor(COUNTED));
        report["counts"] = count::report(&a, &floor);
    }
    if wanted("load") {
        report["load"] = under_load(n, &by_key);
    }
    if wanted("instructions") && instr::available() {
        report["instructions"] = instr::measure();
    }
    if wanted("idle") {
        idle_and_size(&mut report);
    }
    write(&report, &table_runs, started);
}

/// Upgrades under strace (each is slowed by the tracing; the counts are per upgrade).
const COUNTED: usize = 20;

/// The set-ups, in the table's order.
const SETUPS: &[(&str, &str)] = &[
    ("a", "inotify, default plugins"),
    ("b", "(a) + resolver + health plugins"),
    ("c", "poll 300 ms"),
    ("d", "floor: stop, rename, spawn"),
    ("d'", "floor + the new binary's pre-upgrade"),
    ("e", "(a) with the plan known ahead"),
    ("f", "(a) without the version run"),
    ("g", "(a) + a notifier that never answers"),
];

fn setup(key: &str, n: usize) -> Run {
    let inotify = || ("WASMVISOR_WATCH_MODE", "inotify".to_string());
    match key {
        "a" => run_wasmvisor(n, &[inotify()], None),
        "b" => run_wasmvisor(n, &[inotify()], Some(health_toml())),
        "c" => run_wasmvisor(
            n,
            &[
                ("WASMVISOR_WATCH_MODE", "poll".into()),
                ("DAEMON_POLL_INTERVAL", "300ms".into()),
            ],
            None,
        ),
        "d" => run_floor(n, Floor::Spawn),
        "d'" => run_floor(n, Floor::Protocol),
        "e" => ahead::run_ahead(n),
        // What the preflight's `<binary> version` at the halt costs (a), in the same run.
        "f" => run_wasmvisor(
            n,
            &[inotify(), ("WASMVISOR_PREFLIGHT_ARGS", "off".into())],
            None,
        ),
        // A notifier whose every call hangs until its own timeout.
        _ => {
            let hangs = harness::receive::Receiver::start(harness::receive::Answer::Hang);
            run_wasmvisor(
                n,
                &[inotify()],
                Some(format!(
                    "[[notifier]]\nname = \"hangs\"\npath = \"{PLUGINS_DIR}/wasmvisor_plugin_webhook.wasm\"\nconfig = {{ url = \"{}\" }}\nallow-hosts = [\"127.0.0.1:{}\"]\n",
                    hangs.url("/hook"),
                    hangs.port
                )),
            )
        }
    }
}

/// (a) and (d′) again with a CPU hog and a disk writer beside them: how much worse each gets,
/// and whether their ratio holds.
fn under_load(n: usize, quiet: &BTreeMap<&str, &Run>) -> Value {
    let scratch = tempfile::tempdir().unwrap();
    let load = load::Load::start(scratch.path());
    let a = run_wasmvisor(n, &[("WASMVISOR_WATCH_MODE", "inotify".into())], None);
    let floor = run_floor(n, Floor::Protocol);
    drop(load);
    let p = |r: &Run, q: f64| pct(&r.totals, q);
    println!("\nunder load (a CPU hog and a disk writer beside the runs), {n} upgrades each:");
    let mut out = json!({"a": stats(&a.totals), "d_prime": stats(&floor.totals)});
    for q in [0.5, 0.99] {
        let label = if q == 0.5 { "p50" } else { "p99" };
        let quiet_of = |k: &str| quiet.get(k).map(|r| p(r, q));
        let worse = |loaded: f64, k: &str| {
            quiet_of(k).map_or("-".into(), |quiet| format!("{:.2}x quiet", loaded / quiet))
        };
        println!(
            "  {label}: (a) {:.2} ms ({}), (d') {:.2} ms ({}), (a)/(d') = {:.2}",
            p(&a, q),
            worse(p(&a, q), "a"),
            p(&floor, q),
            worse(p(&floor, q), "d'"),
            p(&a, q) / p(&floor, q)
        );
        out[format!("a_over_d_prime_{label}")] = json!(p(&a, q) / p(&floor, q));
    }
    out["tail"] = tail::report("a under load", &a);
    out
}

/// Set-up (b)'s plugins: the bundled resolver, the template after it, the cometbft health
/// check.
fn health_toml() -> String {
    format!(
        r#"[[resolver]]
path = "bundled:cosmovisor"
[[resolver]]
name = "template"
path = "{dir}/wasmvisor_plugin_template.wasm"
[[health]]
name = "cometbft"
path = "{dir}/wasmvisor_plugin_cometbft.wasm"
config = {{ rpc = "http://127.0.0.1:{{port}}", blocks = "1" }}
allow-hosts = ["127.0.0.1:{{port}}"]
interval = "10ms"
deadline = "30s"
"#,
        dir = PLUGINS_DIR
    )
}

/// Prints each set-up's totals and phases, and records them in `report["setups"]`.
fn table(runs: &[(&str, &str, &Run)], report: &mut Value) {
    println!(
        "\n{:<40} {:>6} {:>10} {:>10} {:>10} {:>7} {:>9} {:>9}",
        "set-up / phase (ms)", "n", "p50", "p99", "max", "fetch", "pf@halt", "pf ahead"
    );
    for &(key, title, run) in runs {
        let t = stats(&run.totals);
        let count =
            |f: fn(&Said) -> usize| run.said.as_ref().map_or("-".into(), |s| f(s).to_string());
        println!(
            "{:<40} {:>6} {:>10.2} {:>10.2} {:>10.2} {:>7} {:>9} {:>9}",
            format!("({key}) {title}"),
            t["n"],
            t["p50"].as_f64().unwrap(),
            t["p99"].as_f64().unwrap(),
            t["max"].as_f64().unwrap(),
            count(|s| s.fetches),
            count(|s| s.preflight_at_halt),
            count(|s| s.preflight_ahead),
        );
        let mut phases = serde_json::Map::new();
        for phase in PHASES {
            if let Some(v) = run.phases.get(*phase) {
                let s = stats(v);
                println!(
                    "{:<40} {:>6} {:>10.3} {:>10.3} {:>10.3}",
                    format!("    {phase}"),
                    s["n"],
                    s["p50"].as_f64().unwrap(),
                    s["p99"].as_f64().unwrap(),
                    s["max"].as_f64().unwrap()
                );
                phases.insert(phase.to_string(), s);
            }
        }
        report["setups"][key] =
            json!({"title": title, "total": t, "phases": phases, "samples_ms": run.totals});
        if let Some(said) = &run.said {
            report["setups"][key]["said"] = json!({
                "fetch_phases": said.fetches,
                "preflight_at_halt": said.preflight_at_halt,
                "preflight_ahead": said.preflight_ahead,
                "prepared_ahead": said.prepared_ahead,
            });
        }
        if let Some(ahead) = &run.ahead {
            report["setups"][key]["ahead"] = ahead_line(run, ahead);
        }
    }
}

/// (e)'s plans: how many were ready before their halt, how far ahead, how many the planner
/// staged; printed and returned.
fn ahead_line(run: &Run, ahead: &Ahead) -> Value {
    let prepared = run.said.as_ref().map_or(0, |s| s.prepared_ahead);
    println!(
        "    ready before the halt: {} of {} plans, {:.2} s ahead at p50 ({:.2} s at least); {prepared} downloaded and staged ahead by the planner",
        ahead.ready,
        run.totals.len(),
        pct(&ahead.lead_s, 0.5),
        pct(&ahead.lead_s, 0.0),
    );
    json!({"ready_before_halt": ahead.ready, "lead_s": stats(&ahead.lead_s), "prepared_ahead": prepared})
}

/// The ratios the set-ups are compared by, printed (those whose set-ups ran).
fn ratios(runs: &BTreeMap<&str, &Run>) -> Value {
    let p = |k: &str, q: f64| runs.get(k).map(|r| pct(&r.totals, q));
    let mut out = serde_json::Map::new();
    let mut say = |name: String, value: Option<f64>, what: &str| {
        if let Some(v) = value {
            println!("{what}: {v:.2}");
            out.insert(name, json!(v));
        }
    };
    println!();
    for (q, label) in [(0.5, "p50"), (0.99, "p99"), (1.0, "max")] {
        let over = |x: &str, y: &str| Some(p(x, q)? / p(y, q)?);
        let minus = |x: &str, y: &str| Some(p(x, q)? - p(y, q)?);
        say(
            format!("a_over_d_prime_{label}"),
            over("a", "d'"),
            &format!("(a)/(d') at {label}"),
        );
        say(
            format!("a_over_d_{label}"),
            over("a", "d"),
            &format!("(a)/(d) at {label}"),
        );
        if q == 1.0 {
            continue;
        }
        say(
            format!("b_minus_a_{label}_ms"),
            minus("b", "a"),
            &format!("(b)-(a) at {label}, ms"),
        );
        say(
            format!("c_over_a_{label}"),
            over("c", "a"),
            &format!("(c)/(a) at {label}"),
        );
        say(
            format!("e_over_a_{label}"),
            over("e", "a"),
            &format!("(e)/(a) at {label}"),
        );
        say(
            format!("e_over_d_prime_{label}"),
            over("e", "d'"),
            &format!("(e)/(d') at {label}"),
        );
        say(
            format!("a_minus_f_{label}_ms"),
            minus("a", "f"),
            &format!("the version run at the halt, (a)-(f) at {label}, ms"),
        );
        say(
            format!("g_over_a_{label}"),
            over("g", "a"),
            &format!("a notifier that never answers, (g)/(a) at {label}"),
        );
    }
    out.into()
}

/// The idle supervisor's memory and wake-ups, the binary's size and the machine, printed and
/// recorded.
fn idle_and_size(report: &mut Value) {
    let (rss_inotify, wake_inotify) = idle("inotify");
    let (rss_poll, wake_poll) = idle("poll");
    let size = std::fs::metadata(WASMVISOR).map(|m| m.len()).unwrap_or(0);
    println!(
        "idle supervisor with the bundled plugins loaded from the cache: RSS {:.1} MiB (target ≤ 10), wake-ups {:.2}/s with inotify (target 0), {:.2}/s polling at 1 s, the fallback's period (target ≤ 1)",
        rss_inotify as f64 / 1024.0,
        wake_inotify,
        wake_poll
    );
    println!(
        "this build of wasmvisor: {:.1} MiB at {WASMVISOR} (static release builds: .ci/build-static)",
        size as f64 / (1 << 20) as f64
    );
    report["idle"] = json!({
        "rss_kib_inotify": rss_inotify, "rss_kib_poll": rss_poll,
        "wakeups_per_s_inotify": wake_inotify, "wakeups_per_s_poll_1s": wake_poll,
    });
    report["binary_bytes"] = json!(size);
    report["machine"] = json!(machine());
}

/// Writes `target/bench/swap.json` and `swap.svg`.
fn write(report: &Value, runs: &[(&str, &str, &Run)], started: Instant) {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("swap.json"),
        serde_json::to_string_pretty(report).unwrap(),
    )
    .unwrap();
    std::fs::write(out.join("swap.svg"), svg(runs)).unwrap();
    println!(
        "wrote {} and {} in {:.0} s",
        out.join("swap.json").display(),
        out.join("swap.svg").display(),
        started.elapsed().as_secs_f64()
    );
}
