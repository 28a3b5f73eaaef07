//! `status --json`, version 1: the output's own types, converted from what `status` found.
//!
//! The journal and the tree keep their types for themselves: a change to what is written on disk
//! changes a conversion here, never silently a key a script reads. The format is documented key
//! by key in `docs/status-json.md`. Adding a key keeps version 1; removing, renaming or changing
//! the meaning of one makes version 2.
//!
//! The fields of each struct are declared in the order of their keys' names (after `version`,
//! which comes first): the output is written in declaration order, so every object lists its
//! keys sorted, as `status --json` did when it went through a sorted map.

use std::path::PathBuf;

use serde::Serialize;

mod convert;

/// The version of the format this file writes.
pub const VERSION: u32 = 1;

/// The whole output: one JSON object.
#[derive(Debug, Serialize)]
pub struct StatusV1 {
    /// The format's version: `1`. Always the first key.
    pub version: u32,
    /// The binary `current` points at.
    pub current: CurrentV1,
    /// `DAEMON_HOME`.
    pub daemon_home: PathBuf,
    /// Upgrades whose new binary failed and was rolled back, oldest first.
    pub failed_upgrades: Vec<FailedV1>,
    /// The last upgrade that completed (`null`: none yet).
    pub last_upgrade: Option<LastUpgradeV1>,
    /// The manual upgrades scheduled in `upgrade-info.json.batch`, lowest height first.
    pub manual_upgrades: Vec<PlanV1>,
    /// The next upgrade that will happen and whether the node will come back from it, as the
    /// supervisor last saw it (`null`: none known, or no supervisor has looked).
    pub next_upgrade: Option<NextUpgradeV1>,
    /// The upgrade the supervisor would carry out next (`null`: none).
    pub pending: Option<PendingV1>,
    /// A rollback under way, which the next start of the supervisor finishes (`null`: none).
    pub rollback_in_progress: Option<RollbackV1>,
    /// The folders under `upgrades/` that hold a binary.
    pub staged: Vec<String>,
    /// The process id of the supervisor holding the home's lock (`null`: none runs; `0`: one
    /// runs whose id could not be read).
    pub supervisor_pid: Option<i32>,
    /// Every upcoming upgrade the supervisor knows, proposals included, lowest height first
    /// (empty: none known, or no supervisor has looked).
    pub upcoming: Vec<UpcomingV1>,
    /// An upgrade started and not finished: under way, refused or waiting (`null`: none).
    pub upgrade_in_progress: Option<ActiveV1>,
    /// `data/upgrade-info.json` as read (`null`: there is none).
    pub upgrade_info: Option<UpgradeInfoV1>,
}

/// The next upgrade and its readiness.
#[derive(Debug, Serialize)]
pub struct NextUpgradeV1 {
    /// When the supervisor looked (Unix seconds).
    pub as_of_unix: u64,
    /// The staged binary, relative to the cosmovisor folder (`null`: none staged).
    pub binary: Option<String>,
    /// Seconds to its height from the chain's recent pace, as of now (`null`: unknown).
    pub eta_seconds: Option<u64>,
    pub height: u64,
    pub name: String,
    /// What the binary printed when the preflight ran it (`null`: not run).
    pub preflight: Option<String>,
    /// Prepared and preflighted (`null`: not prepared yet).
    pub ready: Option<bool>,
    /// Why it is not ready (or not prepared).
    pub reason: Option<String>,
    pub sha256: Option<String>,
    /// `chain`, `manual`, `upgrade-info` (or `proposal`, never the next one).
    pub source: String,
}

/// An upcoming upgrade.
#[derive(Debug, Serialize)]
pub struct UpcomingV1 {
    pub eta_seconds: Option<u64>,
    pub height: u64,
    pub name: String,
    /// The proposal's id, for a proposal in voting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<u64>,
    pub ready: Option<bool>,
    pub reason: Option<String>,
    /// `chain`, `proposal`, `manual` or `upgrade-info`.
    pub source: String,
}

/// An upgrade plan.
#[derive(Debug, Serialize)]
pub struct PlanV1 {
    /// The height the chain halts at for it.
    pub height: u64,
    /// The plan's `info` (a JSON object in the plan is given as its JSON text); absent when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub info: String,
    /// The plan's name as the chain gave it.
    pub name: String,
}

/// The binary `current` points at.
#[derive(Debug, Serialize)]
pub struct CurrentV1 {
    /// The plan that was applied when `current` was switched to its folder (`null`: genesis, or
    /// no record).
    pub applied_plan: Option<PlanV1>,
    /// The path of the binary.
    pub binary: PathBuf,
    /// Whether that binary exists and is executable.
    pub binary_ok: bool,
    /// Which folder: `genesis`, or the upgrade's folder name under `upgrades/`.
    pub upgrade: String,
}

/// `data/upgrade-info.json` as read.
#[derive(Debug, Serialize)]
pub struct UpgradeInfoV1 {
    /// The plan's height, when `state` is `valid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// The plan's name, when `state` is `valid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why it is not a valid plan, when `state` is `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `valid`, `invalid` (complete JSON that is no plan) or `incomplete` (empty or cut short:
    /// the node is still writing it).
    pub state: &'static str,
}

/// The upgrade the supervisor would carry out next.
#[derive(Debug, Serialize)]
pub struct PendingV1 {
    /// Why its staged binary cannot be read, when that is what blocks it (an unreadable binary
    /// counts as the one that failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_binary_unreadable: Option<String>,
    /// Present when its staged binary is one that failed for it before: that binary's sha256
    /// (empty when it cannot be read). The supervisor waits for a different one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by_failed_binary: Option<String>,
    /// Its height.
    pub height: u64,
    /// `governance` (from `upgrade-info.json`) or `manual` (from the batch file).
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

/// How long one phase of an upgrade took.
#[derive(Debug, Serialize)]
pub struct PhaseTimingV1 {
    /// Milliseconds, to the microsecond.
    pub ms: f64,
    /// The phase: `detect`, `stop`, `delay`, `backup`, `custom-preupgrade`, `resolve`, `fetch`,
    /// `wait`, `swap`, `app-preupgrade`, `launch` or `health`.
    pub phase: &'static str,
}

/// An upgrade started and not finished.
#[derive(Debug, Serialize)]
pub struct ActiveV1 {
    /// The backup of `data/` taken for it (`null`: none, or not yet).
    pub backup: Option<PathBuf>,
    /// The folder under `upgrades/` it switches to.
    pub dir_name: String,
    /// The folder `current` pointed at when it began.
    pub from: String,
    /// The phase it is in (or was in when the supervisor stopped).
    pub phase: &'static str,
    /// The phases done so far, in order.
    pub phases: Vec<PhaseTimingV1>,
    /// Its plan.
    pub plan: PlanV1,
    /// Present when it was refused: a start retries it only when what it depended on changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<RefusalV1>,
    /// How many times a supervisor resumed it after being interrupted.
    pub resumed: u32,
    /// When it began (Unix milliseconds).
    pub started_unix_ms: u64,
    /// Present while a resolver's `not-before` holds the switch back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitingV1>,
}

/// Why an upgrade was refused.
#[derive(Debug, Serialize)]
pub struct RefusalV1 {
    /// When (Unix milliseconds).
    pub at_unix_ms: u64,
    /// A digest of what the refusal depended on (configuration, plugin configuration, the
    /// staged binary): while it is the same, nothing the operator could fix has changed.
    pub inputs: String,
    /// Why, for the operator.
    pub reason: String,
}

/// A switch held back until a time a resolver named.
#[derive(Debug, Serialize)]
pub struct WaitingV1 {
    /// The resolver plugin that deferred it.
    pub by: String,
    /// Its reason.
    pub reason: String,
    /// Until when (Unix seconds).
    pub until_unix: u64,
}

/// The last upgrade that completed.
#[derive(Debug, Serialize)]
pub struct LastUpgradeV1 {
    /// The backup of `data/` taken for it (`null`: none).
    pub backup: Option<PathBuf>,
    /// Its downtime as a validator counts it, in milliseconds from the halt.
    pub downtime_ms: DowntimeV1,
    /// When it finished (Unix milliseconds): the commit, then the launch of the new binary.
    pub finished_unix_ms: u64,
    /// The folder `current` pointed at before.
    pub from: String,
    /// The health check's verdict on the upgraded node; absent until there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthV1>,
    /// Why no first vote will be known (not in the active set, none within the hour); absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_vote: Option<String>,
    /// Each phase's duration, in order; `launch` and `health` are added after the commit.
    pub phases: Vec<PhaseTimingV1>,
    /// Its plan.
    pub plan: PlanV1,
    /// Whether the new binary is still on probation: a failure of it is a failed upgrade.
    pub probation: bool,
    /// When the probation ends (Unix milliseconds); absent until the new binary is launched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probation_until_unix_ms: Option<u64>,
    /// How many times a supervisor resumed it after being interrupted.
    pub resumed: u32,
    /// `true` when its new binary failed and it was rolled back; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
    /// When it began (Unix milliseconds).
    pub started_unix_ms: u64,
    /// The halt, each phase and the chain's marks after the switch, in order.
    pub timeline: Vec<TimelineV1>,
    /// The folder under `upgrades/` it switched to.
    pub to: String,
    /// The phases' total in milliseconds, without `health` (the time to the check's first
    /// answer, not a step of the switch).
    pub total_ms: f64,
}

/// An upgrade's downtime until each end a validator counts (milliseconds from the halt;
/// `null` until known).
#[derive(Debug, Serialize)]
pub struct DowntimeV1 {
    /// Until the chain's first block after the upgrade height was committed.
    pub first_block: Option<f64>,
    /// Until this validator's first vote after the upgrade height.
    pub first_signature: Option<f64>,
    /// Until the new binary's start.
    pub start: Option<f64>,
}

/// One row of an upgrade's timeline: a phase, or a moment (`from_ms` equal to `to_ms`).
#[derive(Debug, Serialize)]
pub struct TimelineV1 {
    /// Where it begins, in milliseconds after the halt.
    pub from_ms: f64,
    /// The block it concerns (the halt, the first block, the first vote); absent for a phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Where it ends.
    pub to_ms: f64,
    /// `halt`, a phase's name, `first block` or `first vote`.
    pub what: &'static str,
}

/// The health check's verdict on an upgraded node.
#[derive(Debug, Serialize)]
pub struct HealthV1 {
    /// Milliseconds from the launch to the verdict.
    pub after_ms: f64,
    /// How many checks were made.
    pub checks: u32,
    /// What the check said.
    pub detail: String,
    /// Milliseconds from the launch to the check's first answer (`null`: none came).
    pub first_answer_ms: Option<f64>,
    /// The verdict.
    pub healthy: bool,
}

/// A rollback under way.
#[derive(Debug, Serialize)]
pub struct RollbackV1 {
    /// The backup `data/` is restored from (`null`: none).
    pub backup: Option<PathBuf>,
    /// The upgrade folder whose binary failed.
    pub dir: String,
    /// The failed binary's identity on disk, which recognises it even when it cannot be read.
    pub fingerprint: String,
    /// The folder `current` goes back to.
    pub from: String,
    /// The plan of the upgrade rolled back.
    pub plan: PlanV1,
    /// Why the new binary counts as failed.
    pub reason: String,
    /// Whether `data/` is restored already.
    pub restored: bool,
    /// The failed binary's lower-case hex sha256 (empty: it could not be read).
    pub sha256: String,
    /// When the rollback began (Unix milliseconds).
    pub started_unix_ms: u64,
    /// Why `data/` is not restored (no backup, or one that cannot be used); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrestored: Option<String>,
}

/// An upgrade whose new binary failed and was rolled back: that binary is never run for that
/// upgrade again.
#[derive(Debug, Serialize)]
pub struct FailedV1 {
    /// When the rollback completed (Unix milliseconds).
    pub at_unix_ms: u64,
    /// The upgrade folder.
    pub dir: String,
    /// The failed binary's identity on disk, which recognises it even when it cannot be read.
    pub fingerprint: String,
    /// The plan of the upgrade.
    pub plan: PlanV1,
    /// Why the new binary counts as failed.
    pub reason: String,
    /// The backup `data/` was restored from (`null`: `data/` was left as the new binary left it).
    pub restored: Option<PathBuf>,
    /// The failed binary's lower-case hex sha256 (empty: it could not be read).
    pub sha256: String,
    /// Why `data/` was not restored; absent when it was, or when no reason was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrestored: Option<String>,
}

impl StatusV1 {
    /// The output: pretty-printed, keys in declaration order. Fails only on a path that is not
    /// UTF-8, which JSON cannot carry.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}
