//! What the journal records: the upgrade under way and its phases, refusals, waits, heights seen,
//! the finished upgrade with its health verdict, failed binaries and a rollback under way.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::tree::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Detect,
    Stop,
    Delay,
    Backup,
    CustomPreupgrade,
    Resolve,
    Fetch,
    Wait,
    Swap,
    AppPreupgrade,
    Launch,
    Health,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Detect => "detect",
            Phase::Stop => "stop",
            Phase::Delay => "delay",
            Phase::Backup => "backup",
            Phase::CustomPreupgrade => "custom-preupgrade",
            Phase::Resolve => "resolve",
            Phase::Fetch => "fetch",
            Phase::Wait => "wait",
            Phase::Swap => "swap",
            Phase::AppPreupgrade => "app-preupgrade",
            Phase::Launch => "launch",
            Phase::Health => "health",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub phase: Phase,
    pub ms: f64,
    /// When it ended (Unix ms; 0 in a journal written before this was kept): with `ms`, where
    /// the phase sits on the upgrade's timeline.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub end_unix_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A moment of the chain after an upgrade: a block, and its time (the chain's: a header's time,
/// a vote's timestamp).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub height: u64,
    pub unix_ms: u64,
    /// The validator whose vote it is (for a vote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<String>,
}

/// An upgrade under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub plan: Plan,
    /// The folder under `upgrades/` the plan switches to.
    pub dir_name: String,
    /// The folder `current` pointed at when the upgrade began.
    pub from: String,
    pub phase: Phase,
    pub started_unix_ms: u64,
    #[serde(default)]
    pub backup: Option<PathBuf>,
    #[serde(default)]
    pub phases: Vec<PhaseTiming>,
    /// How many times a supervisor had to resume this upgrade after being interrupted.
    #[serde(default)]
    pub resumed: u32,
    /// Set when the upgrade was refused (no binary, a policy said no): a later start retries it
    /// only when something it depended on changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Set while a resolver's `not-before` holds the switch back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
}

/// A switch held back until a time a resolver named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub until_unix: u64,
    pub by: String,
    pub reason: String,
}

/// Why an upgrade was refused, and the state of what it depended on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub reason: String,
    pub at_unix_ms: u64,
    /// A digest of the configuration, the plugin configuration and the upgrade folder's binary
    /// at the time: equal digests mean nothing the operator could fix has changed.
    pub inputs: String,
}

/// The application height last read while a manual upgrade was pending, kept so that a restart
/// knows the node already reached the block before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenHeight {
    pub upgrade: String,
    pub upgrade_height: u64,
    pub app_height: u64,
}

/// What the chain did after an upgrade, as it is learnt.
#[derive(Debug, Clone, PartialEq)]
pub enum Resumed {
    FirstBlock(Mark),
    FirstVote(Mark),
    /// No first vote will be recorded, and why.
    NoVote(String),
}

/// The last upgrade that completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub plan: Plan,
    pub from: String,
    pub to: String,
    pub started_unix_ms: u64,
    pub finished_unix_ms: u64,
    pub phases: Vec<PhaseTiming>,
    #[serde(default)]
    pub backup: Option<PathBuf>,
    #[serde(default)]
    pub resumed: u32,
    /// The health check's verdict on the upgraded node, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthRecord>,
    /// Whether the upgraded node is still on probation: it has not yet proved healthy (or
    /// stayed up for `WASMVISOR_UPGRADE_PROBATION`), so a failure of it is a failed upgrade.
    /// A supervisor restarted meanwhile puts the next launch on probation again.
    #[serde(default)]
    pub probation: bool,
    /// When the probation of the launched binary ends (Unix ms): a restart after it does not put
    /// the node on probation again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probation_until_unix_ms: Option<u64>,
    /// Set when its new binary failed and the upgrade was rolled back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
    /// The chain's first block after the upgrade height, once the node reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_block: Option<Mark>,
    /// The node's validator's first vote after the upgrade height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_vote: Option<Mark>,
    /// Why no first vote will be recorded: not in the active set, none within the hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_vote: Option<String>,
}

impl Finished {
    /// The upgrade's downtime, in ms: every phase from the halt to the launch (the health check
    /// runs with the new node up).
    pub fn downtime_ms(&self) -> f64 {
        self.phases
            .iter()
            .filter(|p| p.phase != Phase::Health)
            .map(|p| p.ms)
            .sum()
    }
}

/// The outcome of the post-upgrade health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthRecord {
    pub healthy: bool,
    pub detail: String,
    /// Milliseconds from the launch to the verdict.
    pub after_ms: f64,
    /// Milliseconds from the launch to the first answer of the check.
    pub first_answer_ms: Option<f64>,
    pub checks: u32,
    /// The health check whose unhealthy answer this is (none for a healthy node, or for a
    /// deadline that passed): its `on-unhealthy` is what follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// An upgrade whose new binary failed and was rolled back. That binary (by its sha256) is never
/// run for that upgrade again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    pub plan: Plan,
    /// The upgrade folder.
    pub dir: String,
    /// The lower-case hex sha256 of the binary that failed (empty if it could not be read).
    pub sha256: String,
    /// The binary's identity on disk (device, inode, size, modification time), which also
    /// recognises it when it could not be read.
    #[serde(default)]
    pub fingerprint: String,
    pub reason: String,
    /// The backup data/ was restored from (none: data/ was left as the new binary left it).
    pub restored: Option<PathBuf>,
    /// Why data/ was not restored, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrestored: Option<String>,
    pub at_unix_ms: u64,
}

/// A rollback under way: a start that finds one finishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollback {
    pub plan: Plan,
    /// The upgrade folder that failed, and the folder `current` pointed at before.
    pub dir: String,
    pub from: String,
    pub backup: Option<PathBuf>,
    pub sha256: String,
    #[serde(default)]
    pub fingerprint: String,
    pub reason: String,
    /// Set once data/ is restored (a resumed rollback does not restore twice).
    #[serde(default)]
    pub restored: bool,
    /// Why data/ was not restored (no backup, or one that cannot be used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrestored: Option<String>,
    pub started_unix_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub active: Option<Active>,
    pub last: Option<Finished>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<SeenHeight>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// Upgrades rolled back, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failed>,
}
