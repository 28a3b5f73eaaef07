//! Manual upgrades (`add-upgrade --upgrade-height H`, batches), all in one place: the node is
//! launched with the `--halt-height` its SDK needs for the old binary's last block to be H − 1,
//! the application's height is followed on the RPC while the plan is pending, and the upgrade
//! is due once it reads H − 1 — the node can go no further, whether it exits or stays up. The
//! height read near H is journaled, so a restart knows how far the node got; the plan's binary
//! is staged while the node runs towards H.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, Endpoint, HaltHeight};
use crate::node::{args, rpc};
use crate::plugin::PluginSet;
use crate::tree::Plan;
use crate::tree::journal::{Journal, SeenHeight};

/// Heights read within this many blocks of a manual upgrade are kept in the journal.
const KEPT_WITHIN: u64 = 4;

pub(super) struct Manual {
    rpc: Endpoint,
    halt: HaltHeight,
    /// The application height last read in this run.
    pub height: Option<u64>,
    /// The application height a supervisor read for a pending plan, from the journal.
    seen: Option<SeenHeight>,
    /// Plans whose binary was already prepared ahead of their height.
    prepared: BTreeSet<String>,
}

impl Manual {
    pub fn new(cfg: &Config, seen: Option<SeenHeight>) -> Manual {
        Manual {
            rpc: cfg.rpc.clone(),
            halt: cfg.halt_height,
            height: None,
            seen,
            prepared: BTreeSet::new(),
        }
    }

    /// The node's arguments for a run that must halt before `plan` (if any).
    pub fn args_for(&self, base: &[String], plan: Option<&Plan>) -> Vec<String> {
        let mut args = base.to_vec();
        if let Some(plan) = plan {
            let flag = self.halt.flag_for(plan.height);
            args::insert_halt_height(&mut args, flag);
            tracing::info!(
                upgrade = %plan.name,
                height = plan.height,
                halt_height = flag,
                semantics = self.halt.name(),
                "manual upgrade pending: the node will stop after block {}",
                plan.height - 1
            );
        }
        args
    }

    /// The application height to decide with: this run's, else what a previous supervisor read
    /// for a plan that is still in the batch (an application height never goes back).
    pub fn known_height(&self, batch: &[Plan]) -> Option<u64> {
        self.height.or_else(|| {
            let seen = self.seen.as_ref()?;
            batch
                .iter()
                .any(|p| p.name == seen.upgrade && p.height == seen.upgrade_height)
                .then_some(seen.app_height)
        })
    }

    /// Whether the application reported the last block before `plan`.
    pub fn reached(&self, plan: Option<&Plan>) -> bool {
        plan.is_some_and(|p| self.height.is_some_and(|h| h + 1 >= p.height))
    }

    /// Takes a height the poller read, and journals it while the plan is near.
    pub fn note(&mut self, height: Option<u64>, plan: Option<&Plan>, journal: &mut Journal) {
        self.height = height;
        if let (Some(h), Some(plan)) = (height, plan)
            && h + KEPT_WITHIN >= plan.height
        {
            let seen = SeenHeight {
                upgrade: plan.name.clone(),
                upgrade_height: plan.height,
                app_height: h,
            };
            if let Err(e) = journal.record_seen(seen.clone()) {
                tracing::warn!("cannot journal the node's height: {e}");
            }
            self.seen = Some(seen);
        }
    }

    /// Starts following the application's height for `plan`.
    pub fn follow(&self, plan: &Plan) -> (JoinHandle<()>, watch::Receiver<Option<u64>>) {
        let (tx, rx) = watch::channel(self.height);
        let poller = tokio::spawn(poll_height(self.rpc.clone(), plan.height, tx));
        (poller, rx)
    }

    /// Stages `plan`'s binary in the background while the node runs towards its height, so
    /// the upgrade finds it there (once per plan and supervisor).
    pub fn prepare_ahead(&mut self, plan: &Plan, plugins: &Arc<PluginSet>, cfg: &Config) {
        if !self.prepared.insert(plan.name.clone()) {
            return;
        }
        let (set, cfg, plan) = (plugins.clone(), cfg.clone(), plan.clone());
        tokio::spawn(async move {
            let name = plan.name.clone();
            let result =
                crate::plugin::off_runtime(move || crate::upgrade::prepare(&set, &cfg, &plan))
                    .await
                    .and_then(|r| r);
            match result {
                Ok(done) => tracing::info!(upgrade = %name, "prepared ahead of the halt: {done}"),
                Err(e) => {
                    tracing::warn!(upgrade = %name, "cannot prepare ahead of the halt (the upgrade will try again): {e}")
                }
            }
        });
    }
}

/// Follows the application's height while a manual upgrade is pending, faster as the height
/// nears, so the last block before the upgrade (H - 1) is seen at once. Until this run's RPC first
/// answers (for up to a minute), it polls quickly: a node that halts and exits (SDK v0.47) keeps
/// its RPC up only briefly.
async fn poll_height(rpc: Endpoint, halt: u64, tx: watch::Sender<Option<u64>>) {
    let started = Instant::now();
    let mut answered = false;
    loop {
        let period = match *tx.borrow() {
            _ if !answered && started.elapsed() < Duration::from_secs(60) => {
                Duration::from_millis(25)
            }
            Some(h) if h + 4 >= halt => Duration::from_millis(25),
            Some(h) if h + 20 >= halt => Duration::from_millis(250),
            _ => Duration::from_secs(1),
        };
        if let Ok(h) = rpc::app_height(&rpc, Duration::from_millis(500)).await {
            answered = true;
            tx.send_if_modified(|old| {
                let changed = *old != Some(h);
                *old = Some(h);
                changed
            });
        }
        tokio::time::sleep(period).await;
    }
}
