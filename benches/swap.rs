//! Swap-to-restart latency: from the moment the node writes `upgrade-info.json` (the simulator
//! stamps CLOCK_MONOTONIC just before) to the first instruction of the new binary (it stamps its
//! start), over many upgrades, for seven set-ups:
//!
//! - (a) wasmvisor, inotify, no backup, the bundled default plugins only;
//! - (b) the same plus a resolver plugin (the template, after the bundled one) and the cometbft
//!   health check;
//! - (c) wasmvisor polling every 300 ms (Cosmovisor's default policy);
//! - (d) the floor: this program waits on inotify, stops the node, renames a symlink and spawns;
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
//! and binaries that passed theirs ahead of it. Prints a table with p50/p99/max and the ratios
//! (a)/(d), (b)-(a), (c)/(a), (e)/(a), (e)/(d), (a)-(f), (g)/(a); writes `target/bench/swap.json` and
//! `target/bench/swap.svg`.
//! Then measures, for the supervisor idling with the plugins loaded from the compile cache, its
//! resident memory and its wake-ups per second (inotify and poll), and the binary's size.
//!
//! `cargo bench --bench swap` (WASMVISOR_BENCH_UPGRADES=N to change the 200 upgrades per set-up).

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

#[path = "swap/ahead.rs"]
mod ahead;
#[path = "../tests/harness/mod.rs"]
#[allow(dead_code)]
mod harness;
#[path = "swap/report.rs"]
mod report;
#[path = "swap/runs.rs"]
mod runs;

use harness::WASMVISOR;
use report::{machine, pct, stats, svg};
use runs::{Ahead, Run, Said, idle, run_floor, run_wasmvisor};

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
    let n: usize = std::env::var("WASMVISOR_BENCH_UPGRADES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("swap-to-restart over {n} upgrades per set-up (block times 10–160 ms)…");
    let started = Instant::now();
    let a = run_wasmvisor(n, &[("WASMVISOR_WATCH_MODE", "inotify".into())], None);
    let b = run_wasmvisor(
        n,
        &[("WASMVISOR_WATCH_MODE", "inotify".into())],
        Some(health_toml()),
    );
    let c = run_wasmvisor(
        n,
        &[
            ("WASMVISOR_WATCH_MODE", "poll".into()),
            ("DAEMON_POLL_INTERVAL", "300ms".into()),
        ],
        None,
    );
    let d = run_floor(n);
    let e = ahead::run_ahead(n);
    // What the preflight's `<binary> version` at the halt costs (a), in the same run.
    let f = run_wasmvisor(
        n,
        &[
            ("WASMVISOR_WATCH_MODE", "inotify".into()),
            ("WASMVISOR_PREFLIGHT_ARGS", "off".into()),
        ],
        None,
    );
    // A notifier whose every call hangs until its own timeout.
    let hangs = harness::receive::Receiver::start(harness::receive::Answer::Hang);
    let g = run_wasmvisor(
        n,
        &[("WASMVISOR_WATCH_MODE", "inotify".into())],
        Some(format!(
            "[[notifier]]\nname = \"hangs\"\npath = \"{PLUGINS_DIR}/wasmvisor_plugin_webhook.wasm\"\nconfig = {{ url = \"{}\" }}\nallow-hosts = [\"127.0.0.1:{}\"]\n",
            hangs.url("/hook"),
            hangs.port
        )),
    );
    let runs = [
        ("a", "inotify, default plugins", &a),
        ("b", "(a) + resolver + health plugins", &b),
        ("c", "poll 300 ms", &c),
        ("d", "floor", &d),
        ("e", "(a) with the plan known ahead", &e),
        ("f", "(a) without the version run", &f),
        ("g", "(a) + a notifier that never answers", &g),
    ];
    let mut report = json!({"upgrades": n, "block_ms": BLOCK_MS, "setups": {}});
    table(&runs, &mut report);
    report["ratios"] = ratios(&a, &b, &c, &d, &[&e, &f, &g]);
    idle_and_size(&mut report);
    write(&report, &runs, started);
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

/// The ratios the set-ups are compared by, printed.
fn ratios(a: &Run, b: &Run, c: &Run, d: &Run, [e, f, g]: &[&Run; 3]) -> Value {
    let p50 = |r: &Run| pct(&r.totals, 0.5);
    let p99 = |r: &Run| pct(&r.totals, 0.99);
    let ratios = json!({
        "a_over_d_p50": p50(a) / p50(d),
        "b_minus_a_p50_ms": p50(b) - p50(a),
        "c_over_a_p50": p50(c) / p50(a),
        "a_over_d_p99": p99(a) / p99(d),
        "e_over_a_p50": p50(e) / p50(a),
        "e_over_a_p99": p99(e) / p99(a),
        "e_over_d_p50": p50(e) / p50(d),
        "e_minus_a_p50_ms": p50(e) - p50(a),
        "a_minus_f_p50_ms": p50(a) - p50(f),
        "a_minus_f_p99_ms": p99(a) - p99(f),
        "g_over_a_p50": p50(g) / p50(a),
        "g_over_a_p99": p99(g) / p99(a),
    });
    println!(
        "\nratios: (a)/(d) = {:.2} at p50 ({:.2} at p99); (b)-(a) = {:+.2} ms at p50; (c)/(a) = {:.1} at p50",
        ratios["a_over_d_p50"].as_f64().unwrap(),
        ratios["a_over_d_p99"].as_f64().unwrap(),
        ratios["b_minus_a_p50_ms"].as_f64().unwrap(),
        ratios["c_over_a_p50"].as_f64().unwrap()
    );
    println!(
        "ratios: (e)/(a) = {:.2} at p50 ({:.2} at p99, {:+.2} ms at p50); (e)/(d) = {:.2} at p50",
        ratios["e_over_a_p50"].as_f64().unwrap(),
        ratios["e_over_a_p99"].as_f64().unwrap(),
        ratios["e_minus_a_p50_ms"].as_f64().unwrap(),
        ratios["e_over_d_p50"].as_f64().unwrap()
    );
    println!(
        "the preflight's version run at the halt, (a)-(f): {:+.2} ms at p50 ({:+.2} at p99)",
        ratios["a_minus_f_p50_ms"].as_f64().unwrap(),
        ratios["a_minus_f_p99_ms"].as_f64().unwrap()
    );
    println!(
        "a notifier that never answers, (g)/(a): {:.2} at p50 ({:.2} at p99)",
        ratios["g_over_a_p50"].as_f64().unwrap(),
        ratios["g_over_a_p99"].as_f64().unwrap()
    );
    ratios
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
