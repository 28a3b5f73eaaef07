//! `status` as text: one `key value` line each (a phase table under the last upgrade), text from
//! outside escaped and plan names shortened, so no name can write lines of its own or make one
//! line ten thousand characters long.

use std::time::Duration;

use super::{Ahead, CurrentBinary, LastUpgrade, Pending, Status, UpgradeInfo};
use crate::ahead::Source;
use crate::ahead::record::Entry;
use crate::output;
use crate::upgrade::journal::{self, Active, Failed, Finished, Mark, Rollback};
use crate::upgrade::short;

/// The most characters of a plan name a line shows (the rest is `…`), as the supervisor's
/// refusals do. `status --json` gives names whole.
const NAME_SHOWN: usize = 64;

/// A plan name as a line shows it.
fn name(name: &str) -> String {
    output::shorten(name, NAME_SHOWN)
}

/// The text being written.
#[derive(Default)]
struct Lines(String);

impl Lines {
    /// A `key value` line, the value's control characters escaped.
    fn line(&mut self, key: &str, value: String) {
        self.0
            .push_str(&format!("{key:<20} {}\n", output::escape_controls(&value)));
    }
}

impl Status {
    /// The status as text: one `key value` line each, names escaped.
    pub fn text(&self) -> String {
        self.text_at(journal::unix_ms())
    }

    /// The text as of `now` (Unix ms), which gives the failed upgrades' ages.
    pub(super) fn text_at(&self, now: u64) -> String {
        let mut out = Lines::default();
        out.line("home", self.daemon_home.display().to_string());
        out.line("supervisor", supervisor(self.supervisor_pid));
        out.line("current", current(&self.current));
        out.line(
            "applied upgrade",
            match &self.current.applied_plan {
                Some(p) => format!("{} at height {}", name(&p.name), p.height),
                None => "none (genesis)".into(),
            },
        );
        out.line(
            "pending upgrade",
            self.pending.as_ref().map_or("none".into(), pending),
        );
        next_upgrade(&mut out, self.ahead.as_ref());
        if let Some(UpgradeInfo::Invalid { reason }) = &self.upgrade_info {
            out.line("upgrade-info.json", format!("INVALID: {reason}"));
        }
        out.line(
            "staged upgrades",
            if self.staged.is_empty() {
                "none".into()
            } else {
                self.staged.join(", ")
            },
        );
        if let Some(active) = &self.upgrade_in_progress {
            out.line("in progress", in_progress(active));
        }
        if let Some(r) = &self.rollback_in_progress {
            out.line("ROLLBACK", rollback(r));
        }
        for f in self.failed_upgrades.iter().rev() {
            out.line("FAILED upgrade", failed(f, now));
        }
        match &self.last_upgrade {
            Some(last) => last_upgrade(&mut out, last),
            None => out.line("last upgrade", "none".into()),
        }
        out.0
    }
}

/// The next upgrade, its readiness, binary and preflight; then the other upcoming ones.
fn next_upgrade(out: &mut Lines, ahead: Option<&Ahead>) {
    let Some(ahead) = ahead else {
        out.line(
            "next upgrade",
            "unknown (no supervisor has looked: `wasmvisor run` asks the chain and prepares it)"
                .into(),
        );
        return;
    };
    let stale = match ahead.live {
        true => String::new(),
        false => format!(
            " (as of {}, by a supervisor no longer running)",
            crate::logging::rfc3339(ahead.as_of_unix)
        ),
    };
    match ahead.next() {
        None => out.line("next upgrade", format!("none known{stale}")),
        Some(e) => {
            out.line("next upgrade", format!("{}{stale}", upcoming(e)));
            if let Some(binary) = &e.binary {
                let sha = e
                    .sha256
                    .as_deref()
                    .map_or(String::new(), |s| format!("  sha256 {s}"));
                out.line("next binary", format!("{binary}{sha}"));
            }
            if let Some(said) = &e.preflight {
                let first = said.lines().next().unwrap_or("");
                out.line("next preflight", output::shorten(first, 200));
            }
        }
    }
    let next = ahead.next().map(|e| e.name.as_str());
    for e in ahead
        .upcoming
        .iter()
        .filter(|e| Some(e.name.as_str()) != next)
    {
        out.line("upcoming", upcoming(e));
    }
}

/// `NAME at height H (source), in about T: ready | NOT READY: reason`.
fn upcoming(e: &Entry) -> String {
    let source = match (e.source, e.proposal) {
        (Source::Proposal, Some(id)) => format!("proposal {id}"),
        (source, _) => source.label().to_string(),
    };
    let eta = match e.eta_seconds {
        None => String::new(),
        Some(s) if s < 1.0 => ", due now".into(),
        Some(s) => format!(
            ", in about {}",
            crate::duration::format(Duration::from_secs(s as u64))
        ),
    };
    let ready = match (e.ready, &e.reason) {
        (Some(true), _) => ": ready".to_string(),
        (Some(false), reason) => format!(": NOT READY: {}", reason.as_deref().unwrap_or("")),
        (None, Some(reason)) => format!(": {reason}"),
        (None, None) => String::new(),
    };
    format!(
        "{} at height {} ({source}){eta}{ready}",
        name(&e.name),
        e.height
    )
}

fn supervisor(pid: Option<i32>) -> String {
    match pid {
        Some(pid) if pid > 0 => format!("running (pid {pid})"),
        Some(_) => "running".into(),
        None => "not running".into(),
    }
}

fn current(current: &CurrentBinary) -> String {
    let ok = if current.binary_ok {
        ""
    } else {
        "  (MISSING OR NOT EXECUTABLE)"
    };
    format!("{}  {}{ok}", current.upgrade, current.binary.display())
}

fn pending(p: &Pending) -> String {
    let blocked = match (&p.blocked_by_failed_binary, &p.blocked_binary_unreadable) {
        (_, Some(error)) => format!(
            " — BLOCKED: its staged binary cannot be read ({error}), so it counts as the one that failed for it before; make it readable or stage a different one"
        ),
        (Some(sha), None) => format!(
            " — BLOCKED: its staged binary (sha256 {}) failed for it before; stage a different one",
            short(sha)
        ),
        (None, None) => String::new(),
    };
    format!(
        "{} at height {} ({}){blocked}",
        name(&p.name),
        p.height,
        p.kind
    )
}

fn in_progress(active: &Active) -> String {
    let plan = name(&active.plan.name);
    match (&active.refused, &active.waiting) {
        (Some(r), _) => format!("{plan} (phase {}; refused: {})", active.phase, r.reason),
        (None, Some(w)) => format!(
            "{plan} (the node stays halted until {}: resolver {} deferred the switch: {})",
            crate::logging::rfc3339(w.until_unix),
            w.by,
            w.reason
        ),
        (None, None) => format!("{plan} (phase {})", active.phase),
    }
}

fn rollback(r: &Rollback) -> String {
    format!(
        "{} → back to {}, unfinished (data/ {}); the next start of the supervisor finishes it",
        name(&r.plan.name),
        r.from,
        if r.restored {
            "restored"
        } else {
            "not yet restored"
        }
    )
}

/// A failed upgrade, `now` (Unix ms) giving its age.
fn failed(f: &Failed, now: u64) -> String {
    let age = Duration::from_secs(now.saturating_sub(f.at_unix_ms) / 1000);
    format!(
        "{} at height {}, rolled back {} ago: {}; binary upgrades/{}/bin sha256 {}; data/ {}",
        name(&f.plan.name),
        f.plan.height,
        crate::duration::format(age.max(Duration::from_secs(1))),
        f.reason,
        f.dir,
        short(&f.sha256),
        match (&f.restored, &f.unrestored) {
            (Some(b), _) => format!("restored from {}", b.display()),
            (None, Some(why)) => format!("not restored: {why}"),
            (None, None) => "not restored".into(),
        }
    )
}

/// The last upgrade's line, its phase table and its health verdict.
fn last_upgrade(out: &mut Lines, last: &LastUpgrade) {
    let f = &last.finished;
    out.line(
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
        out.0.push_str(&format!(
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
        out.line("health", text);
    }
    out.line("downtime", downtime(f));
}

/// The downtime line: until the new binary's start, the chain's first block, the first vote.
fn downtime(f: &Finished) -> String {
    let d = super::timeline::downtime(f);
    let mark = |ms: Option<f64>, m: &Option<Mark>| match (ms, m) {
        (Some(ms), Some(m)) => format!("{} (height {})", super::svg::human(ms), m.height),
        _ => "not yet".into(),
    };
    let mut text = format!(
        "{} to the new binary's start; {} to the chain's first block; {} to this validator's first vote",
        d.start.map_or("not yet".into(), super::svg::human),
        mark(d.first_block, &f.first_block),
        mark(d.first_signature, &f.first_vote),
    );
    if let Some(why) = &f.no_vote {
        text = format!("{text} ({})", crate::output::escape_controls(why));
    }
    text
}
