//! What is known of the upgrades ahead, while the node runs: the next one's readiness and ETA
//! (metrics and the systemd `STATUS=` line), every upcoming plan, the polls of the chain's plans,
//! the background preparations and preflights, and the `status --json` document `GET /status`
//! answers with.

use std::sync::Arc;

use super::Observer;
use super::metrics::{ResultLabels, UpcomingLabels, UpgradeLabels};

/// The upgrade the node will meet next, as the planner last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct NextUpgrade {
    pub name: String,
    pub height: u64,
    /// Where the plan comes from: `chain`, `proposal`, `manual` (the batch file: `add-upgrade`, `add-batch-upgrade`) or `upgrade-info`.
    pub source: String,
    /// The time to its height at the chain's recent block rate, as of the call.
    pub eta_seconds: Option<f64>,
    /// Whether its binary is staged and passed its preflight; `None`: not prepared (a proposal).
    pub ready: Option<bool>,
    /// Why it is not ready.
    pub reason: Option<String>,
}

/// Makes the `status --json` document, or says why it cannot.
pub type StatusSource = dyn Fn() -> Result<String, String> + Send + Sync;

/// The most of a plan's name, source and reason the `STATUS=` line shows, in characters.
const NAME_CHARS: usize = 64;
const SOURCE_CHARS: usize = 16;
const REASON_CHARS: usize = 120;

impl Observer {
    /// The next upgrade, or none: sets `wasmvisor_upgrade_ready` (absent when there is none, or
    /// when it is only proposed), `wasmvisor_upgrade_eta_seconds` and
    /// `wasmvisor_upgrade_eta_timestamp_seconds` (from `eta_seconds` at this call: the planner
    /// calls again on each poll), and the `STATUS=` line.
    pub fn next_upgrade(&self, next: Option<NextUpgrade>) {
        let m = &self.0.metrics;
        m.upgrade_ready.clear();
        m.upgrade_eta.clear();
        m.upgrade_eta_timestamp.clear();
        if let Some(next) = &next {
            let labels = UpgradeLabels {
                upgrade: next.name.clone(),
            };
            if let Some(ready) = next.ready {
                m.upgrade_ready.get_or_create(&labels).set(i64::from(ready));
            }
            if let Some(eta) = next.eta_seconds.filter(|eta| eta.is_finite()) {
                let eta = eta.max(0.0);
                m.upgrade_eta.get_or_create(&labels).set(eta);
                m.upgrade_eta_timestamp
                    .get_or_create(&labels)
                    .set(super::unix_seconds() + eta);
            }
        }
        let text = match self.0.state.lock() {
            Ok(mut s) => {
                s.next = next;
                Some(s.status_line())
            }
            Err(_) => None,
        };
        if let Some(text) = text {
            self.0.notify.status(&text);
        }
    }

    /// Every upcoming plan known (name, height, source): `wasmvisor_upcoming_upgrade_height`.
    pub fn upcoming(&self, plans: &[(String, u64, String)]) {
        let m = &self.0.metrics.upcoming_upgrade;
        m.clear();
        for (name, height, source) in plans {
            m.get_or_create(&UpcomingLabels {
                upgrade: name.clone(),
                source: source.clone(),
            })
            .set(i64::try_from(*height).unwrap_or(i64::MAX));
        }
    }

    /// A staged binary failed its preflight.
    pub fn preflight_failed(&self) {
        self.0.metrics.preflight_failures.inc();
    }

    /// The chain's plans were polled: `ok` when it answered.
    pub fn plan_poll(&self, ok: bool) {
        let m = &self.0.metrics;
        m.plan_polls.get_or_create(&result_labels(ok)).inc();
        if ok {
            m.plan_last_poll.set(super::unix_seconds());
        }
    }

    /// A background preparation (resolve, stage, preflight) of the next upgrade ended.
    pub fn prepared(&self, ok: bool) {
        self.0
            .metrics
            .preparations
            .get_or_create(&result_labels(ok))
            .inc();
    }

    /// What makes the `status --json` document `GET /status` answers with. It may read files:
    /// the listener calls it off its runtime, with a deadline.
    pub fn set_status_source(&self, f: Box<StatusSource>) {
        if let Ok(mut source) = self.0.status_source.lock() {
            *source = Some(Arc::from(f));
        }
    }

    pub(super) fn status_source(&self) -> Option<Arc<StatusSource>> {
        self.0.status_source.lock().ok().and_then(|s| s.clone())
    }
}

fn result_labels(ok: bool) -> ResultLabels {
    ResultLabels {
        result: if ok { "ok" } else { "error" }.into(),
    }
}

/// The `STATUS=` line's part about the next upgrade: `next upgrade v2 at 1200 (chain): ready,
/// in ~2h`. Names and reasons come from the chain: control characters escaped, each bounded.
pub(super) fn describe_next(next: &NextUpgrade) -> String {
    let readiness = match (next.ready, &next.reason) {
        (Some(true), _) => "ready".to_string(),
        (Some(false), Some(reason)) => format!("NOT READY: {}", one_line(reason, REASON_CHARS)),
        (Some(false), None) => "NOT READY".to_string(),
        (None, _) => "not prepared".to_string(),
    };
    let mut text = format!(
        "next upgrade {} at {} ({}): {readiness}",
        one_line(&next.name, NAME_CHARS),
        next.height,
        one_line(&next.source, SOURCE_CHARS),
    );
    if let Some(eta) = next.eta_seconds.filter(|eta| eta.is_finite()) {
        text.push_str(", ");
        text.push_str(&eta_text(eta));
    }
    text
}

/// `in ~2h`, `in ~45m`, `in ~3d`; `due` once the height is reached.
pub(super) fn eta_text(seconds: f64) -> String {
    if seconds < 1.0 {
        return "due".into();
    }
    let s = seconds.min(1e12).round() as u64;
    let (per, unit) = match s {
        0..120 => (1, "s"),
        120..7200 => (60, "m"),
        7200..172_800 => (3600, "h"),
        _ => (86_400, "d"),
    };
    // To the nearest unit.
    format!("in ~{}{unit}", s.saturating_add(per / 2) / per)
}

/// `text` on one line, its control characters escaped as Rust escapes them (the rule of
/// `crate::output`, kept here: `observe` is told what happens by everyone and uses nothing but
/// the clock), at most `max` characters, with `…` when it was cut.
pub(super) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_mul(4)));
    let mut chars = 0usize;
    for c in text.chars() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.into()
        };
        let n = piece.chars().count();
        if chars.saturating_add(n) > max {
            out.push('…');
            return out;
        }
        out.push_str(&piece);
        chars = chars.saturating_add(n);
    }
    out
}
