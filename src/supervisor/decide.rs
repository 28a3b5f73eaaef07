//! The one question asked before every launch and after every change of the plan files: is there a
//! plan that the running binary has not applied, and has the chain reached it?
//!
//! It is a pure function of what is on disk (and the last height the node reported), so a restart
//! at any moment reaches the same answer as an uninterrupted supervisor.

use crate::tree::plans::BatchError;
use crate::tree::{Current, Layout, LayoutError, Names, Plan, Read};

/// The files a decision is made from, read once.
pub struct Files {
    pub current: Current,
    pub applied: Option<Plan>,
    pub upgrade_info: Read,
    pub batch: Vec<Plan>,
    /// Why the batch file could not be read, if it could not (its plans are then ignored).
    pub batch_error: Option<BatchError>,
}

impl Files {
    pub fn read(layout: &Layout) -> Result<Files, LayoutError> {
        let current = layout.current()?;
        let (batch, batch_error) = match layout.read_batch() {
            Ok(b) => (b, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        Ok(Files {
            applied: layout.applied_plan(&current),
            upgrade_info: layout.read_upgrade_info(),
            current,
            batch,
            batch_error,
        })
    }

    pub fn snapshot<'a>(
        &'a self,
        skip_heights: &'a [u64],
        chain_height: Option<u64>,
        names: Names,
    ) -> Snapshot<'a> {
        Snapshot {
            current: &self.current,
            applied: self.applied.as_ref(),
            upgrade_info: &self.upgrade_info,
            batch: &self.batch,
            skip_heights,
            chain_height,
            names,
        }
    }
}

/// What the files say.
pub struct Snapshot<'a> {
    pub current: &'a Current,
    /// The plan record of the folder `current` points at (none for genesis).
    pub applied: Option<&'a Plan>,
    pub upgrade_info: &'a Read,
    /// Manual plans, sorted by height.
    pub batch: &'a [Plan],
    /// `--unsafe-skip-upgrades` heights from the node's arguments.
    pub skip_heights: &'a [u64],
    /// The last height the node's application reported, when known.
    pub chain_height: Option<u64>,
    /// How plan names become upgrade folder names.
    pub names: Names,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// What comes next, decided before every launch and whenever the files change.
pub enum Next {
    /// Apply `plan` now; the node must not run the current binary any further.
    Apply { plan: Plan, manual: bool },
    /// Run the current binary; with a manual plan pending, tell the node to halt at its height.
    Launch { halt_at: Option<Plan> },
    /// A plan is due but cannot be applied (its name is unusable); the reason says what to do.
    Refuse { plan: Plan, reason: String },
}

/// Why a plan is not pending, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Skipped,
    Applied,
}

impl Snapshot<'_> {
    fn settled(&self, plan: &Plan) -> Option<Settled> {
        if self.skip_heights.contains(&plan.height) {
            return Some(Settled::Skipped);
        }
        if let (Current::Upgrade(current), Ok(dir)) = (self.current, self.names.dir(&plan.name))
            && *current == dir
        {
            return Some(Settled::Applied);
        }
        if self.applied.is_some_and(|a| a.height >= plan.height) {
            return Some(Settled::Applied);
        }
        None
    }

    /// The governance plan in upgrade-info.json and whether it is settled.
    pub fn governance(&self) -> Option<(&Plan, Option<Settled>)> {
        match self.upgrade_info {
            Read::Valid(plan) => Some((plan, self.settled(plan))),
            _ => None,
        }
    }

    /// The lowest manual plan not yet settled.
    pub fn next_manual(&self) -> Option<&Plan> {
        self.pending_manual().next()
    }

    /// The manual plans not yet settled, lowest first.
    pub fn pending_manual(&self) -> impl Iterator<Item = &Plan> {
        self.batch.iter().filter(|p| self.settled(p).is_none())
    }

    pub fn decide(&self) -> Next {
        if let Some((plan, None)) = self.governance() {
            return self.checked(plan.clone(), false);
        }
        match self.next_manual() {
            // The node halts before executing block H, having committed H - 1.
            Some(plan) if self.chain_height.is_some_and(|h| h + 1 >= plan.height) => {
                self.checked(plan.clone(), true)
            }
            Some(plan) => Next::Launch {
                halt_at: Some(plan.clone()),
            },
            None => Next::Launch { halt_at: None },
        }
    }

    fn checked(&self, plan: Plan, manual: bool) -> Next {
        match self.names.dir(&plan.name) {
            Ok(_) => Next::Apply { plan, manual },
            Err(reason) => Next::Refuse {
                plan,
                reason: reason.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(
        current: Current,
        applied: Option<Plan>,
        info: Read,
        batch: &[Plan],
        skip: &[u64],
        height: Option<u64>,
    ) -> Next {
        Snapshot {
            current: &current,
            applied: applied.as_ref(),
            upgrade_info: &info,
            batch,
            skip_heights: skip,
            chain_height: height,
            names: Names { recase: true },
        }
        .decide()
    }

    #[test]
    fn pending_governance_plan_upgrades_first() {
        let d = decide(
            Current::Genesis,
            None,
            Read::Valid(Plan::manual("V2", 10)),
            &[],
            &[],
            None,
        );
        assert_eq!(
            d,
            Next::Apply {
                plan: Plan::manual("V2", 10),
                manual: false
            }
        );
    }

    #[test]
    fn stale_plan_of_the_running_binary_is_not_applied_twice() {
        let d = decide(
            Current::Upgrade("v2".into()),
            Some(Plan::manual("v2", 10)),
            Read::Valid(Plan::manual("V2", 10)),
            &[],
            &[],
            None,
        );
        assert_eq!(d, Next::Launch { halt_at: None });
    }

    #[test]
    fn older_plan_than_the_applied_one_is_stale() {
        let d = decide(
            Current::Upgrade("v3".into()),
            Some(Plan::manual("v3", 20)),
            Read::Valid(Plan::manual("v2", 10)),
            &[],
            &[],
            None,
        );
        assert_eq!(d, Next::Launch { halt_at: None });
    }

    #[test]
    fn skipped_heights_are_not_upgraded() {
        let d = decide(
            Current::Genesis,
            None,
            Read::Valid(Plan::manual("v2", 10)),
            &[],
            &[10],
            None,
        );
        assert_eq!(d, Next::Launch { halt_at: None });
    }

    #[test]
    fn half_written_or_invalid_files_launch_the_current_binary() {
        for info in [Read::NotYet, Read::Invalid("bad".into()), Read::Absent] {
            assert_eq!(
                decide(Current::Genesis, None, info, &[], &[], None),
                Next::Launch { halt_at: None }
            );
        }
    }

    #[test]
    fn manual_plan_halts_the_node_at_its_height_then_upgrades() {
        let batch = [Plan::manual("v2", 10), Plan::manual("v3", 20)];
        let d = decide(Current::Genesis, None, Read::Absent, &batch, &[], Some(5));
        assert_eq!(
            d,
            Next::Launch {
                halt_at: Some(Plan::manual("v2", 10))
            }
        );
        let d = decide(Current::Genesis, None, Read::Absent, &batch, &[], Some(9));
        assert_eq!(
            d,
            Next::Apply {
                plan: Plan::manual("v2", 10),
                manual: true
            }
        );
        let d = decide(
            Current::Upgrade("v2".into()),
            Some(Plan::manual("v2", 10)),
            Read::Valid(Plan::manual("v2", 10)),
            &batch,
            &[],
            Some(12),
        );
        assert_eq!(
            d,
            Next::Launch {
                halt_at: Some(Plan::manual("v3", 20))
            }
        );
    }

    #[test]
    fn unknown_height_never_upgrades_a_manual_plan_early() {
        let d = decide(
            Current::Genesis,
            None,
            Read::Absent,
            &[Plan::manual("v2", 10)],
            &[],
            None,
        );
        assert_eq!(
            d,
            Next::Launch {
                halt_at: Some(Plan::manual("v2", 10))
            }
        );
    }

    #[test]
    fn unusable_names_are_refused() {
        let d = decide(
            Current::Genesis,
            None,
            Read::Valid(Plan::manual("..", 10)),
            &[],
            &[],
            None,
        );
        assert!(matches!(d, Next::Refuse { .. }));
    }
}
