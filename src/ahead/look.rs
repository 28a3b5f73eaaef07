//! The planner's loop: ask the chain when due, merge what is upcoming, prepare the next plan,
//! preflight every staged binary, warm the next one shortly before its ETA, then publish.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod publish;

use super::plans::{Inputs, PlanState, Prep};
use super::record::ChainSeen;
use super::upcoming::{self, Source, Upcoming};
use super::{Context, LOCAL_LOOK, Shared, say};
use crate::cancel::Cancel;
use crate::chain::plan::{current_plan, proposed_plans};
use crate::chain::rpc::{Pace, Rpc};
use crate::tree::Layout;
use crate::upgrade::preflight::{self, Checked};

/// How long the node has to answer each query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// The blocks the chain's pace is measured over.
const PACE_BLOCKS: u64 = 100;
/// Consecutive failed polls before the log says the chain cannot be asked: a node's RPC and
/// gRPC come up some time after its start.
const FAILURES_BEFORE_SAYING: u32 = 3;
/// How long before the ETA the next binary is read into the page cache.
const WARM_LEAD: Duration = Duration::from_secs(600);
/// Plans looked at, at most (the nearest ones).
const MAX_PLANS: usize = 16;

/// What the chain said, as of its last answer.
#[derive(Default)]
struct ChainState {
    plan: Vec<Upcoming>,
    proposals: Vec<Upcoming>,
    seen: ChainSeen,
    pace: Option<Pace>,
    failures: u32,
    said_unreachable: bool,
}

pub(super) struct Planner {
    ctx: Context,
    shared: Arc<Shared>,
    chain: ChainState,
    next_ask: Instant,
    states: HashMap<String, PlanState>,
    previous: Vec<Upcoming>,
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

    /// Asks the chain for its plan, the proposals in voting and its pace.
    async fn ask_chain(&mut self) {
        let cfg = &self.ctx.cfg;
        let asked = current_plan(&cfg.grpc, &cfg.rpc, QUERY_TIMEOUT).await;
        let pace = Rpc::new(&cfg.rpc, QUERY_TIMEOUT).pace(PACE_BLOCKS).await;
        self.chain.pace = pace.ok().or(self.chain.pace.take());
        match asked {
            Ok(answer) => {
                if self.chain.said_unreachable {
                    tracing::info!(from = %answer.from, "the chain answers again: upcoming upgrades are known again");
                }
                self.chain.failures = 0;
                self.chain.said_unreachable = false;
                self.chain.plan = answer
                    .plan
                    .into_iter()
                    .map(|p| Upcoming::new(p, Source::Chain))
                    .collect();
                self.chain.proposals = self.proposals().await;
                self.chain.seen = ChainSeen {
                    from: Some(answer.from),
                    error: None,
                    answered_unix: Some(crate::clock::unix_secs()),
                    height: self.chain.pace.as_ref().map(|p| p.height),
                    block_seconds: self
                        .chain
                        .pace
                        .as_ref()
                        .and_then(|p| p.block_ms)
                        .map(|ms| ms / 1000.0),
                };
                self.ctx.observer.plan_poll(true);
            }
            Err(e) => {
                self.chain.failures += 1;
                self.chain.seen.error = Some(e.to_string());
                self.ctx.observer.plan_poll(false);
                if self.chain.failures >= FAILURES_BEFORE_SAYING && !self.chain.said_unreachable {
                    self.chain.said_unreachable = true;
                    tracing::warn!(
                        "cannot learn the next upgrades from the chain: {e}; nothing else changes: an upgrade is still applied when the node halts for it (WASMVISOR_PLAN_POLL=off stops asking)"
                    );
                }
            }
        }
    }

    /// The upgrade proposals in voting; on a failure, the last ones known.
    async fn proposals(&mut self) -> Vec<Upcoming> {
        let cfg = &self.ctx.cfg;
        match proposed_plans(&cfg.grpc, &cfg.rpc, QUERY_TIMEOUT).await {
            Ok(found) => found
                .list
                .into_iter()
                .map(|p| Upcoming {
                    plan: p.plan,
                    source: Source::Proposal,
                    proposal: Some(p.id),
                    voting_end_unix: p.voting_end_unix,
                })
                .collect(),
            Err(e) => {
                tracing::debug!("cannot read the proposals: {e}");
                std::mem::take(&mut self.chain.proposals)
            }
        }
    }

    /// One look at everything upcoming.
    async fn look(&mut self) {
        let local = self
            .shared
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut list = upcoming::merge(&[&local, &self.chain.plan, &self.chain.proposals]);
        list.truncate(MAX_PLANS);
        say::changes(&upcoming::changes(
            &self.previous,
            &list,
            self.chain.seen.height,
        ));
        self.states
            .retain(|name, _| list.iter().any(|u| u.plan.name == *name));
        let layout = match Layout::open(&self.ctx.cfg) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("cannot look at the upcoming upgrades' binaries: {e}");
                return;
            }
        };
        for u in &list {
            if self.to_prepare(u, &list) {
                self.prepare(u, &layout).await;
            }
            self.check(u, &layout).await;
        }
        if let Some(next) = upcoming::next(&list)
            && self.eta(next).is_some_and(|e| e <= WARM_LEAD.as_secs_f64())
        {
            self.warm(next, &layout).await;
        }
        self.publish(&list, &layout);
        self.previous = list;
    }

    /// The next scheduled plan is prepared; proposals too when the operator asked for it. The
    /// plan the node halted for is the upgrade's own.
    fn to_prepare(&self, u: &Upcoming, list: &[Upcoming]) -> bool {
        match u.source {
            Source::UpgradeInfo => false,
            Source::Proposal => self.ctx.cfg.prepare_proposed,
            Source::Chain | Source::Manual => {
                upcoming::next(list).is_some_and(|n| n.plan.name == u.plan.name)
            }
        }
    }

    /// Runs `f` off the runtime as one piece of work, unless an upgrade holds the planner.
    /// `None`: held, stopped, or cancelled meanwhile (the result is dropped).
    async fn work<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Cancel) -> R + Send + 'static,
    ) -> Option<R> {
        let _gate = self.shared.gate.clone().read_owned().await;
        let cancel = self.shared.begin_work()?;
        let result = crate::plugin::off_runtime(move || {
            let r = f(&cancel);
            (!cancel.is_cancelled()).then_some(r)
        })
        .await;
        result.ok().flatten()
    }

    /// Prepares `u` if due (never, failed and its back-off passed, or what it depends on
    /// changed).
    async fn prepare(&mut self, u: &Upcoming, layout: &Layout) {
        let cfg = &self.ctx.cfg;
        let inputs = Inputs::of(cfg, layout, &u.plan);
        let state = self.states.entry(u.plan.name.clone()).or_default();
        if !state.prep_due(&inputs, Instant::now()) {
            return;
        }
        if let Prep::Done { inputs: before, .. } | Prep::Failed { inputs: before, .. } = &state.prep
            && before.plugins_changed(&inputs)
        {
            tracing::warn!(
                "plugins.toml changed since wasmvisor started; preparing upgrade {:?} again with the plugins it loaded then, which the upgrade uses too (restart wasmvisor to use the new configuration)",
                crate::output::shorten(&u.plan.name, 64)
            );
        }
        let (set, cfg, plan) = (self.ctx.plugins.clone(), cfg.clone(), u.plan.clone());
        let Some(result) = self
            .work(move |cancel| crate::upgrade::prepare_until(&set, &cfg, &plan, cancel))
            .await
        else {
            return;
        };
        self.ctx.observer.prepared(result.is_ok());
        let after = Inputs::of(&self.ctx.cfg, layout, &u.plan);
        let state = self.states.entry(u.plan.name.clone()).or_default();
        match result {
            Ok(done) => {
                tracing::info!(upgrade = %crate::output::shorten(&u.plan.name, 64), "prepared ahead of the halt: {done}");
                state.prep = Prep::Done {
                    inputs: after,
                    at_unix: crate::clock::unix_secs(),
                };
            }
            Err(e) => state.prep_failed(after, e.to_string(), Instant::now()),
        }
    }

    /// Preflights `u`'s staged binary, if there is one and it was not checked as it is.
    async fn check(&mut self, u: &Upcoming, layout: &Layout) {
        let cfg = &self.ctx.cfg;
        let Ok(dir) = layout.dir_name(&u.plan.name) else {
            return;
        };
        let state = self.states.entry(u.plan.name.clone()).or_default();
        let Ok(key) = preflight::key(layout, cfg, &dir) else {
            state.check = None;
            return;
        };
        if let Some(known) = self.ctx.checks.get(&key)
            && !state.check_due(&key, Instant::now())
        {
            state.check = Some(known);
            return;
        }
        if !state.check_due(&key, Instant::now()) {
            return;
        }
        let cfg = cfg.clone();
        let launcher = preflight::ThroughReaper(self.ctx.reaper.clone());
        let Some(Ok(checked)) = self
            .work(move |cancel| {
                Layout::open(&cfg)
                    .map(|layout| preflight::check(&layout, &cfg, &dir, key, &launcher, cancel))
            })
            .await
        else {
            return;
        };
        if let Err(reason) = &checked.result {
            self.ctx.observer.preflight_failed();
            tracing::debug!(upgrade = %u.plan.name, "preflight failed: {reason}");
        }
        self.ctx.checks.put(checked.clone());
        let state = self.states.entry(u.plan.name.clone()).or_default();
        state.checked(checked, Instant::now());
    }

    /// Reads the next binary (and its libraries) into the page cache, once per binary.
    async fn warm(&mut self, u: &Upcoming, layout: &Layout) {
        let Some(state) = self.states.get(&u.plan.name) else {
            return;
        };
        let Some(Checked {
            key, result: Ok(_), ..
        }) = &state.check
        else {
            return;
        };
        if state.warmed.as_ref().is_some_and(|(k, _)| k == key) {
            return;
        }
        let key = key.clone();
        let mut files = vec![key.binary.clone()];
        if let Ok(dir) = layout.dir_name(&u.plan.name) {
            let lib = layout
                .root_path
                .join(crate::tree::UPGRADES_DIR)
                .join(dir)
                .join("lib");
            files.push(lib);
        }
        let Some(warmed) = self.work(move |_| crate::preflight::warm(&files)).await else {
            return;
        };
        match warmed {
            Ok(w) => tracing::info!(
                upgrade = %crate::output::shorten(&u.plan.name, 64),
                files = w.files, bytes = w.bytes, took = %crate::duration::format(w.took),
                "the next binary was read into the page cache ahead of its halt"
            ),
            Err(e) => {
                tracing::warn!(upgrade = %crate::output::shorten(&u.plan.name, 64), "cannot read the next binary ahead of its halt: {e}")
            }
        }
        if let Some(state) = self.states.get_mut(&u.plan.name) {
            state.warmed = Some((key, crate::clock::unix_secs()));
        }
    }
}
