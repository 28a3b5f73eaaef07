//! A simulated Cosmos SDK node, for wasmvisor's integration tests, benchmarks and demo.
//!
//! It behaves like a real node where a supervisor can see it:
//! - keeps its height in `<home>/data/sim-state.json` and commits a block every `block_ms`,
//!   recording what it signed in `data/priv_validator_state.json` as CometBFT does;
//! - serves CometBFT-shaped `/status`, `/block` (the block store's height), `/abci_info` (the
//!   application's height) and `/abci_query` (the upgrade module's `CurrentPlan`) JSON on
//!   `127.0.0.1:<rpc_port>`, and that query over gRPC on `127.0.0.1:<grpc_port>`;
//! - honours `--halt-height X` the way each Cosmos SDK line does (`sdk_halt`):
//!   `before` (v0.50.10 and later) commits X - 1, stores block X, fails to execute it and stays
//!   up; `stay-after` (v0.50.0 to v0.50.9) commits X, fails at X + 1 and stays up; `exit-after`
//!   (v0.47 and earlier) commits X, then exits 0 after a short shutdown;
//! - at the height of a plan in `<home>/data/sim-chain.json` that it has no handler for, writes
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

mod grpc;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize, Clone)]
#[serde(default)]
struct SimConfig {
    version: String,
    ordinal: u32,
    /// The upgrade this binary carries the handler for (none for genesis).
    handles: Option<String>,
    block_ms: u64,
    /// "exit" (older SDKs) or "stay" (newer SDKs keep the process alive in a failed state).
    halt: String,
    halt_exit_code: i32,
    term_flush_ms: u64,
    term_exit_code: i32,
    trap_term: bool,
    preupgrade_exit_codes: Vec<i32>,
    rpc_port: u16,
    info_write_pause_ms: u64,
    /// Refuse to start when the next block would be below this height (a manual upgrade's binary).
    min_start_height: u64,
    /// Exit on its own with `exit_code` after committing this height (a crash, or a clean end).
    exit_after_height: Option<u64>,
    exit_code: i32,
    /// For its first `rpc_lag_runs` runs, the RPC reports the heights of `rpc_lag_ms` ago (a
    /// node whose RPC lags behind consensus).
    rpc_lag_ms: u64,
    rpc_lag_runs: u32,
    /// How `--halt-height` behaves: "before", "stay-after" or "exit-after" (see above).
    sdk_halt: String,
    /// For `exit-after`: how long the RPC stays up between the halt and the exit.
    shutdown_ms: u64,
    /// For `exit-after`: the status the halt exits with (v0.47 exits 0; v0.46 and earlier halt
    /// by SIGINT and exit 130).
    halt_height_exit_code: i32,
    /// Start a helper that leaves the node's process group and session (`setsid`), as a
    /// daemonising child would.
    spawn_daemon: bool,
    /// Exit with this status right after starting, as a release that cannot run does.
    fail_at_start: Option<i32>,
    /// Serve the gRPC `CurrentPlan` query here (0: no gRPC server).
    grpc_port: u16,
    /// Answer every gRPC call with this status (as a node whose query service is broken does).
    grpc_error: Option<u32>,
    /// Once the application reaches `lie_from_height`, `/abci_info` answers `lie_height` (a raw
    /// JSON value, such as `"59"`) for `lie_ms`, once per run: a stale or confused RPC.
    lie_from_height: Option<u64>,
    lie_height: Value,
    lie_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            version: "genesis".into(),
            ordinal: 1,
            handles: None,
            block_ms: 100,
            halt: "stay".into(),
            halt_exit_code: 1,
            term_flush_ms: 0,
            term_exit_code: 0,
            trap_term: true,
            preupgrade_exit_codes: vec![0],
            rpc_port: 0,
            info_write_pause_ms: 0,
            min_start_height: 0,
            exit_after_height: None,
            exit_code: 0,
            rpc_lag_ms: 0,
            rpc_lag_runs: 0,
            sdk_halt: "before".into(),
            shutdown_ms: 300,
            halt_height_exit_code: 0,
            spawn_daemon: false,
            fail_at_start: None,
            grpc_port: 0,
            grpc_error: None,
            lie_from_height: None,
            lie_height: Value::Null,
            lie_ms: 0,
        }
    }
}

#[derive(Deserialize, Serialize, Clone)]
struct ChainPlan {
    name: String,
    height: u64,
    #[serde(default)]
    info: String,
}

#[derive(Deserialize, Default)]
struct Chain {
    #[serde(default)]
    plans: Vec<ChainPlan>,
}

#[derive(Deserialize, Serialize, Clone)]
struct Span {
    version: String,
    from: u64,
    to: u64,
}

#[derive(Deserialize, Serialize, Default, Clone)]
struct State {
    height: u64,
    ordinal: u32,
    #[serde(default)]
    applied: Vec<String>,
    #[serde(default)]
    history: Vec<Span>,
}

fn monotonic_ns() -> u64 {
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("monotonic clock");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

struct Node {
    cfg: SimConfig,
    /// The plans governance passed (`data/sim-chain.json`).
    chain: Vec<ChainPlan>,
    data: PathBuf,
    /// Where the event log is (`<home>`).
    home: PathBuf,
    state: Mutex<State>,
    /// (when, application height, block store height), oldest first: what the RPC reports.
    heights: Mutex<Vec<(Instant, u64, u64)>>,
    /// How far behind the live heights the RPC reports (see `rpc_lag_ms`).
    rpc_lag: Duration,
    stopping: AtomicBool,
    /// When the RPC began to lie (see `lie_from_height`).
    lie_started: Mutex<Option<Instant>>,
}

impl Node {
    /// Publishes the application's and the block store's heights.
    fn set_heights(&self, app: u64, stored: u64) {
        let mut heights = self.heights.lock().unwrap();
        heights.push((Instant::now(), app, stored));
        if heights.len() > 1000 {
            heights.drain(..500);
        }
    }

    /// The height `/abci_info` answers instead of `app`, while the configured lie lasts.
    fn lie(&self, app: u64) -> Option<Value> {
        let from = self.cfg.lie_from_height?;
        let mut started = self.lie_started.lock().unwrap();
        if app < from {
            return None;
        }
        let since = *started.get_or_insert_with(|| {
            self.event(json!({"event": "rpc-lie", "height": app, "answer": self.cfg.lie_height}));
            Instant::now()
        });
        (since.elapsed() < Duration::from_millis(self.cfg.lie_ms))
            .then(|| self.cfg.lie_height.clone())
    }

    /// The heights as the RPC reports them (lagging when configured).
    fn reported(&self) -> (u64, u64) {
        let heights = self.heights.lock().unwrap();
        let cutoff = Instant::now().checked_sub(self.rpc_lag);
        heights
            .iter()
            .rev()
            .find(|(t, _, _)| cutoff.is_none_or(|c| *t <= c))
            .or(heights.first())
            .map_or((0, 0), |(_, a, s)| (*a, *s))
    }

    /// Stays up in a failed state, as a node whose block failed to execute does: consensus has
    /// stopped, the RPC still answers.
    fn stay_failed(&self) -> ! {
        loop {
            thread::sleep(Duration::from_millis(100));
            if !self.data.is_dir() {
                std::process::exit(0);
            }
        }
    }
}

impl Node {
    fn event(&self, mut value: Value) {
        value["mono_ns"] = json!(monotonic_ns());
        value["version"] = json!(self.cfg.version);
        value["pid"] = json!(std::process::id());
        append_event(&self.home, &value);
    }

    fn save(&self, state: &State) {
        let tmp = self.data.join(".sim-state.json.tmp");
        let bytes = serde_json::to_vec_pretty(state).expect("state serializes");
        if fs::write(&tmp, bytes).is_ok() {
            let _ = fs::rename(&tmp, self.data.join("sim-state.json"));
        }
    }

    /// Records the last height signed, as CometBFT's `priv_validator_state.json` (height as a
    /// string, round, step 3 = precommit).
    fn signed(&self, height: u64) {
        let tmp = self.data.join(".priv_validator_state.json.tmp");
        let bytes = serde_json::to_vec_pretty(
            &json!({"height": height.to_string(), "round": 0, "step": 3}),
        )
        .expect("state serializes");
        if fs::write(&tmp, bytes).is_ok() {
            let _ = fs::rename(&tmp, self.data.join("priv_validator_state.json"));
        }
    }
}

/// The event log in `<home>`, one JSON object per line.
const EVENTS: &str = "sim-events.jsonl";

fn append_event(home: &Path, value: &Value) {
    if let Ok(mut f) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join(EVENTS))
    {
        let _ = writeln!(f, "{value}");
    }
}

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
        "version" => println!("{}", cfg.version),
        "pre-upgrade" => pre_upgrade(&cfg, &args),
        "start" => start(cfg, args, born),
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

fn skip_heights(args: &[String]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut iter = args.iter().peekable();
    while let Some(a) = iter.next() {
        if let Some(v) = a.strip_prefix("--unsafe-skip-upgrades=") {
            out.extend(v.split(',').filter_map(|x| x.parse::<u64>().ok()));
        } else if a == "--unsafe-skip-upgrades" {
            while let Some(n) = iter.peek() {
                let parsed: Vec<u64> = n.split(',').filter_map(|x| x.parse().ok()).collect();
                if n.starts_with('-') || parsed.is_empty() {
                    break;
                }
                out.extend(parsed);
                iter.next();
            }
        }
    }
    out
}

fn home(args: &[String]) -> PathBuf {
    flag_value(args, "--home")
        .or_else(|| std::env::var("DAEMON_HOME").ok())
        .map(PathBuf::from)
        .unwrap_or_else(|| die("no --home and no DAEMON_HOME", 2))
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

fn start(cfg: SimConfig, args: Vec<String>, born: u64) {
    let home = home(&args);
    let data = home.join("data");
    fs::create_dir_all(&data).unwrap_or_else(|e| die(&format!("{}: {e}", data.display()), 2));
    // Block the handled signals in every thread; one thread takes them with sigwait.
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        signals.add(s);
    }
    signals.thread_block().expect("block signals");

    let state: State = fs::read(data.join("sim-state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(State {
            ordinal: cfg.ordinal,
            ..State::default()
        });
    let chain: Chain = fs::read(data.join("sim-chain.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let halt_height: u64 = flag_value(&args, "--halt-height")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let skips = skip_heights(&args);

    let earlier_runs = previous_starts(&home, &cfg.version);
    let node = Arc::new(Node {
        cfg: cfg.clone(),
        chain: chain.plans.clone(),
        data: data.clone(),
        home: home.clone(),
        heights: Mutex::new(vec![(Instant::now(), state.height, state.height)]),
        rpc_lag: if earlier_runs < cfg.rpc_lag_runs {
            Duration::from_millis(cfg.rpc_lag_ms)
        } else {
            Duration::ZERO
        },
        state: Mutex::new(state.clone()),
        stopping: AtomicBool::new(false),
        lie_started: Mutex::new(None),
    });
    node.event(json!({
        "event": "start",
        "args": args,
        "height": state.height,
        "born_ns": born,
        "ld_library_path": std::env::var("LD_LIBRARY_PATH").ok(),
        "notify_socket": std::env::var("NOTIFY_SOCKET").ok(),
        "ppid": nix::unistd::getppid().as_raw(),
    }));
    println!(
        "sim {}: starting at height {} (pid {})",
        cfg.version,
        state.height,
        std::process::id()
    );

    if let Some(code) = cfg.fail_at_start {
        node.event(json!({"event": "failed", "code": code}));
        die("panic: this release cannot start (simulated)", code);
    }
    if state.ordinal > cfg.ordinal {
        node.event(json!({"event": "refused", "reason": "newer data"}));
        die(
            &format!(
                "refusing to start: data was migrated by a newer version (ordinal {} > {})",
                state.ordinal, cfg.ordinal
            ),
            3,
        );
    }
    if cfg.min_start_height > state.height + 1 {
        node.event(json!({"event": "refused", "reason": "too early"}));
        die(
            &format!(
                "refusing to start: this binary is for height {} and the chain is at {}",
                cfg.min_start_height, state.height
            ),
            3,
        );
    }
    if let Some(handles) = &cfg.handles
        && let Some(plan) = chain.plans.iter().find(|p| &p.name == handles)
        && !state.applied.contains(handles)
        && state.height + 1 < plan.height
    {
        node.event(json!({"event": "refused", "reason": "binary updated before trigger"}));
        die(
            &format!(
                "BINARY UPDATED BEFORE TRIGGER! UPGRADE \"{handles}\" - in binary but not executed on chain"
            ),
            2,
        );
    }

    {
        let node = node.clone();
        thread::spawn(move || handle_signals(node, signals));
    }
    if cfg.spawn_daemon {
        use std::os::unix::process::CommandExt;
        let mut helper = std::process::Command::new("sleep");
        helper.arg("300");
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            helper.pre_exec(|| {
                nix::unistd::setsid()
                    .map(drop)
                    .map_err(std::io::Error::from)
            });
        }
        if let Ok(child) = helper.spawn() {
            node.event(json!({"event": "daemon", "daemon_pid": child.id()}));
        }
    }
    if cfg.rpc_port != 0 {
        let node = node.clone();
        thread::spawn(move || serve_rpc(node));
    }
    if cfg.grpc_port != 0 {
        let node = node.clone();
        thread::spawn(move || grpc::serve(node));
    }

    let block = Duration::from_millis(cfg.block_ms);
    let mut next = Instant::now() + block;
    loop {
        thread::sleep(next.saturating_duration_since(Instant::now()));
        next += block;
        if !data.is_dir() {
            std::process::exit(0);
        }
        if node.stopping.load(Ordering::SeqCst) {
            continue;
        }
        let mut state = node.state.lock().unwrap();
        let h = state.height + 1;
        let fails_at = match cfg.sdk_halt.as_str() {
            "before" => halt_height,
            "stay-after" => halt_height + 1,
            _ => 0,
        };
        if halt_height > 0 && fails_at > 0 && h >= fails_at {
            // FinalizeBlock refuses the block after the block store saved it.
            println!(
                "ERR CONSENSUS FAILURE!!! err=\"failed to apply block; error halt per configuration height {halt_height} time 0\""
            );
            node.event(json!({"event": "halt-height", "height": state.height}));
            node.set_heights(state.height, h);
            drop(state);
            node.stay_failed();
        }
        if let Some(plan) = chain.plans.iter().find(|p| {
            p.height == h && !state.applied.contains(&p.name) && !skips.contains(&p.height)
        }) {
            if cfg.handles.as_deref() == Some(plan.name.as_str()) {
                state.applied.push(plan.name.clone());
                println!(
                    "sim {}: applying upgrade \"{}\" at height {h}",
                    cfg.version, plan.name
                );
                node.event(json!({"event": "applied", "name": plan.name, "height": h}));
            } else {
                drop(state);
                upgrade_needed(&node, plan);
            }
        }
        state.height = h;
        state.ordinal = state.ordinal.max(cfg.ordinal);
        match state.history.last_mut() {
            Some(span) if span.version == cfg.version && span.to + 1 == h => span.to = h,
            _ => state.history.push(Span {
                version: cfg.version.clone(),
                from: h,
                to: h,
            }),
        }
        node.set_heights(h, h);
        node.signed(h);
        node.save(&state);
        drop(state);
        if cfg.sdk_halt == "exit-after" && halt_height > 0 && h >= halt_height {
            // v0.47: Commit sees the halt height and the node signals itself; shutting down takes
            // a moment, during which the RPC still answers. The start command exits 0.
            println!("halting node per configuration height {halt_height}");
            node.event(json!({"event": "halt-height", "height": h}));
            thread::sleep(Duration::from_millis(cfg.shutdown_ms));
            std::process::exit(cfg.halt_height_exit_code);
        }
        if cfg.exit_after_height == Some(h) {
            node.event(json!({"event": "exit", "height": h, "code": cfg.exit_code}));
            std::process::exit(cfg.exit_code);
        }
    }
}

/// What x/upgrade does at a plan's height without a handler: record the plan, log, halt.
fn upgrade_needed(node: &Node, plan: &ChainPlan) -> ! {
    let info = json!({"name": plan.name, "time": "0001-01-01T00:00:00Z", "height": plan.height, "info": plan.info});
    node.event(json!({"event": "upgrade-needed", "name": plan.name, "height": plan.height}));
    // A plain truncate-then-write, as the SDK does: a reader may see it empty or half-written.
    let path = node.data.join("upgrade-info.json");
    if let Ok(mut f) = File::create(&path) {
        let bytes = info.to_string().into_bytes();
        if node.cfg.info_write_pause_ms > 0 {
            let half = bytes.len() / 2;
            let _ = f.write_all(&bytes[..half]);
            let _ = f.flush();
            thread::sleep(Duration::from_millis(node.cfg.info_write_pause_ms));
            // Logged just before the rest is written: nothing can read the whole file earlier.
            node.event(json!({"event": "upgrade-info-rest", "name": plan.name}));
            let _ = f.write_all(&bytes[half..]);
        } else {
            let _ = f.write_all(&bytes);
        }
    }
    println!(
        "UPGRADE \"{}\" NEEDED at height: {}: {}",
        plan.name, plan.height, plan.info
    );
    // x/upgrade stops the block at the plan height from executing; the block store holds it.
    node.set_heights(plan.height - 1, plan.height);
    if node.cfg.halt == "exit" {
        std::process::exit(node.cfg.halt_exit_code);
    }
    node.stay_failed()
}

fn handle_signals(node: Arc<Node>, set: SigSet) {
    loop {
        let Ok(sig) = set.wait() else { continue };
        node.event(json!({"event": "signal", "signal": sig.as_str()}));
        match sig {
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT => {
                if !node.cfg.trap_term {
                    // Die by the signal, as a node without a handler would.
                    unsafe {
                        let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
                    }
                    let mut one = SigSet::empty();
                    one.add(sig);
                    let _ = nix::sys::signal::pthread_sigmask(
                        SigmaskHow::SIG_UNBLOCK,
                        Some(&one),
                        None,
                    );
                    let _ = nix::sys::signal::raise(sig);
                }
                node.stopping.store(true, Ordering::SeqCst);
                let state = node.state.lock().unwrap().clone();
                // Flushing the stores takes a while; a SIGKILL in this window loses the flush.
                thread::sleep(Duration::from_millis(node.cfg.term_flush_ms));
                node.save(&state);
                node.event(json!({"event": "shutdown", "clean": true, "height": state.height}));
                println!(
                    "sim {}: stopped cleanly at height {}",
                    node.cfg.version, state.height
                );
                std::process::exit(node.cfg.term_exit_code);
            }
            _ => println!("sim {}: received {}", node.cfg.version, sig.as_str()),
        }
    }
}

/// How many times this version started before, from the event log.
fn previous_starts(home: &Path, version: &str) -> u32 {
    let events = fs::read_to_string(home.join(EVENTS)).unwrap_or_default();
    events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "start" && e["version"] == version)
        .count() as u32
}

/// The node's P2P id: 20 bytes in hex, as CometBFT derives from `config/node_key.json`; here
/// from the home folder, so every version of one home is the same node.
fn node_id(home: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut id = String::new();
    for round in 0u8..3 {
        for b in home.as_os_str().as_encoded_bytes().iter().chain([&round]) {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        id.push_str(&format!("{hash:016x}"));
    }
    id.truncate(40);
    id
}

fn serve_rpc(node: Arc<Node>) {
    let addr = format!("127.0.0.1:{}", node.cfg.rpc_port);
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match TcpListener::bind(&addr) {
            Ok(l) => break l,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Err(e) => die(&format!("cannot serve RPC on {addr}: {e}"), 4),
        }
    };
    for stream in listener.incoming().flatten() {
        let node = node.clone();
        thread::spawn(move || answer(&node, stream));
    }
}

fn answer(node: &Node, mut stream: TcpStream) {
    let mut line = String::new();
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (app, stored) = node.reported();
    let route = path.split('?').next().unwrap_or("");
    let body = match route {
        "/status" => json!({"jsonrpc": "2.0", "id": -1, "result": {
            "node_info": {"id": node_id(&node.home), "network": "sim-1", "version": "0.38.0", "moniker": node.cfg.version},
            "sync_info": {"latest_block_height": stored.to_string(), "catching_up": false},
        }}),
        "/block" => {
            json!({"jsonrpc": "2.0", "id": -1, "result": {"block": {"header": {"height": stored.to_string(), "chain_id": "sim-1"}}}})
        }
        "/abci_query"
            if path.contains("cosmos.upgrade.v1beta1.Query%2FCurrentPlan")
                || path.contains("cosmos.upgrade.v1beta1.Query/CurrentPlan") =>
        {
            let message = grpc::current_plan(node);
            let mut response = json!({"height": app.to_string(), "codespace": "", "log": ""});
            // Empty bytes are left out, as CometBFT's JSON does.
            if !message.is_empty() {
                response["value"] = json!(grpc::base64(&message));
            }
            json!({"jsonrpc": "2.0", "id": -1, "result": {"response": response}})
        }
        // Amino JSON leaves out zero values, as CometBFT does.
        "/abci_info" => {
            let mut response =
                json!({"data": "sim", "version": node.cfg.version, "app_version": "1"});
            if app > 0 {
                response["last_block_height"] = json!(app.to_string());
            }
            if let Some(lie) = node.lie(app) {
                response["last_block_height"] = lie;
            }
            json!({"jsonrpc": "2.0", "id": -1, "result": {"response": response}})
        }
        _ => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
    };
    let body = body.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
