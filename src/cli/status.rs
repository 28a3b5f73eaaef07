//! `wasmvisor status`: what runs, what is applied, what is pending, what is staged, and how long
//! the last upgrade took, phase by phase — one `Status`, rendered as text (`text.rs`) or as the
//! versioned JSON of `json.rs`. Reads files only; safe to run beside a supervisor.

mod json;
mod text;

use std::path::PathBuf;

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
            supervisor_pid: lock::holder(&layout.root, &layout.root_path),
        })
    }
}

/// Prints the status: the JSON of [`StatusV1`] (documented in `docs/status-json.md`) or text.
pub fn print(cfg: &Config, as_json: bool) -> Result<(), String> {
    let status = Status::collect(cfg)?;
    if as_json {
        let text = StatusV1::from(&status)
            .to_json()
            .map_err(|e| e.to_string())?;
        return output::line(text);
    }
    output::text(status.text())
}

#[cfg(test)]
mod tests;
