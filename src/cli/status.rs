//! `wasmvisor status`: what runs, what is applied, what is pending, what is staged, and how long
//! the last upgrade took, phase by phase — one `Status`, rendered as text (`text.rs`) or as the
//! versioned JSON of `json.rs`. Reads files only; safe to run beside a supervisor.

mod json;
mod svg;
mod text;
mod timeline;

use std::path::PathBuf;

use crate::ahead::Source;
use crate::ahead::record::{ChainSeen, Entry, Record};
use crate::config::Config;
use crate::output;
use crate::supervisor::decide::Files;
use crate::tree::{Layout, Plan, Read, lock};
use crate::upgrade::journal::{self, Active, Failed, Finished, Rollback};
use crate::upgrade::{FailedBefore, failed_before_blocking};

pub use json::StatusV1;

/// What `status` found, in the journal's and the tree's own types; `json.rs` turns it into the
/// output format, `text.rs` into lines.
pub struct Status {
    pub daemon_home: PathBuf,
    pub current: CurrentBinary,
    /// `data/upgrade-info.json` as found (`None` when absent).
    pub upgrade_info: Option<UpgradeInfo>,
    pub pending: Option<Pending>,
    pub manual_upgrades: Vec<Plan>,
    pub staged: Vec<String>,
    pub upgrade_in_progress: Option<Active>,
    pub last_upgrade: Option<LastUpgrade>,
    /// A rollback under way (the next start of the supervisor finishes it).
    pub rollback_in_progress: Option<Rollback>,
    /// Upgrades whose new binary failed and was rolled back, newest last.
    pub failed_upgrades: Vec<Failed>,
    pub supervisor_pid: Option<i32>,
    /// What the supervisor knows of the upcoming upgrades (`None`: no record of a planner).
    pub ahead: Option<Ahead>,
}

/// The planner's record, as of now: plans the tree has applied since are left out, and ETAs
/// count down from the record's time.
pub struct Ahead {
    pub as_of_unix: u64,
    /// Written by the supervisor that runs now (else by one that stopped).
    pub live: bool,
    pub plan_poll: String,
    pub chain: ChainSeen,
    pub upcoming: Vec<Entry>,
}

impl Ahead {
    fn read(layout: &Layout, files: &Files, supervisor: Option<i32>) -> Option<Ahead> {
        let record = Record::read(&layout.root).ok().flatten()?;
        let now = crate::clock::unix_secs();
        let applied_height = files.applied.as_ref().map_or(0, |p| p.height);
        let upcoming = record
            .upcoming
            .into_iter()
            .filter(|e| e.height > applied_height)
            .map(|e| Entry {
                eta_seconds: e.eta_at(record.written_unix, now),
                ..e
            })
            .collect();
        Some(Ahead {
            as_of_unix: record.written_unix,
            live: supervisor.is_some_and(|pid| pid <= 0 || pid as u32 == record.supervisor_pid),
            plan_poll: record.plan_poll,
            chain: record.chain,
            upcoming,
        })
    }

    /// The next upgrade that will happen (not a proposal).
    pub fn next(&self) -> Option<&Entry> {
        self.upcoming.iter().find(|e| e.source != Source::Proposal)
    }
}

pub struct CurrentBinary {
    pub upgrade: String,
    pub binary: PathBuf,
    pub binary_ok: bool,
    pub applied_plan: Option<Plan>,
}

pub enum UpgradeInfo {
    Incomplete,
    Invalid { reason: String },
    Valid { name: String, height: u64 },
}

pub struct Pending {
    pub kind: &'static str,
    pub name: String,
    pub height: u64,
    /// Set when the binary staged for it is one that failed for it before (its sha256; empty
    /// when it cannot be read, which counts as the failed one): the supervisor waits for a
    /// different one.
    pub blocked_by_failed_binary: Option<String>,
    /// Why the staged binary cannot be read, when that is what blocks the upgrade.
    pub blocked_binary_unreadable: Option<String>,
}

impl Pending {
    /// `plan`, pending as `kind`, blocked as `verdict` says: exactly when the supervisor would
    /// refuse to run its staged binary.
    fn new(kind: &'static str, plan: &Plan, verdict: FailedBefore) -> Pending {
        let (blocked_by_failed_binary, blocked_binary_unreadable) = match verdict {
            FailedBefore::NotBlocked => (None, None),
            FailedBefore::Blocked { sha256, .. } => (Some(sha256), None),
            FailedBefore::Unreadable { error, .. } => {
                (Some(String::new()), Some(error.to_string()))
            }
        };
        Pending {
            kind,
            name: plan.name.clone(),
            height: plan.height,
            blocked_by_failed_binary,
            blocked_binary_unreadable,
        }
    }
}

pub struct LastUpgrade {
    pub finished: Finished,
    /// The phases' total, without the health entry (the time to the check's first answer, not
    /// a step of the switch).
    pub total_ms: f64,
}

impl LastUpgrade {
    fn new(finished: Finished) -> LastUpgrade {
        let total = finished.downtime_ms();
        LastUpgrade {
            total_ms: (total * 1000.0).round() / 1000.0,
            finished,
        }
    }
}

impl UpgradeInfo {
    /// What `status` shows of `data/upgrade-info.json` as read (`None`: there is none).
    fn of(read: &Read) -> Option<UpgradeInfo> {
        match read {
            Read::Absent => None,
            Read::NotYet => Some(UpgradeInfo::Incomplete),
            Read::Invalid(reason) => Some(UpgradeInfo::Invalid {
                reason: reason.clone(),
            }),
            Read::Valid(p) => Some(UpgradeInfo::Valid {
                name: p.name.clone(),
                height: p.height,
            }),
        }
    }
}

impl Status {
    pub fn collect(cfg: &Config) -> Result<Status, String> {
        let layout = Layout::open(cfg).map_err(|e| e.to_string())?;
        let files = Files::read(&layout).map_err(|e| e.to_string())?;
        let snapshot = files.snapshot(&[], None, layout.names);
        let journal = journal::read(&layout.root).unwrap_or_default();
        let pending = match snapshot.governance() {
            Some((plan, None)) => Some(("governance", plan)),
            _ => snapshot.next_manual().map(|p| ("manual", p)),
        }
        .map(|(kind, plan)| {
            Pending::new(
                kind,
                plan,
                failed_before_blocking(&layout, &journal.failed, plan),
            )
        });
        let current = &files.current;
        let supervisor_pid = lock::holder(&layout.root, &layout.root_path);
        Ok(Status {
            daemon_home: cfg.home.clone(),
            current: CurrentBinary {
                upgrade: current.label().to_string(),
                binary: layout.binary_path(current),
                binary_ok: layout.check_binary(current).is_ok(),
                applied_plan: files.applied.clone(),
            },
            upgrade_info: UpgradeInfo::of(&files.upgrade_info),
            pending,
            manual_upgrades: files.batch.clone(),
            staged: layout.staged(),
            upgrade_in_progress: journal.active,
            last_upgrade: journal.last.map(LastUpgrade::new),
            rollback_in_progress: journal.rollback,
            failed_upgrades: journal.failed,
            supervisor_pid,
            ahead: Ahead::read(&layout, &files, supervisor_pid),
        })
    }
}

/// The `status --json` document, as `GET /status` on the metrics address answers it.
pub fn document(cfg: &Config) -> Result<String, String> {
    let status = Status::collect(cfg)?;
    StatusV1::from(&status).to_json().map_err(|e| e.to_string())
}

/// Prints the status: the JSON of [`StatusV1`] (documented in `docs/status-json.md`) or text.
pub fn print(cfg: &Config, as_json: bool) -> Result<(), String> {
    if as_json {
        return output::line(document(cfg)?);
    }
    output::text(Status::collect(cfg)?.text())
}

/// `status --timeline FILE.svg`: the last upgrade's timeline drawn into `out`.
pub fn draw_timeline(cfg: &Config, out: &std::path::Path) -> Result<(), String> {
    let status = Status::collect(cfg)?;
    let Some(last) = &status.last_upgrade else {
        return Err(
            "no upgrade has completed in this home yet: there is no timeline to draw".into(),
        );
    };
    let f = &last.finished;
    let svg = svg::draw(f, &timeline::rows(f), timeline::downtime(f));
    std::fs::write(out, svg).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    output::line(format!(
        "{}: the timeline of upgrade {} ({})",
        out.display(),
        output::escape_controls(&f.plan.name),
        svg::summary(timeline::downtime(f))
    ))
}

#[cfg(test)]
mod tests;
