//! `start`: the checks a real node makes before it runs, its helper threads, and the block loop
//! with each SDK line's halt and x/upgrade's halt at a plan's height.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::config::{Chain, ChainPlan, SimConfig, Span, State};
use crate::node::{Node, previous_starts};
use crate::{die, flag_value, grpc, home, rpc};

/// The halt the command line asks for: `--halt-height` (0: none) and the heights whose plans
/// are skipped (`--unsafe-skip-upgrades`).
struct Halt {
    height: u64,
    skips: Vec<u64>,
}

pub(crate) fn start(cfg: SimConfig, args: Vec<String>, born: u64) {
    let home = home(&args);
    let data = home.join("data");
    fs::create_dir_all(&data).unwrap_or_else(|e| die(&format!("{}: {e}", data.display()), 2));
    let signals = block_signals();

    let state: State = read_json(&data.join("sim-state.json")).unwrap_or(State {
        ordinal: cfg.ordinal,
        ..State::default()
    });
    let halt = Halt {
        height: flag_value(&args, "--halt-height")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        skips: skip_heights(&args),
    };

    let node = new_node(&cfg, &home, &data, &state);
    let chain = Chain {
        plans: node.plans(),
    };
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
    refuse_what_a_node_refuses(&node, &state, &chain);
    spawn_helpers(&node, signals);
    commit_blocks(&node, &halt)
}

/// Blocks the handled signals in every thread; one thread takes them with sigwait.
fn block_signals() -> SigSet {
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
    signals
}

/// A JSON file of the data folder, if it is there and reads.
fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

fn new_node(cfg: &SimConfig, home: &Path, data: &Path, state: &State) -> Arc<Node> {
    let earlier_runs = previous_starts(home, &cfg.version);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let chain: Chain = read_json(&data.join("sim-chain.json")).unwrap_or_default();
    Arc::new(Node {
        cfg: cfg.clone(),
        chain: Mutex::new(chain.plans),
        proposals: Mutex::new(Vec::new()),
        genesis_ms: now_ms - (state.height as i64).saturating_mul(cfg.block_ms as i64),
        data: data.to_path_buf(),
        home: home.to_path_buf(),
        heights: Mutex::new(vec![(Instant::now(), state.height, state.height)]),
        rpc_lag: if earlier_runs < cfg.rpc_lag_runs {
            Duration::from_millis(cfg.rpc_lag_ms)
        } else {
            Duration::ZERO
        },
        state: Mutex::new(state.clone()),
        stopping: AtomicBool::new(false),
        lie_started: Mutex::new(None),
        committed: Mutex::new(std::collections::BTreeMap::new()),
    })
}

/// Exits as a node does that cannot or must not run: a release that fails at start, data a
/// newer version migrated, a binary for a later height, a handler before its plan's height.
fn refuse_what_a_node_refuses(node: &Node, state: &State, chain: &Chain) {
    let cfg = &node.cfg;
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
}

/// The signal thread, the daemonising helper, and the RPC and gRPC servers, as configured.
fn spawn_helpers(node: &Arc<Node>, signals: SigSet) {
    let cfg = &node.cfg;
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
        thread::spawn(move || rpc::serve_rpc(node));
    }
    if cfg.grpc_port != 0 {
        let node = node.clone();
        thread::spawn(move || grpc::serve(node));
    }
}

/// Commits a block every `block_ms` until the node halts, exits or its data folder goes. The
/// plans are read again for every block: one cancelled while the node runs does not halt it.
fn commit_blocks(node: &Node, halt: &Halt) -> ! {
    let cfg = &node.cfg;
    let block = Duration::from_millis(cfg.block_ms);
    let mut next = Instant::now() + block;
    let resume = Instant::now() + Duration::from_millis(cfg.stall_ms);
    if cfg.stall_ms > 0 {
        node.event(json!({"event": "stall", "ms": cfg.stall_ms}));
    }
    loop {
        thread::sleep(next.saturating_duration_since(Instant::now()));
        next += block;
        if !node.data.is_dir() {
            std::process::exit(0);
        }
        if node.stopping.load(Ordering::SeqCst) || Instant::now() < resume {
            continue;
        }
        let mut state = node.state.lock().unwrap();
        let h = state.height + 1;
        let fails_at = match cfg.sdk_halt.as_str() {
            "before" => halt.height,
            "stay-after" => halt.height + 1,
            _ => 0,
        };
        if halt.height > 0 && fails_at > 0 && h >= fails_at {
            // FinalizeBlock refuses the block after the block store saved it.
            println!(
                "ERR CONSENSUS FAILURE!!! err=\"failed to apply block; error halt per configuration height {} time 0\"",
                halt.height
            );
            node.event(json!({"event": "halt-height", "height": state.height}));
            node.set_heights(state.height, h);
            drop(state);
            node.stay_failed();
        }
        let plans = node.plans();
        if let Some(plan) = plans.iter().find(|p| {
            p.height == h && !state.applied.contains(&p.name) && !halt.skips.contains(&p.height)
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
                upgrade_needed(node, plan);
            }
        }
        commit(node, state, h);
        exit_if_configured(node, halt, h);
    }
}

/// Commits height `h`: the state, its history span, the heights the RPC reports, the signing
/// record.
fn commit(node: &Node, mut state: MutexGuard<'_, State>, h: u64) {
    let cfg = &node.cfg;
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
    if cfg.signs && cfg.voting_power > 0 {
        node.signed(h);
    } else {
        state.unsigned_at(h);
    }
    node.committed_at(h);
    node.save(&state);
}

/// After committing `h`: the v0.47 halt (`exit-after`), or the configured exit.
fn exit_if_configured(node: &Node, halt: &Halt, h: u64) {
    let cfg = &node.cfg;
    if cfg.sdk_halt == "exit-after" && halt.height > 0 && h >= halt.height {
        // v0.47: Commit sees the halt height and the node signals itself; shutting down takes
        // a moment, during which the RPC still answers. The start command exits 0.
        println!("halting node per configuration height {}", halt.height);
        node.event(json!({"event": "halt-height", "height": h}));
        thread::sleep(Duration::from_millis(cfg.shutdown_ms));
        std::process::exit(cfg.halt_height_exit_code);
    }
    if cfg.exit_after_height == Some(h) {
        node.event(json!({"event": "exit", "height": h, "code": cfg.exit_code}));
        std::process::exit(cfg.exit_code);
    }
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
