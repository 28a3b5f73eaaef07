//! `wasmvisor status`: what runs, what is applied, what is pending, what is staged, and how long
//! the last upgrade took, phase by phase — one `Status`, rendered as text or JSON. Reads files
//! only; safe to run beside a supervisor.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::Config;
use crate::output;
use crate::supervisor::decide::Files;
use crate::tree::{Layout, Plan, Read, lock};
use crate::upgrade::journal::{self, Active, Failed, Finished, Phase, Rollback};
use crate::upgrade::{FailedBefore, failed_before_blocking, short};

#[derive(Serialize)]
pub struct Status {
    pub daemon_home: PathBuf,
    pub current: CurrentBinary,
    /// `data/upgrade-info.json` as found (`null` when absent).
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

#[derive(Serialize)]
pub struct CurrentBinary {
    pub upgrade: String,
    pub binary: PathBuf,
    pub binary_ok: bool,
    pub applied_plan: Option<Plan>,
}

#[derive(Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum UpgradeInfo {
    Incomplete,
    Invalid { reason: String },
    Valid { name: String, height: u64 },
}

#[derive(Serialize)]
pub struct Pending {
    pub kind: &'static str,
    pub name: String,
    pub height: u64,
    /// Set when the binary staged for it is one that failed for it before (its sha256; empty
    /// when it cannot be read, which counts as the failed one): the supervisor waits for a
    /// different one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by_failed_binary: Option<String>,
    /// Why the staged binary cannot be read, when that is what blocks the upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Serialize)]
pub struct LastUpgrade {
    #[serde(flatten)]
    pub finished: Finished,
    /// The phases' total, without the health entry (the time to the check's first answer, not
    /// a step of the switch).
    pub total_ms: f64,
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
        let upgrade_info = match &files.upgrade_info {
            Read::Absent => None,
            Read::NotYet => Some(UpgradeInfo::Incomplete),
            Read::Invalid(reason) => Some(UpgradeInfo::Invalid {
                reason: reason.clone(),
            }),
            Read::Valid(p) => Some(UpgradeInfo::Valid {
                name: p.name.clone(),
                height: p.height,
            }),
        };
        let last_upgrade = journal.last.map(|finished| LastUpgrade {
            total_ms: (finished
                .phases
                .iter()
                .filter(|p| p.phase != Phase::Health)
                .map(|p| p.ms)
                .sum::<f64>()
                * 1000.0)
                .round()
                / 1000.0,
            finished,
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
            upgrade_info,
            pending,
            manual_upgrades: files.batch.clone(),
            staged: layout.staged(),
            upgrade_in_progress: journal.active,
            last_upgrade,
            rollback_in_progress: journal.rollback,
            failed_upgrades: journal.failed,
            supervisor_pid: lock::holder(&layout.root, &layout.root_path),
        })
    }

    /// The status as text: one `key value` line each, names escaped.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, k: &str, v: String| {
            out.push_str(&format!("{k:<20} {}\n", output::escape_controls(&v)))
        };
        line(&mut out, "home", self.daemon_home.display().to_string());
        line(
            &mut out,
            "supervisor",
            match self.supervisor_pid {
                Some(pid) if pid > 0 => format!("running (pid {pid})"),
                Some(_) => "running".into(),
                None => "not running".into(),
            },
        );
        let ok = if self.current.binary_ok {
            ""
        } else {
            "  (MISSING OR NOT EXECUTABLE)"
        };
        line(
            &mut out,
            "current",
            format!(
                "{}  {}{ok}",
                self.current.upgrade,
                self.current.binary.display()
            ),
        );
        line(
            &mut out,
            "applied upgrade",
            match &self.current.applied_plan {
                Some(p) => format!("{} at height {}", p.name, p.height),
                None => "none (genesis)".into(),
            },
        );
        line(
            &mut out,
            "pending upgrade",
            match &self.pending {
                Some(p) => format!(
                    "{} at height {} ({}){}",
                    p.name,
                    p.height,
                    p.kind,
                    match (&p.blocked_by_failed_binary, &p.blocked_binary_unreadable) {
                        (_, Some(error)) => format!(
                            " — BLOCKED: its staged binary cannot be read ({error}), so it counts as the one that failed for it before; make it readable or stage a different one"
                        ),
                        (Some(sha), None) => format!(
                            " — BLOCKED: its staged binary (sha256 {}) failed for it before; stage a different one",
                            short(sha)
                        ),
                        (None, None) => String::new(),
                    }
                ),
                None => "none".into(),
            },
        );
        if let Some(UpgradeInfo::Invalid { reason }) = &self.upgrade_info {
            line(&mut out, "upgrade-info.json", format!("INVALID: {reason}"));
        }
        line(
            &mut out,
            "staged upgrades",
            if self.staged.is_empty() {
                "none".into()
            } else {
                self.staged.join(", ")
            },
        );
        if let Some(active) = &self.upgrade_in_progress {
            line(
                &mut out,
                "in progress",
                match (&active.refused, &active.waiting) {
                    (Some(r), _) => format!(
                        "{} (phase {}; refused: {})",
                        active.plan.name, active.phase, r.reason
                    ),
                    (None, Some(w)) => format!(
                        "{} (the node stays halted until {}: resolver {} deferred the switch: {})",
                        active.plan.name,
                        crate::logging::rfc3339(w.until_unix),
                        w.by,
                        w.reason
                    ),
                    (None, None) => format!("{} (phase {})", active.plan.name, active.phase),
                },
            );
        }
        if let Some(r) = &self.rollback_in_progress {
            line(
                &mut out,
                "ROLLBACK",
                format!(
                    "{} → back to {}, unfinished (data/ {}); the next start of the supervisor finishes it",
                    r.plan.name,
                    r.from,
                    if r.restored {
                        "restored"
                    } else {
                        "not yet restored"
                    }
                ),
            );
        }
        let now = journal::unix_ms();
        for f in self.failed_upgrades.iter().rev() {
            let age = std::time::Duration::from_secs(now.saturating_sub(f.at_unix_ms) / 1000);
            line(
                &mut out,
                "FAILED upgrade",
                format!(
                    "{} at height {}, rolled back {} ago: {}; binary upgrades/{}/bin sha256 {}; data/ {}",
                    f.plan.name,
                    f.plan.height,
                    crate::duration::format(age.max(std::time::Duration::from_secs(1))),
                    f.reason,
                    f.dir,
                    short(&f.sha256),
                    match (&f.restored, &f.unrestored) {
                        (Some(b), _) => format!("restored from {}", b.display()),
                        (None, Some(why)) => format!("not restored: {why}"),
                        (None, None) => "not restored".into(),
                    }
                ),
            );
        }
        let Some(last) = &self.last_upgrade else {
            line(&mut out, "last upgrade", "none".into());
            return out;
        };
        let f = &last.finished;
        line(
            &mut out,
            "last upgrade",
            format!(
                "{} → {} at height {}, {:.1} ms in phases{}",
                f.from,
                f.to,
                f.plan.height,
                last.total_ms,
                if f.rolled_back {
                    "; ROLLED BACK"
                } else if f.probation {
                    "; the new binary is on probation"
                } else {
                    ""
                }
            ),
        );
        for p in &f.phases {
            out.push_str(&format!(
                "{:<20}   {:<18} {:>10.3} ms\n",
                "",
                p.phase.name(),
                p.ms
            ));
        }
        if let Some(h) = &f.health {
            let text = format!(
                "{} after {:.0} ms ({} checks): {}",
                if h.healthy { "healthy" } else { "UNHEALTHY" },
                h.after_ms,
                h.checks,
                h.detail
            );
            line(&mut out, "health", text);
        }
        out
    }
}

/// Prints the status: JSON (as a JSON value, whose keys are sorted) or text.
pub fn print(cfg: &Config, as_json: bool) -> Result<(), String> {
    let status = Status::collect(cfg)?;
    if as_json {
        let value = serde_json::to_value(&status).map_err(|e| e.to_string())?;
        let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
        return output::line(text);
    }
    output::text(status.text())
}
