//! The running node as its threads share it: its heights as the RPC reports them, its state and
//! signing record on disk, and the event log in `<home>`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::{Chain, ChainPlan, SimConfig, SimProposal, State};

pub(crate) fn monotonic_ns() -> u64 {
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("monotonic clock");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

pub(crate) struct Node {
    pub(crate) cfg: SimConfig,
    /// The plans governance passed, as last read from `data/sim-chain.json` (see `plans`).
    pub(crate) chain: Mutex<Vec<ChainPlan>>,
    /// The proposals in voting, as last read from `data/sim-proposals.json`.
    pub(crate) proposals: Mutex<Vec<SimProposal>>,
    /// The time of block 0 (Unix ms), so that block h is `block_ms` × h later.
    pub(crate) genesis_ms: i64,
    pub(crate) data: PathBuf,
    /// Where the event log is (`<home>`).
    pub(crate) home: PathBuf,
    pub(crate) state: Mutex<State>,
    /// (when, application height, block store height), oldest first: what the RPC reports.
    pub(crate) heights: Mutex<Vec<(Instant, u64, u64)>>,
    /// How far behind the live heights the RPC reports (see `rpc_lag_ms`).
    pub(crate) rpc_lag: Duration,
    pub(crate) stopping: AtomicBool,
    /// When the RPC began to lie (see `lie_from_height`).
    pub(crate) lie_started: Mutex<Option<Instant>>,
    /// When this run committed each of its blocks (Unix ms).
    pub(crate) committed: Mutex<std::collections::BTreeMap<u64, i64>>,
}

impl Node {
    /// The plans governance passed, as `data/sim-chain.json` holds them now: a test may add,
    /// replace or cancel one while the node runs, and the CurrentPlan answers and the halt
    /// follow. No file: no plan; a file that does not parse (half written): the last read.
    pub(crate) fn plans(&self) -> Vec<ChainPlan> {
        let mut last = self.chain.lock().unwrap();
        let now = match fs::read(self.data.join("sim-chain.json")) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(_) => return last.clone(),
            Ok(bytes) => match serde_json::from_slice::<Chain>(&bytes) {
                Ok(chain) => chain.plans,
                Err(_) => return last.clone(),
            },
        };
        let names = |plans: &[ChainPlan]| -> Vec<(String, u64, String)> {
            plans
                .iter()
                .map(|p| (p.name.clone(), p.height, p.info.clone()))
                .collect()
        };
        if names(&now) != names(&last) {
            let plans: Vec<Value> = now
                .iter()
                .map(|p| json!({"name": p.name, "height": p.height}))
                .collect();
            self.event(json!({"event": "chain-plans", "plans": plans}));
            *last = now;
        }
        last.clone()
    }

    /// The proposals in their voting period, as `data/sim-proposals.json` holds them now (a
    /// JSON list); as `plans`, no file is none and a file that does not parse the last read.
    pub(crate) fn proposals(&self) -> Vec<SimProposal> {
        let mut last = self.proposals.lock().unwrap();
        match fs::read(self.data.join("sim-proposals.json")) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last.clear(),
            Err(_) => {}
            Ok(bytes) => {
                if let Ok(list) = serde_json::from_slice(&bytes) {
                    *last = list;
                }
            }
        }
        last.clone()
    }

    /// Block `h`'s time (Unix ms): when this run committed it, else `block_ms` × h after
    /// genesis.
    pub(crate) fn block_time_ms(&self, h: u64) -> i64 {
        if let Some(t) = self.committed.lock().unwrap().get(&h) {
            return *t;
        }
        self.genesis_ms + (h as i64).saturating_mul(self.cfg.block_ms as i64)
    }

    /// Records the time of block `h`, just committed.
    pub(crate) fn committed_at(&self, h: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut committed = self.committed.lock().unwrap();
        committed.insert(h, now);
        if committed.len() > 10_000 {
            committed.pop_first();
        }
    }

    /// Publishes the application's and the block store's heights.
    pub(crate) fn set_heights(&self, app: u64, stored: u64) {
        let mut heights = self.heights.lock().unwrap();
        heights.push((Instant::now(), app, stored));
        if heights.len() > 1000 {
            heights.drain(..500);
        }
    }

    /// The height `/abci_info` answers instead of `app`, while the configured lie lasts.
    pub(crate) fn lie(&self, app: u64) -> Option<Value> {
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
    pub(crate) fn reported(&self) -> (u64, u64) {
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
    pub(crate) fn stay_failed(&self) -> ! {
        loop {
            thread::sleep(Duration::from_millis(100));
            if !self.data.is_dir() {
                std::process::exit(0);
            }
        }
    }
}

impl Node {
    pub(crate) fn event(&self, mut value: Value) {
        value["mono_ns"] = json!(monotonic_ns());
        value["version"] = json!(self.cfg.version);
        value["pid"] = json!(std::process::id());
        append_event(&self.home, &value);
    }

    pub(crate) fn save(&self, state: &State) {
        let tmp = self.data.join(".sim-state.json.tmp");
        let bytes = serde_json::to_vec_pretty(state).expect("state serializes");
        if fs::write(&tmp, bytes).is_ok() {
            let _ = fs::rename(&tmp, self.data.join("sim-state.json"));
        }
    }

    /// Records the last height signed, as CometBFT's `priv_validator_state.json` (height as a
    /// string, round, step 3 = precommit).
    pub(crate) fn signed(&self, height: u64) {
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
pub(crate) const EVENTS: &str = "sim-events.jsonl";

pub(crate) fn append_event(home: &Path, value: &Value) {
    if let Ok(mut f) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join(EVENTS))
    {
        // One write per line: processes append at once (the node, and a supervisor's preflight
        // running `version`), and a line written piecewise would interleave with theirs.
        let _ = f.write_all(format!("{value}\n").as_bytes());
    }
}

/// How many times this version started before, from the event log.
pub(crate) fn previous_starts(home: &Path, version: &str) -> u32 {
    let events = fs::read_to_string(home.join(EVENTS)).unwrap_or_default();
    events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "start" && e["version"] == version)
        .count() as u32
}
