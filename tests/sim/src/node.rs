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

use crate::config::{ChainPlan, SimConfig, State};

pub(crate) fn monotonic_ns() -> u64 {
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("monotonic clock");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

pub(crate) struct Node {
    pub(crate) cfg: SimConfig,
    /// The plans governance passed (`data/sim-chain.json`).
    pub(crate) chain: Vec<ChainPlan>,
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
}

impl Node {
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
        let _ = writeln!(f, "{value}");
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
