//! What the planner publishes after each look: each plan's readiness and ETA, told to the
//! observer (metrics, `STATUS=`), the log (`say.rs`) and the record `status` reads.

use super::{Local, Planner};
use crate::ahead::plans::Prep;
use crate::ahead::record::{Entry, RECORD_FILE, RECORD_VERSION, Record};
use crate::ahead::say;
use crate::ahead::upcoming::Change;
use crate::ahead::upcoming::{self, Source, Upcoming};
use crate::observe::{NextUpgrade, Notice, Upgrade};
use crate::upgrade::preflight::{self, Checked};

impl Planner {
    /// Seconds to `u`'s height from the chain's pace (0 for the plan the node halted for).
    pub(super) fn eta(&self, u: &Upcoming) -> Option<f64> {
        if u.source == Source::UpgradeInfo {
            return Some(0.0);
        }
        let pace = self.chain.pace.as_ref()?;
        let block = pace.block_ms? / 1000.0;
        let blocks = u.plan.height.saturating_sub(pace.height) as f64;
        let since = (crate::clock::unix_ms() as i64 - pace.time_unix_ms) as f64 / 1000.0;
        Some((blocks * block - since.max(0.0)).max(0.0))
    }

    /// Whether `u` is ready, and why not (or why it was not prepared).
    fn readiness(
        &self,
        u: &Upcoming,
        list: &[Upcoming],
        local: &Local,
    ) -> (Option<bool>, Option<String>) {
        let state = self.states.get(&u.plan.name);
        let check = state.and_then(|s| s.check.as_ref());
        let prep = state.map(|s| &s.prep);
        let checked = |c: Option<&Checked>| match c.map(|c| &c.result) {
            Some(Ok(_)) => (Some(true), None),
            Some(Err(reason)) => (Some(false), Some(reason.to_string())),
            None => (Some(false), Some("no binary is staged".to_string())),
        };
        if self.to_prepare(u, list, local) {
            return match prep {
                Some(Prep::Failed { reason, .. }) => (Some(false), Some(reason.clone())),
                Some(Prep::Done { .. }) => checked(check),
                _ => (None, Some("being prepared".into())),
            };
        }
        match (u.source, check) {
            (_, Some(c)) => checked(Some(c)),
            (Source::Proposal, None) => (
                None,
                Some(
                    "proposed, not prepared (WASMVISOR_PREPARE_PROPOSED=true prepares proposals)"
                        .into(),
                ),
            ),
            (Source::UpgradeInfo, None) => (None, Some("the node halted for it".into())),
            (_, None) => (
                None,
                Some("prepared once the upgrades before it are".into()),
            ),
        }
    }

    /// Tells the notifiers of the plans that became known, passed, moved or replaced another.
    pub(super) fn tell_known(&self, changes: &[Change]) {
        for change in changes {
            let (Change::Known(u)
            | Change::Passed(u)
            | Change::Moved { now: u, .. }
            | Change::Replaced { now: u, .. }) = change
            else {
                continue;
            };
            self.ctx.observer.tell(Notice::PlanKnown {
                upgrade: Upgrade::new(&u.plan.name, u.plan.height),
                source: u.source.label().into(),
                eta_seconds: self.eta(u).map(|e| e as u64),
            });
        }
    }

    /// Tells the observer, the log and the record (written off the runtime).
    pub(super) async fn publish(&mut self, list: &[Upcoming], local: &Local) {
        let mut entries = Vec::new();
        let next = upcoming::next(list).map(|n| n.plan.name.clone());
        for u in list {
            let (ready, reason) = self.readiness(u, list, local);
            let eta = self.eta(u);
            if u.scheduled()
                && let Some(state) = self.states.get_mut(&u.plan.name)
            {
                let said = say::readiness(&mut state.said, u, ready, reason.as_deref(), eta);
                if let (true, Some(ready)) = (said, ready) {
                    self.ctx.observer.tell(Notice::Readiness {
                        upgrade: Upgrade::new(&u.plan.name, u.plan.height),
                        ready,
                        reason: reason.clone().unwrap_or_else(|| "ready".into()),
                        eta_seconds: eta.map(|e| e as u64),
                    });
                }
            }
            if next.as_deref() == Some(u.plan.name.as_str()) {
                self.ctx.observer.next_upgrade(Some(NextUpgrade {
                    name: u.plan.name.clone(),
                    height: u.plan.height,
                    source: u.source.label().into(),
                    eta_seconds: eta,
                    ready,
                    reason: reason.clone(),
                }));
            }
            entries.push(self.entry(u, ready, reason, eta));
        }
        if next.is_none() {
            self.ctx.observer.next_upgrade(None);
        }
        let all: Vec<(String, u64, String)> = list
            .iter()
            .map(|u| (u.plan.name.clone(), u.plan.height, u.source.label().into()))
            .collect();
        self.ctx.observer.upcoming(&all);
        let record = Record {
            version: RECORD_VERSION,
            written_unix: crate::clock::unix_secs(),
            supervisor_pid: std::process::id(),
            plan_poll: self
                .ctx
                .cfg
                .plan_poll
                .map_or("off".into(), crate::duration::format),
            chain: self.chain.seen.clone(),
            upcoming: entries,
        };
        let layout = self.ctx.layout.clone();
        let written = tokio::task::spawn_blocking(move || record.write(&layout.root)).await;
        if let Ok(Err(e)) = written {
            tracing::debug!("cannot write {}: {e}", RECORD_FILE);
        }
    }

    fn entry(
        &self,
        u: &Upcoming,
        ready: Option<bool>,
        reason: Option<String>,
        eta: Option<f64>,
    ) -> Entry {
        let state = self.states.get(&u.plan.name);
        let check = state.and_then(|s| s.check.as_ref());
        let passed = check.and_then(|c| c.result.as_ref().ok());
        Entry {
            name: u.plan.name.clone(),
            height: u.plan.height,
            source: u.source,
            proposal: u.proposal,
            voting_end_unix: u.voting_end_unix,
            eta_seconds: eta,
            ready,
            reason,
            binary: check.map(|c| preflight::shown(&self.ctx.layout, &c.key.binary)),
            sha256: check.map(|c| c.sha256.clone()).filter(|s| !s.is_empty()),
            preflight: passed.and_then(|p| p.output.clone()),
            prepared_unix: match state.map(|s| &s.prep) {
                Some(Prep::Done { at_unix, .. }) => Some(*at_unix),
                _ => None,
            },
            checked_unix: check.map(|c| c.at_unix),
            warmed_unix: state.and_then(|s| s.warmed.as_ref().map(|(_, at)| *at)),
        }
    }
}
