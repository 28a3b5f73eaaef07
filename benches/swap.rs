//! Swap-to-restart latency: from the moment the node writes `upgrade-info.json` (the simulator
//! stamps CLOCK_MONOTONIC just before) to the first instruction of the new binary (it stamps its
//! start), over many upgrades, for four set-ups:
//!
//! - (a) wasmvisor, inotify, no backup, the bundled default plugins only;
//! - (b) the same plus a resolver plugin (the template, after the bundled one) and the cometbft
//!   health check;
//! - (c) wasmvisor polling every 300 ms (Cosmovisor's default policy);
//! - (d) the floor: this program waits on inotify, stops the node, renames a symlink and spawns.
//!
//! Each phase's duration comes from wasmvisor's JSON log. Prints a table with p50/p99/max and the
//! ratios (a)/(d), (b)-(a), (c)/(a); writes `target/bench/swap.json` and `target/bench/swap.svg`.
//! Then measures, for the supervisor idling with the plugins loaded from the compile cache, its
//! resident memory and its wake-ups per second (inotify and poll), and the binary's size.
//!
//! `cargo bench --bench swap` (WASMVISOR_BENCH_UPGRADES=N to change the 200 upgrades per set-up).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "../tests/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

use harness::{Home, WASMVISOR, free_port};

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

/// A tree with genesis and `n` staged upgrades `u1..un`; plan `ui` is at height 2i+1.
fn home(n: usize, rpc_port: u16) -> Home {
    let home = Home::new();
    let base = json!({"block_ms": BLOCK_MS, "rpc_port": rpc_port, "halt": "stay"});
    let with = |mut extra: Value| {
        for (k, v) in base.as_object().unwrap() {
            extra[k] = v.clone();
        }
        extra
    };
    home.install("genesis", with(json!({"version": "genesis", "ordinal": 1})));
    let mut plans = Vec::new();
    for i in 1..=n {
        let name = format!("u{i}");
        // Block times vary between versions (10–160 ms, two blocks per upgrade cover a 300 ms
        // poll period), so the upgrades do not fall into step with the polling.
        let mut config = with(json!({"version": name, "ordinal": i + 1, "handles": name}));
        config["block_ms"] = json!(10 + (i * 37) % 151);
        home.install(&format!("upgrades/{name}"), config);
        plans.push((name, 2 * i as u64 + 1));
    }
    let plans: Vec<(&str, u64)> = plans.iter().map(|(n, h)| (n.as_str(), *h)).collect();
    home.chain(&plans);
    home
}

/// Whether the last upgrade's binary has committed past its plan.
fn finished(home: &Home, n: usize) -> bool {
    home.height() > 2 * n as u64 + 1
}

/// upgrade name → milliseconds from upgrade-info.json written to the new binary's first instruction.
fn totals(home: &Home) -> BTreeMap<String, f64> {
    let events = home.events();
    let mut needed = BTreeMap::new();
    let mut born = BTreeMap::new();
    for e in &events {
        let version = e["version"].as_str().unwrap_or("").to_string();
        match e["event"].as_str() {
            Some("upgrade-needed") => {
                needed.insert(
                    e["name"].as_str().unwrap_or("").to_string(),
                    e["mono_ns"].as_u64().unwrap_or(0),
                );
            }
            Some("start") => {
                born.entry(version)
                    .or_insert(e["born_ns"].as_u64().unwrap_or(0));
            }
            _ => {}
        }
    }
    needed
        .into_iter()
        .filter_map(|(name, t0)| {
            born.get(&name)
                .map(|t1| (name, (*t1 as f64 - t0 as f64) / 1e6))
        })
        .collect()
}

/// Phase durations (ms) per upgrade, from wasmvisor's JSON log.
fn phases(log: &Path) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut current = String::new();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match v["message"].as_str().unwrap_or("") {
            "upgrade starting" => current = v["upgrade"].as_str().unwrap_or("").to_string(),
            "phase done" => {
                let ms = v["duration"]
                    .as_str()
                    .and_then(|d| wasmvisor::duration::parse(d).ok())
                    .map_or(0.0, |d| d.as_secs_f64() * 1e3);
                out.entry(current.clone())
                    .or_default()
                    .insert(v["phase"].as_str().unwrap_or("").to_string(), ms);
            }
            m if m.starts_with("upgraded node is healthy") => {
                if let Some(first) = v["first_answer_ms"].as_f64() {
                    out.entry(current.clone())
                        .or_default()
                        .insert("health".into(), first);
                }
            }
            _ => {}
        }
    }
    out
}

struct Run {
    totals: Vec<f64>,
    phases: BTreeMap<String, Vec<f64>>,
}

/// upgrade name → milliseconds from upgrade-info.json written to wasmvisor seeing it (both
/// stamped with CLOCK_MONOTONIC; the journal's `detect` is the file's age by its coarse mtime).
fn detections(home: &Home, log: &Path) -> BTreeMap<String, f64> {
    let needed: BTreeMap<String, u64> = home
        .events()
        .iter()
        .filter(|e| e["event"] == "upgrade-needed")
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_string(),
                e["mono_ns"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            matches!(
                v["message"].as_str(),
                Some("upgrade detected" | "node halted for the upgrade")
            )
        })
        .filter_map(|v| {
            let name = v["upgrade"].as_str()?.to_string();
            let t0 = *needed.get(&name)?;
            let t1 = v["mono_ns"].as_u64()?;
            Some((name, (t1 as f64 - t0 as f64) / 1e6))
        })
        .collect()
}

fn run_wasmvisor(n: usize, env: &[(&str, String)], plugins: Option<String>) -> Run {
    let port = free_port();
    let home = home(n, port);
    if let Some(toml) = plugins {
        std::fs::write(
            home.root().join("plugins.toml"),
            toml.replace("{port}", &port.to_string()),
        )
        .unwrap();
    }
    let log = home.path.join("wasmvisor.log");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-plugin-cache");
    let mut cmd = Command::new(WASMVISOR);
    cmd.args(["run", "start", "--home"])
        .arg(&home.path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DAEMON_HOME", &home.path)
        .env("DAEMON_NAME", "simd")
        .env("UNSAFE_SKIP_BACKUP", "true")
        .env("WASMVISOR_LOG_FORMAT", "json")
        .env("WASMVISOR_RPC_ADDRESS", format!("http://127.0.0.1:{port}"))
        .env("WASMVISOR_PLUGIN_CACHE", &cache)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60 + n as u64);
    while !finished(&home, n) {
        assert!(
            Instant::now() < deadline,
            "the run did not finish; log {}",
            log.display()
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "wasmvisor exited early ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(&mut child);
    let totals: Vec<f64> = totals(&home).into_values().collect();
    let mut by_phase: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let detect = detections(&home, &log);
    for (name, p) in phases(&log) {
        for (phase, ms) in p {
            let ms = if phase == "detect" {
                detect.get(&name).copied().unwrap_or(ms)
            } else {
                ms
            };
            by_phase.entry(phase).or_default().push(ms);
        }
    }
    assert!(
        totals.len() >= n,
        "only {} upgrades measured of {n}",
        totals.len()
    );
    Run {
        totals,
        phases: by_phase,
    }
}

fn stop(child: &mut Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// The floor: inotify on data/, SIGTERM the node and wait, rename a new symlink over `current`,
/// spawn `current/bin/simd`. Nothing else.
fn run_floor(n: usize) -> Run {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let home = home(n, free_port());
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).unwrap();
    inotify
        .add_watch(
            &home.data(),
            AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO,
        )
        .unwrap();
    let spawn = |home: &Home| {
        Command::new(home.root().join("current/bin/simd"))
            .args(["start", "--home"])
            .arg(&home.path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut node = spawn(&home);
    let mut done = 0;
    while done < n {
        let events = inotify.read_events().unwrap();
        if !events.iter().any(|e| {
            e.name
                .as_deref()
                .is_some_and(|name| name == "upgrade-info.json")
        }) {
            continue;
        }
        let Ok(bytes) = std::fs::read(home.data().join("upgrade-info.json")) else {
            continue;
        };
        let Ok(plan) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let name = plan["name"].as_str().unwrap_or("").to_string();
        if !home.root().join("upgrades").join(&name).is_dir() {
            continue;
        }
        stop(&mut node);
        let tmp = home.root().join("current.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("upgrades/{name}"), &tmp).unwrap();
        std::fs::rename(&tmp, home.root().join("current")).unwrap();
        node = spawn(&home);
        done += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !finished(&home, n) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(&mut node);
    Run {
        totals: totals(&home).into_values().collect(),
        phases: BTreeMap::new(),
    }
}

fn pct(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn stats(values: &[f64]) -> Value {
    json!({"n": values.len(), "p50": pct(values, 0.5), "p99": pct(values, 0.99), "max": pct(values, 1.0)})
}

/// CDFs of the total latency per set-up, log-scaled milliseconds.
fn svg(runs: &[(&str, &str, &Run)]) -> String {
    let (w, h, left, bottom, top, right) = (760.0, 420.0, 60.0, 50.0, 30.0, 20.0);
    let all: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.2.totals.iter().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let lo = pct(&all, 0.0).max(0.01).log10().floor();
    let hi = pct(&all, 1.0).log10().ceil().max(lo + 1.0);
    let x = |ms: f64| left + (ms.max(10f64.powf(lo)).log10() - lo) / (hi - lo) * (w - left - right);
    let y = |q: f64| top + (1.0 - q) * (h - top - bottom);
    let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"];
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="18" text-anchor="middle" font-size="14">swap-to-restart latency, cumulative distribution (log scale)</text>
"#,
        w / 2.0
    );
    let mut decade = lo;
    while decade <= hi {
        let px = x(10f64.powf(decade));
        out += &format!(
            r##"<line x1="{px}" y1="{top}" x2="{px}" y2="{}" stroke="#ddd"/><text x="{px}" y="{}" text-anchor="middle">{} ms</text>
"##,
            h - bottom,
            h - bottom + 16.0,
            10f64.powf(decade)
        );
        decade += 1.0;
    }
    for q in [0.0, 0.5, 0.9, 0.99] {
        out += &format!(
            r##"<line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#eee"/><text x="{2}" y="{3}" text-anchor="end">{4}</text>
"##,
            y(q),
            w - right,
            left - 6.0,
            y(q) + 4.0,
            if q == 0.99 {
                "p99".to_string()
            } else {
                format!("{q}")
            }
        );
    }
    for (i, (key, title, run)) in runs.iter().enumerate() {
        let mut v = run.totals.clone();
        v.sort_by(f64::total_cmp);
        let points: Vec<String> = v
            .iter()
            .enumerate()
            .map(|(j, ms)| format!("{:.1},{:.1}", x(*ms), y((j + 1) as f64 / v.len() as f64)))
            .collect();
        out += &format!(
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>
<text x="{}" y="{}" fill="{}">({key}) {title}: p50 {:.1} ms</text>
"#,
            colors[i % colors.len()],
            points.join(" "),
            left + 10.0,
            top + 16.0 + 16.0 * i as f64,
            colors[i % colors.len()],
            pct(&run.totals, 0.5)
        );
    }
    out + &format!(
        r#"<text x="{}" y="{}" text-anchor="middle">milliseconds from upgrade-info.json written to the new binary's first instruction</text>
</svg>
"#,
        w / 2.0,
        h - 10.0
    )
}

/// Resident memory (KiB) and wake-ups per second of an idle supervisor.
fn idle(mode: &str) -> (u64, f64) {
    let home = home(1, free_port());
    // A node that commits nothing while we watch: nothing in data/ changes.
    let cfg_path = home.root().join("genesis/bin/sim.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["block_ms"] = json!(3_600_000);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-plugin-cache");
    let mut child = Command::new(WASMVISOR)
        .args(["run", "start", "--home"])
        .arg(&home.path)
        .env_clear()
        .env("DAEMON_HOME", &home.path)
        .env("DAEMON_NAME", "simd")
        .env("UNSAFE_SKIP_BACKUP", "true")
        .env("WASMVISOR_WATCH_MODE", mode)
        .env(
            "DAEMON_POLL_INTERVAL",
            if mode == "poll" { "1s" } else { "300ms" },
        )
        .env("WASMVISOR_PLUGIN_CACHE", &cache)
        .env("COSMOVISOR_DISABLE_LOGS", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id();
    let switches = || -> u64 {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten()
                    .map(|t| {
                        let status =
                            std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
                        status
                            .lines()
                            .filter(|l| {
                                l.starts_with("voluntary_ctxt_switches")
                                    || l.starts_with("nonvoluntary_ctxt_switches")
                            })
                            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                            .sum::<u64>()
                    })
                    .sum()
            })
            .unwrap_or(0)
    };
    let before = switches();
    let window = Duration::from_secs(5);
    std::thread::sleep(window);
    let wakeups = (switches() - before) as f64 / window.as_secs_f64();
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    stop(&mut child);
    (rss, wakeups)
}

fn main() {
    let n: usize = std::env::var("WASMVISOR_BENCH_UPGRADES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let health_toml = format!(
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
    );
    println!("swap-to-restart over {n} upgrades per set-up (block times 10–160 ms)…");
    let started = Instant::now();
    let a = run_wasmvisor(n, &[("WASMVISOR_WATCH_MODE", "inotify".into())], None);
    let b = run_wasmvisor(
        n,
        &[("WASMVISOR_WATCH_MODE", "inotify".into())],
        Some(health_toml),
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
    let runs = [
        ("a", "inotify, default plugins", &a),
        ("b", "(a) + resolver + health plugins", &b),
        ("c", "poll 300 ms", &c),
        ("d", "floor", &d),
    ];
    println!(
        "\n{:<40} {:>6} {:>10} {:>10} {:>10}",
        "set-up / phase (ms)", "n", "p50", "p99", "max"
    );
    let mut report = json!({"upgrades": n, "block_ms": BLOCK_MS, "setups": {}});
    for (key, title, run) in runs {
        let t = stats(&run.totals);
        println!(
            "{:<40} {:>6} {:>10.2} {:>10.2} {:>10.2}",
            format!("({key}) {title}"),
            t["n"],
            t["p50"].as_f64().unwrap(),
            t["p99"].as_f64().unwrap(),
            t["max"].as_f64().unwrap()
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
    }
    let p50 = |r: &Run| pct(&r.totals, 0.5);
    let ratios = json!({
        "a_over_d_p50": p50(&a) / p50(&d),
        "b_minus_a_p50_ms": p50(&b) - p50(&a),
        "c_over_a_p50": p50(&c) / p50(&a),
        "a_over_d_p99": pct(&a.totals, 0.99) / pct(&d.totals, 0.99),
    });
    println!(
        "\nratios: (a)/(d) = {:.2} at p50 ({:.2} at p99); (b)-(a) = {:+.2} ms at p50; (c)/(a) = {:.1} at p50",
        ratios["a_over_d_p50"].as_f64().unwrap(),
        ratios["a_over_d_p99"].as_f64().unwrap(),
        ratios["b_minus_a_p50_ms"].as_f64().unwrap(),
        ratios["c_over_a_p50"].as_f64().unwrap()
    );
    report["ratios"] = ratios;

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

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("swap.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    std::fs::write(out.join("swap.svg"), svg(&runs)).unwrap();
    println!(
        "wrote {} and {} in {:.0} s",
        out.join("swap.json").display(),
        out.join("swap.svg").display(),
        started.elapsed().as_secs_f64()
    );
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores, {}", std::env::consts::ARCH)
}
