//! The cost of asking the chain for its next upgrades while nothing happens: a supervisor idles
//! beside the simulated node (RPC and gRPC served, a block every 100 ms, a plan far ahead whose
//! binary is staged, so each poll does its whole steady-state work: the plan, the proposals,
//! the pace, the preflight's check that the binary is unchanged, the record), for a fixed wall
//! time per configuration of `WASMVISOR_PLAN_POLL`: `off` (the baseline), `1s` and `100ms`.
//!
//! For each: wasmvisor's CPU time (utime + stime of `/proc/<pid>/stat`, in clock ticks), the
//! polls it made (its `wasmvisor_plan_polls_total`, scraped at both ends of the window), its
//! resident memory, and the node's block rate over the same window (from the height it
//! committed). The CPU above the baseline divided by the polls is the cost of one poll; at the
//! default `1m` that is 60 polls an hour. A 1-minute poll would make no poll in the window, so
//! the short periods measure it; the block rate says whether the node is disturbed.
//!
//! `cargo bench --bench poll` (WASMVISOR_BENCH_POLL_SECONDS=N to change the 20 s per
//! configuration). Writes `target/bench/poll.json`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "../tests/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

use harness::{Home, WASMVISOR, free_port};

const CONFIGS: &[&str] = &["off", "1s", "100ms"];
const BLOCK_MS: u64 = 100;
/// The default `WASMVISOR_PLAN_POLL`, in polls per hour.
const DEFAULT_POLLS_PER_HOUR: f64 = 60.0;

/// One configuration's window.
struct Sample {
    config: &'static str,
    seconds: f64,
    cpu_ticks: u64,
    polls: u64,
    blocks: u64,
    rss_kib: u64,
}

impl Sample {
    fn cpu_ms_per_s(&self, tick_ms: f64) -> f64 {
        self.cpu_ticks as f64 * tick_ms / self.seconds
    }

    fn blocks_per_s(&self) -> f64 {
        self.blocks as f64 / self.seconds
    }
}

fn main() {
    let seconds: u64 = std::env::var("WASMVISOR_BENCH_POLL_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let tick_ms = 1000.0 / clock_ticks_per_second() as f64;
    println!(
        "the plan poll's cost while idle: {seconds} s per configuration, a block every {BLOCK_MS} ms, CPU in ticks of {tick_ms} ms…"
    );
    // The bundled plugins compile in the background at the first start; the later ones load
    // them from the cache. This start fills it, unmeasured.
    let mut warm = Supervisor::start("off");
    warm.settle();
    drop(warm);
    let samples: Vec<Sample> = CONFIGS
        .iter()
        .map(|config| {
            let mut s = Supervisor::start(config);
            s.wait_ready();
            s.measure(Duration::from_secs(seconds))
        })
        .collect();
    let report = table(&samples, tick_ms);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("poll.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    println!("wrote {}", out.join("poll.json").display());
}

/// Prints each configuration against the baseline; returns the report.
fn table(samples: &[Sample], tick_ms: f64) -> Value {
    let base = &samples[0];
    println!(
        "\n{:<10} {:>7} {:>7} {:>10} {:>12} {:>14} {:>10} {:>8} {:>9}",
        "poll",
        "polls",
        "ticks",
        "CPU ms/s",
        "ms per poll",
        "ms/h at 1m",
        "blocks/s",
        "÷ off",
        "RSS MiB"
    );
    let mut rows = Vec::new();
    for s in samples {
        let above = s.cpu_ms_per_s(tick_ms) - base.cpu_ms_per_s(tick_ms);
        let polls_per_s = s.polls as f64 / s.seconds;
        let per_poll = (s.polls > 0 && s.config != "off").then(|| above / polls_per_s);
        let per_hour = per_poll.map(|p| p * DEFAULT_POLLS_PER_HOUR);
        let rate_ratio = s.blocks_per_s() / base.blocks_per_s();
        let shown =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        println!(
            "{:<10} {:>7} {:>7} {:>10.3} {:>12} {:>14} {:>10.2} {:>8.3} {:>9.1}",
            s.config,
            s.polls,
            s.cpu_ticks,
            s.cpu_ms_per_s(tick_ms),
            shown(per_poll, 3),
            shown(per_hour, 1),
            s.blocks_per_s(),
            rate_ratio,
            s.rss_kib as f64 / 1024.0
        );
        rows.push(json!({
            "plan_poll": s.config, "seconds": s.seconds, "polls": s.polls, "cpu_ticks": s.cpu_ticks,
            "cpu_ms_per_s": s.cpu_ms_per_s(tick_ms), "cpu_ms_per_poll": per_poll,
            "cpu_ms_per_hour_at_1m": per_hour, "blocks_per_s": s.blocks_per_s(),
            "blocks_per_s_over_off": rate_ratio, "rss_kib": s.rss_kib,
        }));
    }
    println!(
        "\nper hour at the default 1m: the polls above cost the CPU milliseconds of `ms/h at 1m`, beside {:.1} ms/h of the idle supervisor itself (`off`); a tick is {tick_ms} ms, so a window's count is ±1 tick",
        base.cpu_ms_per_s(tick_ms) * 3600.0
    );
    json!({"block_ms": BLOCK_MS, "tick_ms": tick_ms, "configs": rows, "machine": machine()})
}

/// A supervisor beside the simulated node, with the poll configured.
struct Supervisor {
    home: Home,
    child: Child,
    metrics: u16,
    log: std::path::PathBuf,
    config: &'static str,
}

impl Supervisor {
    fn start(config: &'static str) -> Supervisor {
        let home = Home::new();
        let (rpc, grpc, metrics) = (free_port(), free_port(), free_port());
        let node =
            json!({"rpc_port": rpc, "grpc_port": grpc, "block_ms": BLOCK_MS, "halt": "stay"});
        let mut genesis = node.clone();
        genesis["version"] = json!("genesis");
        genesis["ordinal"] = json!(1);
        home.install("genesis", genesis);
        // Governance passed v2 long ago for a height far ahead; its binary is staged.
        home.upgrade("v2", 2, node);
        home.chain(&[("v2", 1_000_000_000)]);
        let log = home.path.join("wasmvisor.log");
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-plugin-cache");
        let child = Command::new(WASMVISOR)
            .args(["run", "start", "--home"])
            .arg(&home.path)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DAEMON_HOME", &home.path)
            .env("DAEMON_NAME", "simd")
            .env("UNSAFE_SKIP_BACKUP", "true")
            .env("WASMVISOR_LOG_FORMAT", "json")
            .env("WASMVISOR_WATCH_MODE", "inotify")
            .env("WASMVISOR_RPC_ADDRESS", format!("http://127.0.0.1:{rpc}"))
            .env("DAEMON_GRPC_ADDRESS", format!("127.0.0.1:{grpc}"))
            .env("WASMVISOR_PLAN_POLL", config)
            .env("WASMVISOR_METRICS_ADDRESS", format!("127.0.0.1:{metrics}"))
            .env("WASMVISOR_PLUGIN_CACHE", &cache)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Supervisor {
            home,
            child,
            metrics,
            log,
            config,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `cond` holds, or fails with the log after a minute.
    fn wait(&mut self, what: &str, cond: impl Fn(&Supervisor) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "wasmvisor exited ({status}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: {what} did not happen; log {}",
                self.config,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Until the node commits and wasmvisor has written its record (and, when it asks the
    /// chain, said the plan far ahead is ready): the start's work is over.
    fn wait_ready(&mut self) {
        self.wait("the node committing a block", |s| s.home.height() > 0);
        let asks = self.config != "off";
        self.wait("the record saying v2 is ready", move |s| {
            let record: Value = std::fs::read(s.home.root().join("wasmvisor-upcoming.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let ready = record["upcoming"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["name"] == "v2" && e["ready"] == true);
            !record.is_null() && (ready || !asks)
        });
        self.wait("a scrape of the metrics", |s| s.polls().is_some());
    }

    /// For the unmeasured first start: until a second passes in which wasmvisor used at most
    /// one tick (the plugins are compiled and cached).
    fn settle(&mut self) {
        self.wait_ready();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let before = cpu_ticks(self.pid());
            std::thread::sleep(Duration::from_secs(1));
            if cpu_ticks(self.pid()) - before <= 1 || Instant::now() > deadline {
                return;
            }
        }
    }

    /// The window: CPU, polls and blocks from its start to its end, and the memory at its end.
    /// The scrapes are outside the CPU's window.
    fn measure(self, window: Duration) -> Sample {
        let polls0 = self.polls().unwrap();
        let (cpu0, h0, t0) = (cpu_ticks(self.pid()), self.home.height(), Instant::now());
        std::thread::sleep(window);
        let (cpu1, h1, t1) = (cpu_ticks(self.pid()), self.home.height(), Instant::now());
        let polls1 = self.polls().unwrap();
        let rss_kib = rss_kib(self.pid());
        Sample {
            config: self.config,
            seconds: (t1 - t0).as_secs_f64(),
            cpu_ticks: cpu1 - cpu0,
            polls: polls1 - polls0,
            blocks: h1 - h0,
            rss_kib,
        }
    }

    /// `wasmvisor_plan_polls_total`, every result summed.
    fn polls(&self) -> Option<u64> {
        let body = http_get(self.metrics, "/metrics")?;
        Some(
            body.lines()
                .filter(|l| l.starts_with("wasmvisor_plan_polls_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64,
        )
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn stop(child: &mut Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// The body of a GET on 127.0.0.1:`port`.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// utime + stime of the process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis, from the state (field 3) on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// `getconf CLK_TCK` (100 on Linux, almost always).
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
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
