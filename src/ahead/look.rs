//! The planner's loop: ask the chain when due (`look/ask.rs`), merge what is upcoming, prepare
//! the next plan, preflight every staged binary and warm the next one shortly before its ETA
//! (`look/work.rs`), then publish (`look/publish.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod ask;
mod publish;
mod work;

use super::plans::PlanState;
use super::record::ChainSeen;
use super::upcoming::{self, Source, Upcoming};
use super::{Context, LOCAL_LOOK, Local, Shared, say};
use crate::cancel::Cancel;
use crate::chain::rpc::Pace;
use crate::plugin::ThreadError;

/// How long before the ETA the next binary is read into the page cache.
const WARM_LEAD: Duration = Duration::from_secs(600);
/// Proposals looked at, at most (the nearest ones): proposals are anyone's to submit, and never
/// push a scheduled plan out.
const MAX_PROPOSALS: usize = 16;
/// A plan name longer than this is no real one (and would cost every log line and label).
const MAX_NAME: usize = 256;

/// What the chain said, as of its last answer.
#[derive(Default)]
struct ChainState {
    plan: Vec<Upcoming>,
    proposals: Vec<Upcoming>,
    seen: ChainSeen,
    pace: Option<Pace>,
    failures: u32,
    said_unreachable: bool,
    /// The last pace and proposal errors said (each said once, until it changes).
    said_pace: Option<String>,
    said_proposals: Option<String>,
}

pub(super) struct Planner {
    ctx: Context,
    shared: Arc<Shared>,
    chain: ChainState,
    next_ask: Instant,
    states: HashMap<String, PlanState>,
    previous: Vec<Upcoming>,
    /// Plans left out as hostile or skipped, already said.
    said_left_out: Vec<String>,
}

impl Planner {
    pub fn new(ctx: Context, shared: Arc<Shared>) -> Planner {
        Planner {
            ctx,
            shared,
            chain: ChainState::default(),
            next_ask: Instant::now(),
            states: HashMap::new(),
            previous: Vec::new(),
            said_left_out: Vec::new(),
        }
    }

    pub async fn run(mut self) {
        loop {
            if self.shared.stopped() {
                return;
            }
            // Nothing at all during an upgrade: its hot path shares this runtime (the hold's
            // end wakes the planner).
            if self.shared.held() {
                self.shared.wake.notified().await;
                continue;
            }
            if let Some(every) = self.ctx.cfg.plan_poll
                && Instant::now() >= self.next_ask
            {
                self.ask_chain().await;
                self.next_ask = Instant::now() + every;
            }
            self.look().await;
            let wait = self.wait();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shared.wake.notified() => {}
            }
        }
    }

    /// Until the next chain poll, retry or look at the files, whichever comes first.
    fn wait(&self) -> Duration {
        let now = Instant::now();
        let poll = match self.ctx.cfg.plan_poll {
            Some(_) => self.next_ask.saturating_duration_since(now),
            None => LOCAL_LOOK,
        };
        self.states
            .values()
            .filter_map(PlanState::next_retry)
            .map(|at| at.saturating_duration_since(now))
            .fold(poll, Duration::min)
    }

    /// One look at everything upcoming.
    async fn look(&mut self) {
        let local = self
            .shared
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let list = self.upcoming(&local);
        // The chain is at least at the height of the plan the running binary applied (a plan it
        // reached is gone, not cancelled, even while the chain's pace is not known).
        let applied = local.applied.as_ref().map(|p| p.height);
        let reached = self.chain.seen.height.max(applied);
        let changes = upcoming::changes(&self.previous, &list, reached);
        say::changes(&changes);
        self.tell_known(&changes);
        self.states
            .retain(|name, _| list.iter().any(|u| u.plan.name == *name));
        for u in &list {
            if let Some(state) = self.states.get_mut(&u.plan.name)
                && self
                    .previous
                    .iter()
                    .any(|p| p.plan.name == u.plan.name && p.plan != u.plan)
            {
                // Rescheduled: its reminders and warming start again.
                state.said = Default::default();
                state.warmed = None;
            }
        }
        for u in &list {
            if self.to_prepare(u, &list, &local) {
                self.prepare(u).await;
            }
            if u.source != Source::UpgradeInfo {
                self.check(u).await;
            }
        }
        self.check_staged(&local.current).await;
        if let Some(next) = upcoming::next(&list)
            && next.source != Source::UpgradeInfo
            && self.eta(next).is_some_and(|e| e <= WARM_LEAD.as_secs_f64())
        {
            self.warm(next).await;
        }
        self.publish(&list, &local).await;
        self.previous = list;
    }

    /// Every source's plans, merged: chain plans the running binary is past and plans at a
    /// `--unsafe-skip-upgrades` height left out, proposals bounded, hostile names refused.
    fn upcoming(&mut self, local: &Local) -> Vec<Upcoming> {
        let past = local.applied.as_ref().map_or(0, |p| p.height);
        let chain_height = self.chain.seen.height.unwrap_or(0);
        let mut proposals: Vec<Upcoming> = self
            .chain
            .proposals
            .iter()
            .filter(|p| p.plan.height > chain_height.max(past))
            .cloned()
            .collect();
        proposals.sort_by_key(|p| p.plan.height);
        proposals.truncate(MAX_PROPOSALS);
        let chain: Vec<Upcoming> = self
            .chain
            .plan
            .iter()
            .filter(|p| p.plan.height > past)
            .filter(|p| local.applied.as_ref().is_none_or(|a| a.name != p.plan.name))
            .cloned()
            .collect();
        let merged = upcoming::merge(&[&local.plans, &chain, &proposals]);
        merged.into_iter().filter(|u| self.keep(u)).collect()
    }

    /// Whether `u` is kept: not a hostile name, not at a skipped height (each said once).
    fn keep(&mut self, u: &Upcoming) -> bool {
        let why = if u.plan.name.len() > MAX_NAME {
            "its name is longer than any real plan's"
        } else if self.ctx.skip_heights.contains(&u.plan.height) {
            "its height is in --unsafe-skip-upgrades"
        } else {
            return true;
        };
        let shown = crate::output::shorten(&u.plan.name, 64);
        if !self.said_left_out.contains(&shown) {
            tracing::info!(
                "upgrade {shown:?} at height {} ({}) is left out: {why}",
                u.plan.height,
                u.source
            );
            self.said_left_out.push(shown);
        }
        false
    }

    /// The next scheduled plan is prepared; proposals too when the operator asked for it. The
    /// plan the node halted for is the upgrade's own, and the folder `current` points at is
    /// never prepared into.
    fn to_prepare(&self, u: &Upcoming, list: &[Upcoming], local: &Local) -> bool {
        let into_current = self
            .ctx
            .layout
            .dir_name(&u.plan.name)
            .is_ok_and(|dir| dir == local.current);
        if into_current {
            return false;
        }
        match u.source {
            Source::UpgradeInfo => false,
            Source::Proposal => self.ctx.cfg.prepare_proposed,
            Source::Chain | Source::Manual => {
                upcoming::next(list).is_some_and(|n| n.plan.name == u.plan.name)
            }
        }
    }

    /// Runs `f` off the runtime as one piece of work, unless an upgrade holds the planner.
    /// `None`: held, stopped, or cancelled meanwhile (the result is dropped); `Some(Err)`: the
    /// work's thread failed.
    async fn work<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Cancel) -> R + Send + 'static,
    ) -> Option<Result<R, ThreadError>> {
        let _gate = self.shared.gate.clone().read_owned().await;
        let cancel = self.shared.begin_work()?;
        let result = crate::plugin::off_runtime(move || {
            let r = f(&cancel);
            (!cancel.is_cancelled()).then_some(r)
        })
        .await;
        match result {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
