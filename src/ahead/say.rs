//! What the planner says in the log: plans that became known, changed, were replaced or
//! cancelled; and a plan that is not ready — when that changes, and again at 24 h, 1 h and
//! 10 min before its ETA, never on every poll.

use std::time::Duration;

use super::upcoming::{Change, Upcoming};
use crate::output::shorten;

/// The ETAs at which a plan that is still not ready is warned about again.
const REMINDERS: [Duration; 3] = [
    Duration::from_secs(24 * 3600),
    Duration::from_secs(3600),
    Duration::from_secs(600),
];

/// What was last said of one plan's readiness.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Said {
    said: Option<(Option<bool>, Option<String>)>,
    /// How many reminders were given while not ready.
    reminded: usize,
    /// Whether an ETA was known at the last look: one that becomes known (the chain's pace
    /// read at last) is no crossing of a reminder's time.
    eta_known: bool,
}

fn name(u: &Upcoming) -> String {
    format!("{:?}", shorten(&u.plan.name, 64))
}

/// Says each change.
pub fn changes(changes: &[Change]) {
    for change in changes {
        match change {
            Change::Known(u) => match u.proposal {
                Some(id) => tracing::info!(
                    "upgrade {} at height {} is proposed (proposal {id}, in its voting period)",
                    name(u),
                    u.plan.height
                ),
                None => tracing::info!(
                    "upgrade {} at height {} is known ({})",
                    name(u),
                    u.plan.height,
                    u.source
                ),
            },
            Change::Moved { before, now } => tracing::warn!(
                "upgrade {} moved from height {} to {} ({})",
                name(now),
                before.plan.height,
                now.plan.height,
                now.source
            ),
            Change::InfoChanged(u) => tracing::warn!(
                "upgrade {} at height {} has new info ({}): its binary is prepared again",
                name(u),
                u.plan.height,
                u.source
            ),
            Change::Passed(u) => tracing::info!(
                "upgrade {} at height {} passed governance: it is the chain's plan now",
                name(u),
                u.plan.height
            ),
            Change::Ended(u) => tracing::info!(
                "the proposal{} for upgrade {} at height {} is no longer in its voting period and is not the chain's plan (rejected, failed or withdrawn)",
                u.proposal.map(|id| format!(" {id}")).unwrap_or_default(),
                name(u),
                u.plan.height
            ),
            Change::Replaced { before, now } => tracing::warn!(
                "the chain's upgrade plan {} at height {} was replaced by {} at height {}",
                name(before),
                before.plan.height,
                name(now),
                now.plan.height
            ),
            Change::Cancelled(u) => tracing::warn!(
                "the chain's upgrade plan {} at height {} was cancelled (it is no longer the chain's plan); its staged binary is kept",
                name(u),
                u.plan.height
            ),
            Change::Gone(u) => tracing::info!(
                "upgrade {} at height {} is no longer upcoming ({} plan applied, reached or removed)",
                name(u),
                u.plan.height,
                u.source
            ),
        }
    }
}

/// Says a scheduled plan's readiness when it changed, and reminds of a plan still not ready
/// as its ETA passes 24 h, 1 h and 10 min. Returns whether it said something.
pub fn readiness(
    said: &mut Said,
    u: &Upcoming,
    ready: Option<bool>,
    reason: Option<&str>,
    eta: Option<f64>,
) -> bool {
    let now = (ready, reason.map(str::to_string));
    let changed = said.said.as_ref() != Some(&now);
    let due = REMINDERS
        .iter()
        .take_while(|r| eta.is_some_and(|e| e <= r.as_secs_f64()))
        .count();
    if !said.eta_known && eta.is_some() && !changed {
        said.reminded = due;
    }
    said.eta_known = eta.is_some();
    let remind = ready == Some(false) && due > said.reminded;
    said.said = Some(now);
    if !changed && !remind {
        return false;
    }
    said.reminded = due;
    let when = eta.map_or(String::new(), |e| {
        format!(
            ", in about {}",
            crate::duration::format(Duration::from_secs(e as u64))
        )
    });
    match ready {
        Some(true) => tracing::info!(
            "upgrade {} at height {} ({}{when}) is ready",
            name(u),
            u.plan.height,
            u.source
        ),
        Some(false) => tracing::warn!(
            "upgrade {} at height {} ({}{when}) is NOT READY: {}",
            name(u),
            u.plan.height,
            u.source,
            reason.unwrap_or("unknown")
        ),
        None => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ahead::Source;
    use crate::tree::Plan;

    /// Whether `readiness` logs.
    fn says(said: &mut Said, ready: Option<bool>, reason: &str, eta: f64) -> bool {
        says_at(said, ready, reason, Some(eta))
    }

    fn says_at(said: &mut Said, ready: Option<bool>, reason: &str, eta: Option<f64>) -> bool {
        let u = Upcoming::new(Plan::manual("v2", 10), Source::Chain);
        readiness(said, &u, ready, Some(reason), eta)
    }

    #[test]
    fn not_ready_is_said_on_change_and_at_each_reminder_not_on_every_poll() {
        let mut s = Said::default();
        assert!(says(&mut s, Some(false), "no binary", 200_000.0));
        assert!(!says(&mut s, Some(false), "no binary", 190_000.0));
        assert!(says(&mut s, Some(false), "no binary", 86_000.0), "24 h");
        assert!(!says(&mut s, Some(false), "no binary", 80_000.0));
        assert!(says(&mut s, Some(false), "no binary", 3_500.0), "1 h");
        assert!(
            says(&mut s, Some(false), "no libwasmvm", 3_400.0),
            "a new reason"
        );
        assert!(!says(&mut s, Some(false), "no libwasmvm", 3_300.0));
        assert!(says(&mut s, Some(false), "no libwasmvm", 500.0), "10 min");
        assert!(!says(&mut s, Some(false), "no libwasmvm", 100.0));
        assert!(says(&mut s, Some(true), "", 90.0), "ready is said once");
        assert!(!says(&mut s, Some(true), "", 80.0));
    }

    #[test]
    fn a_plan_first_seen_an_hour_before_is_not_reminded_of_the_day_before() {
        let mut s = Said::default();
        assert!(says(&mut s, Some(false), "no binary", 3_000.0));
        assert_eq!(s.reminded, 2);
        assert!(!says(&mut s, Some(false), "no binary", 2_000.0));
    }

    #[test]
    fn an_eta_that_becomes_known_is_no_reminder() {
        let mut s = Said::default();
        assert!(says_at(&mut s, Some(false), "no binary", None));
        // The chain's pace is read at last: 1 h 23 min to go, but no threshold was crossed.
        assert!(!says_at(&mut s, Some(false), "no binary", Some(5_000.0)));
        assert!(
            says_at(&mut s, Some(false), "no binary", Some(3_500.0)),
            "1 h"
        );
    }
}
