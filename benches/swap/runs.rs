//! The measured runs: wasmvisor upgrading a tree of staged upgrades under each set-up, the
//! idle supervisor (the floors are `floor.rs`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::BLOCK_MS;
use crate::harness::{Home, WASMVISOR, free_port};

/// A tree with genesis and `n` staged upgrades `u1..un`; plan `ui` is at height 2i+1.
pub(crate) fn home(n: usize, rpc_port: u16) -> Home {
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
        config["block_ms"] = json!(block_ms_of(i));
        home.install(&format!("upgrades/{name}"), config);
        plans.push((name, 2 * i as u64 + 1));
    }
    let plans: Vec<(&str, u64)> = plans.iter().map(|(n, h)| (n.as_str(), *h)).collect();
    home.chain(&plans);
    home
}

/// The block time of upgrade `i`'s version (genesis, `i` = 0: `BLOCK_MS`).
pub(crate) fn block_ms_of(i: usize) -> u64 {
    match i {
        0 => BLOCK_MS,
        i => 10 + (i as u64 * 37) % 151,
    }
}

/// Whether the last upgrade's binary has committed past its plan.
pub(crate) fn finished(home: &Home, n: usize) -> bool {
    home.height() > 2 * n as u64 + 1
}

/// upgrade name → milliseconds from upgrade-info.json written to the new binary's first instruction.
pub(crate) fn totals(home: &Home) -> BTreeMap<String, f64> {
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

pub(crate) struct Run {
    pub(crate) totals: Vec<f64>,
    /// upgrade name → its total, and what happened when from its halt (for the tail).
    pub(crate) by_upgrade: BTreeMap<String, f64>,
    pub(crate) timelines: BTreeMap<String, crate::tail::Timeline>,
    pub(crate) phases: BTreeMap<String, Vec<f64>>,
    /// What wasmvisor's log says of the upgrades (`None` for the floor, which has no log).
    pub(crate) said: Option<Said>,
    /// For (e): how many plans the planner had ready before their halt, and how far ahead.
    pub(crate) ahead: Option<Ahead>,
}

impl Run {
    /// A run whose only record is its totals (a floor's).
    pub(crate) fn totals_only(by_upgrade: BTreeMap<String, f64>) -> Run {
        Run {
            totals: by_upgrade.values().copied().collect(),
            by_upgrade,
            timelines: BTreeMap::new(),
            phases: BTreeMap::new(),
            said: None,
            ahead: None,
        }
    }
}

/// What the log says, counted over a run's upgrades.
#[derive(Default)]
pub(crate) struct Said {
    /// Upgrades whose halt had a fetch phase.
    pub(crate) fetches: usize,
    /// Upgrades whose preflight (`<bin> version`) ran at the halt, while the node stopped.
    pub(crate) preflight_at_halt: usize,
    /// Upgrades whose binary had passed its preflight ahead of the halt.
    pub(crate) preflight_ahead: usize,
    /// Plans the planner staged ahead of their halt.
    pub(crate) prepared_ahead: usize,
}

/// How far ahead of their halts (e)'s plans were ready.
pub(crate) struct Ahead {
    /// Plans whose record said ready before their halt.
    pub(crate) ready: usize,
    /// Seconds from the record saying ready to the node writing upgrade-info.json.
    pub(crate) lead_s: Vec<f64>,
}

/// Counts the lines of wasmvisor's JSON log that tell where each upgrade's work happened.
fn said(log: &Path) -> Said {
    let mut said = Said::default();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let message = v["message"].as_str().unwrap_or("");
        match message {
            "phase done" if v["phase"] == "fetch" => said.fetches += 1,
            "preflight passed" => said.preflight_at_halt += 1,
            m if m.starts_with("the binary passed its preflight ahead of the halt") => {
                said.preflight_ahead += 1
            }
            m if m.starts_with("prepared ahead of the halt") => said.prepared_ahead += 1,
            _ => {}
        }
    }
    said
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

pub(crate) fn run_wasmvisor(n: usize, env: &[(&str, String)], plugins: Option<String>) -> Run {
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
    let mut child = spawn_wasmvisor(&home, port, env, &log);
    wait_finished(
        &home,
        n,
        &mut child,
        &log,
        Duration::from_secs(60 + n as u64),
    );
    stop(&mut child);
    collect(&home, &log, n)
}

/// Starts `wasmvisor run start` on `home` (RPC at `port`), its JSON log to `log`.
pub(crate) fn spawn_wasmvisor(home: &Home, port: u16, env: &[(&str, String)], log: &Path) -> Child {
    spawn_wasmvisor_with(home, port, env, log, &[])
}

/// `spawn_wasmvisor`, with `wrap` (strace, valgrind and their arguments) in front.
pub(crate) fn spawn_wasmvisor_with(
    home: &Home,
    port: u16,
    env: &[(&str, String)],
    log: &Path,
    wrap: &[String],
) -> Child {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-plugin-cache");
    let mut cmd = match wrap.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(binary());
            cmd
        }
        None => Command::new(binary()),
    };
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
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The wasmvisor measured: this build's, or `WASMVISOR_BENCH_BINARY` (another build, to compare
/// its counts and instructions with this one's in the same run).
pub(crate) fn binary() -> std::path::PathBuf {
    std::env::var_os("WASMVISOR_BENCH_BINARY").map_or(WASMVISOR.into(), Into::into)
}

/// Waits, up to `limit`, for the last of `n` upgrades to have committed past its plan,
/// panicking with the log if wasmvisor exits meanwhile or the time runs out.
pub(crate) fn wait_finished(home: &Home, n: usize, child: &mut Child, log: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !finished(home, n) {
        assert!(
            Instant::now() < deadline,
            "the run did not finish; log {}",
            log.display()
        );
        still_running(child, log);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Panics with the log if wasmvisor has exited.
pub(crate) fn still_running(child: &mut Child, log: &Path) {
    if let Ok(Some(status)) = child.try_wait() {
        panic!(
            "wasmvisor exited early ({status}):\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// A finished run's latencies, phases and what its log says, for at least `n` upgrades.
pub(crate) fn collect(home: &Home, log: &Path, n: usize) -> Run {
    let by_upgrade = totals(home);
    let totals: Vec<f64> = by_upgrade.values().copied().collect();
    let mut by_phase: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let detect = detections(home, log);
    for (name, p) in phases(log) {
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
        timelines: crate::tail::timelines(home, log),
        by_upgrade,
        phases: by_phase,
        said: Some(said(log)),
        ahead: None,
    }
}

pub(crate) fn stop(child: &mut Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// Resident memory (KiB) and wake-ups per second of an idle supervisor.
pub(crate) fn idle(mode: &str) -> (u64, f64) {
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
