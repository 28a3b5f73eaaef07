//! The upcoming upgrades from every source, merged into one list, and what changed between two
//! looks at them: a plan that became known, one the chain replaced, one that was cancelled.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tree::Plan;

/// Where an upcoming plan was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `data/upgrade-info.json`: the node halted for it (or is halting).
    UpgradeInfo,
    /// x/upgrade's current plan: governance passed it.
    Chain,
    /// The batch file (`add-upgrade --upgrade-height`, `add-batch-upgrade`).
    Manual,
    /// A governance proposal still in its voting period.
    Proposal,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::UpgradeInfo => "upgrade-info",
            Source::Chain => "chain",
            Source::Manual => "manual",
            Source::Proposal => "proposal",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One upcoming plan and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upcoming {
    pub plan: Plan,
    pub source: Source,
    /// The proposal's id, for a proposed plan.
    pub proposal: Option<u64>,
    /// When its voting period ends (Unix seconds), for a proposed plan.
    pub voting_end_unix: Option<i64>,
}

impl Upcoming {
    pub fn new(plan: Plan, source: Source) -> Upcoming {
        Upcoming {
            plan,
            source,
            proposal: None,
            voting_end_unix: None,
        }
    }

    /// Whether the plan will happen (passed, scheduled or halted for), not only proposed.
    pub fn scheduled(&self) -> bool {
        self.source != Source::Proposal
    }
}

/// Every source's plans in one list, by height. A plan known from several sources is listed
/// once, under the most certain one: the node's own halt, then the chain, then the batch file,
/// then a proposal (a proposal that passed is the chain's plan).
pub fn merge(lists: &[&[Upcoming]]) -> Vec<Upcoming> {
    let mut all: Vec<&Upcoming> = lists.iter().flat_map(|l| l.iter()).collect();
    all.sort_by_key(|u| u.source);
    let mut merged: Vec<Upcoming> = Vec::new();
    for u in all {
        if !merged.iter().any(|m| m.plan.name == u.plan.name) {
            merged.push(u.clone());
        }
    }
    merged.sort_by(|a, b| {
        (a.plan.height, a.source, &a.plan.name).cmp(&(b.plan.height, b.source, &b.plan.name))
    });
    merged
}

/// The next plan that will happen, if any.
pub fn next(list: &[Upcoming]) -> Option<&Upcoming> {
    list.iter().find(|u| u.scheduled())
}

/// What changed between two looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A plan not known before.
    Known(Upcoming),
    /// The same name at another height.
    Moved { before: Upcoming, now: Upcoming },
    /// The same name and height with other info (binaries, checksums).
    InfoChanged(Upcoming),
    /// A proposed plan that is the chain's plan now: its proposal passed.
    Passed(Upcoming),
    /// The chain's plan is another one now (a new `MsgSoftwareUpgrade` replaces the plan).
    Replaced { before: Upcoming, now: Upcoming },
    /// The chain's plan is gone while the chain is below its height (`MsgCancelUpgrade`).
    Cancelled(Upcoming),
    /// A proposal no longer in its voting period that did not become the chain's plan
    /// (rejected, failed or withdrawn), or that the chain reached.
    Ended(Upcoming),
    /// A plan no longer listed otherwise: applied, reached, or removed from the batch file.
    Gone(Upcoming),
}

/// What changed from `before` to `now`. `chain_height` (the chain's last known height) tells a
/// cancelled chain plan from one the chain reached.
pub fn changes(before: &[Upcoming], now: &[Upcoming], chain_height: Option<u64>) -> Vec<Change> {
    let was_chain = |name: &str| {
        before
            .iter()
            .any(|b| b.source == Source::Chain && b.plan.name == name)
    };
    // The chain has one plan at a time: a new one (even a proposal before) replaces the old.
    let new_chain_plan = now
        .iter()
        .find(|u| u.source == Source::Chain && !was_chain(&u.plan.name));
    let mut out = Vec::new();
    let mut replaced_by = None;
    for b in before {
        if now.iter().any(|n| n.plan.name == b.plan.name) {
            continue;
        }
        let reached = chain_height.is_some_and(|h| h >= b.plan.height);
        out.push(match (b.source, new_chain_plan) {
            (Source::Chain, Some(n)) if !reached => {
                replaced_by = Some(n.plan.name.as_str());
                Change::Replaced {
                    before: b.clone(),
                    now: n.clone(),
                }
            }
            (Source::Chain, None) if !reached => Change::Cancelled(b.clone()),
            (Source::Proposal, _) => Change::Ended(b.clone()),
            _ => Change::Gone(b.clone()),
        });
    }
    for n in now {
        let Some(b) = before.iter().find(|b| b.plan.name == n.plan.name) else {
            if replaced_by != Some(n.plan.name.as_str()) {
                out.push(Change::Known(n.clone()));
            }
            continue;
        };
        if b.source == Source::Proposal && n.source == Source::Chain {
            out.push(Change::Passed(n.clone()));
        } else if b.plan.height != n.plan.height {
            out.push(Change::Moved {
                before: b.clone(),
                now: n.clone(),
            });
        } else if b.plan != n.plan {
            out.push(Change::InfoChanged(n.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str, height: u64, source: Source) -> Upcoming {
        Upcoming::new(Plan::manual(name, height), source)
    }

    #[test]
    fn one_plan_from_several_sources_is_listed_once_under_the_most_certain() {
        let chain = [up("v2", 100, Source::Chain)];
        let proposals = [
            up("v2", 100, Source::Proposal),
            up("v3", 90, Source::Proposal),
        ];
        let local = [
            up("v2", 100, Source::UpgradeInfo),
            up("m", 95, Source::Manual),
        ];
        let merged = merge(&[&proposals, &chain, &local]);
        let got: Vec<_> = merged
            .iter()
            .map(|u| (u.plan.name.as_str(), u.source))
            .collect();
        assert_eq!(
            got,
            [
                ("v3", Source::Proposal),
                ("m", Source::Manual),
                ("v2", Source::UpgradeInfo)
            ]
        );
        assert_eq!(next(&merged).unwrap().plan.name, "m");
    }

    #[test]
    fn a_proposal_alone_is_no_next_upgrade() {
        let merged = merge(&[&[up("v3", 90, Source::Proposal)]]);
        assert!(next(&merged).is_none());
    }

    #[test]
    fn a_chain_plan_gone_below_its_height_is_cancelled_and_above_it_is_gone() {
        let before = [up("v2", 100, Source::Chain)];
        assert_eq!(
            changes(&before, &[], Some(50)),
            [Change::Cancelled(before[0].clone())]
        );
        assert_eq!(
            changes(&before, &[], Some(100)),
            [Change::Gone(before[0].clone())]
        );
    }

    #[test]
    fn a_new_chain_plan_in_place_of_the_old_one_is_a_replacement_not_two_changes() {
        let before = [up("v2", 100, Source::Chain)];
        let now = [up("v2b", 120, Source::Chain)];
        assert_eq!(
            changes(&before, &now, Some(50)),
            [Change::Replaced {
                before: before[0].clone(),
                now: now[0].clone()
            }]
        );
    }

    #[test]
    fn a_new_height_for_the_same_name_is_a_change_and_nothing_else_is_said_twice() {
        let before = [up("v2", 100, Source::Chain), up("m", 70, Source::Manual)];
        let now = [up("v2", 110, Source::Chain), up("m", 70, Source::Manual)];
        assert_eq!(
            changes(&before, &now, Some(50)),
            [Change::Moved {
                before: before[0].clone(),
                now: now[0].clone()
            }]
        );
        assert!(changes(&now, &now, Some(50)).is_empty());
        assert_eq!(
            changes(&[], &now, None),
            [Change::Known(now[0].clone()), Change::Known(now[1].clone())]
        );
    }

    #[test]
    fn a_proposal_that_passes_in_place_of_the_chain_plan_replaces_it_and_is_said_passed() {
        let before = [
            up("v2", 100, Source::Chain),
            up("v3", 120, Source::Proposal),
        ];
        let now = [up("v3", 120, Source::Chain)];
        assert_eq!(
            changes(&before, &now, Some(50)),
            [
                Change::Replaced {
                    before: before[0].clone(),
                    now: now[0].clone()
                },
                Change::Passed(now[0].clone())
            ]
        );
    }

    #[test]
    fn a_proposal_that_leaves_its_voting_period_without_passing_has_ended() {
        let before = [up("v3", 120, Source::Proposal), up("m", 70, Source::Manual)];
        assert_eq!(
            changes(&before, &before[1..], Some(50)),
            [Change::Ended(before[0].clone())]
        );
    }

    #[test]
    fn new_info_at_the_same_height_is_its_own_change() {
        let before = [up("v2", 100, Source::Chain)];
        let mut now = before.clone();
        now[0].plan.info = r#"{"binaries":{"linux/amd64":"https://x/v2.0.1"}}"#.into();
        assert_eq!(
            changes(&before, &now, Some(50)),
            [Change::InfoChanged(now[0].clone())]
        );
    }
}
