//! Each upcoming plan's state in the planner: its preparation (what it depended on, its result,
//! the back-off while it fails), its preflight and its warming.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::tree::{Current, Layout, Plan};
use crate::upgrade::preflight::{Checked, Key};

/// The first retry of a failed preparation or preflight, doubled after each failure.
const FIRST_RETRY: Duration = Duration::from_secs(10);
const LONGEST_RETRY: Duration = Duration::from_secs(15 * 60);

/// A file's identity and version on disk.
type Stat = (u64, u64, u64, i64);

fn stat(path: &Path) -> Option<Stat> {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime() * 1_000_000_000 + m.mtime_nsec(),
    ))
}

/// What a preparation depends on: the plan, plugins.toml, and what is staged for it. A change
/// in any of them prepares it again at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    plan: Plan,
    plugins: Option<Stat>,
    binary: Option<Stat>,
}

impl Inputs {
    pub fn of(cfg: &Config, layout: &Layout, plan: &Plan) -> Inputs {
        let binary = layout
            .dir_name(&plan.name)
            .ok()
            .and_then(|dir| stat(&layout.binary_path(&Current::Upgrade(dir))));
        Inputs {
            plan: plan.clone(),
            plugins: cfg.plugins_path().as_deref().and_then(stat),
            binary,
        }
    }

    /// Whether plugins.toml changed between the two.
    pub fn plugins_changed(&self, other: &Inputs) -> bool {
        self.plugins != other.plugins
    }
}

/// How a plan's preparation stands.
#[derive(Debug, Clone, Default)]
pub enum Prep {
    /// Not attempted (a proposal, or not the next plan yet).
    #[default]
    Never,
    Done {
        inputs: Inputs,
        at_unix: u64,
    },
    Failed {
        inputs: Inputs,
        reason: String,
        attempts: u32,
        retry_at: Instant,
    },
}

/// The back-off after `attempts` failures.
pub fn backoff(attempts: u32) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    doubled.min(LONGEST_RETRY)
}

/// One plan's state.
#[derive(Debug, Default)]
pub struct PlanState {
    pub prep: Prep,
    pub check: Option<Checked>,
    /// When a failed preflight is run again (a library may have been installed meanwhile).
    pub check_retry: Option<(u32, Instant)>,
    /// The binary last read into the page cache, and when.
    pub warmed: Option<(Key, u64)>,
    /// What the log last said of its readiness (`say.rs`).
    pub said: super::say::Said,
}

impl PlanState {
    /// Whether the plan should be prepared now.
    pub fn prep_due(&self, now: &Inputs, at: Instant) -> bool {
        match &self.prep {
            Prep::Never => true,
            Prep::Done { inputs, .. } => inputs != now,
            Prep::Failed {
                inputs, retry_at, ..
            } => inputs != now || at >= *retry_at,
        }
    }

    /// Records a failed preparation.
    pub fn prep_failed(&mut self, inputs: Inputs, reason: String, at: Instant) {
        let attempts = match &self.prep {
            Prep::Failed {
                inputs: before,
                attempts,
                ..
            } if *before == inputs => attempts + 1,
            _ => 1,
        };
        self.prep = Prep::Failed {
            inputs,
            reason,
            attempts,
            retry_at: at + backoff(attempts),
        };
    }

    /// Whether the preflight of `key` should run (again) now.
    pub fn check_due(&self, key: &Key, at: Instant) -> bool {
        match &self.check {
            Some(c) if c.key == *key => {
                c.result.is_err() && self.check_retry.is_none_or(|(_, when)| at >= when)
            }
            _ => true,
        }
    }

    /// Records a preflight's result.
    pub fn checked(&mut self, checked: Checked, at: Instant) {
        self.check_retry = match (&checked.result, self.check_retry) {
            (Ok(_), _) => None,
            (Err(_), Some((n, _))) if self.check.as_ref().is_some_and(|c| c.key == checked.key) => {
                Some((n + 1, at + backoff(n + 1)))
            }
            (Err(_), _) => Some((1, at + backoff(1))),
        };
        self.check = Some(checked);
    }

    /// The earliest retry due, if any.
    pub fn next_retry(&self) -> Option<Instant> {
        let prep = match &self.prep {
            Prep::Failed { retry_at, .. } => Some(*retry_at),
            _ => None,
        };
        [prep, self.check_retry.map(|(_, at)| at)]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(height: u64) -> Inputs {
        Inputs {
            plan: Plan::manual("v2", height),
            plugins: None,
            binary: None,
        }
    }

    #[test]
    fn a_failed_preparation_backs_off_doubling_until_its_inputs_change() {
        let t0 = Instant::now();
        let mut s = PlanState::default();
        assert!(s.prep_due(&inputs(10), t0));
        s.prep_failed(inputs(10), "no binary".into(), t0);
        assert!(!s.prep_due(&inputs(10), t0 + Duration::from_secs(9)));
        assert!(s.prep_due(&inputs(10), t0 + Duration::from_secs(10)));
        s.prep_failed(inputs(10), "no binary".into(), t0);
        assert!(!s.prep_due(&inputs(10), t0 + Duration::from_secs(19)));
        assert!(s.prep_due(&inputs(10), t0 + Duration::from_secs(20)));
        assert!(
            s.prep_due(&inputs(11), t0),
            "a changed plan is prepared at once"
        );
        s.prep_failed(inputs(11), "no binary".into(), t0);
        assert!(
            matches!(s.prep, Prep::Failed { attempts: 1, .. }),
            "new inputs start the count again"
        );
    }

    #[test]
    fn the_back_off_is_bounded() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(40), LONGEST_RETRY);
    }

    #[test]
    fn a_done_preparation_is_not_repeated_until_something_it_depends_on_changes() {
        let s = PlanState {
            prep: Prep::Done {
                inputs: inputs(10),
                at_unix: 0,
            },
            ..PlanState::default()
        };
        assert!(!s.prep_due(&inputs(10), Instant::now()));
        let mut staged = inputs(10);
        staged.binary = Some((1, 2, 3, 4));
        assert!(s.prep_due(&staged, Instant::now()));
    }
}
