//! Manual upgrades (`add-upgrade --upgrade-height H`, batches), all in one place: the node is
//! launched with the `--halt-height` its SDK needs for the old binary's last block to be H − 1,
//! the application's height is followed on the RPC while the plan is pending, and the upgrade
//! is due once it reads H − 1 — the node can go no further, whether it exits or stays up. That
//! reading is believed only once confirmed ([`Confirm`]: the node's own socket, the same node, a
//! height that holds), since it stops the node for good. The height read near H is journaled, so
//! a restart knows how far the node got; the plan's binary is staged while the node runs
//! towards H.

use std::time::Duration;

use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, Endpoint, HaltHeight};
use crate::node::args;
use crate::tree::Plan;
use crate::upgrade::journal::{Journal, SeenHeight};

mod confirm;
mod poll;
#[cfg(test)]
mod tests;

pub(crate) use confirm::{Reading, Trust};
use poll::poll_height;

/// Heights read within this many blocks of a manual upgrade are kept in the journal.
const KEPT_WITHIN: u64 = 4;

pub(super) struct Manual {
    rpc: Endpoint,
    halt: HaltHeight,
    /// The application height to decide with, last read in this run: one below the plan's last
    /// block as read, or at it once confirmed (see [`Confirm`]).
    pub height: Option<u64>,
    /// A reading of the plan's last block from the node's own socket that was not yet seen to
    /// hold: the node's exit confirms it (it stopped advancing).
    owned: Option<u64>,
    /// The application height a supervisor read for a pending plan, from the journal.
    seen: Option<SeenHeight>,
}

impl Manual {
    pub fn new(cfg: &Config, seen: Option<SeenHeight>) -> Manual {
        Manual {
            rpc: cfg.rpc.clone(),
            halt: cfg.halt_height,
            height: None,
            owned: None,
            seen,
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

    /// Takes a reading the poller published, and journals the height to decide with while the
    /// plan is near. A reading of the plan's last block is journaled only once confirmed: a
    /// journaled height is believed by every later start.
    pub fn note(&mut self, reading: Option<Reading>, plan: Option<&Plan>, journal: &mut Journal) {
        let Some(reading) = reading else { return };
        match reading.trust {
            Trust::Owned => {
                self.owned = Some(reading.height);
                return;
            }
            Trust::Below | Trust::Confirmed => {
                self.owned = None;
                self.height = Some(reading.height);
            }
        }
        let h = reading.height;
        if let Some(plan) = plan
            && h.saturating_add(KEPT_WITHIN) >= plan.height
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

    /// Whether a reading that may decide `plan` could still be on its way: the node was last
    /// read near its last block, and no reading of it was believed yet.
    pub fn awaits_last_reading(&self, plan: Option<&Plan>) -> bool {
        plan.is_some_and(|p| !self.reached(Some(p)) && !self.far_from(p))
    }

    /// Whether the node was last seen far from `plan`'s last block (more than
    /// [`KEPT_WITHIN`] blocks below it, nothing near it read): a relaunch then cannot reach it
    /// unseen.
    pub fn far_from(&self, plan: &Plan) -> bool {
        self.owned.is_none()
            && self
                .height
                .is_some_and(|h| h.saturating_add(KEPT_WITHIN) < plan.height)
    }

    /// The node exited: a last block its own socket reported is confirmed by the exit (it can
    /// advance no further).
    pub fn node_exited(&mut self, plan: Option<&Plan>, journal: &mut Journal) {
        if let Some(height) = self.owned.take() {
            tracing::info!(
                height,
                "the node reported its last block before the upgrade, then exited"
            );
            let reading = Reading {
                height,
                trust: Trust::Confirmed,
            };
            self.note(Some(reading), plan, journal);
        }
    }

    /// Starts following the application's height for `plan`.
    pub fn follow(
        &self,
        plan: &Plan,
        node: Pid,
    ) -> (JoinHandle<()>, watch::Receiver<Option<Reading>>) {
        self.follow_after(plan, node, Duration::ZERO)
    }

    /// [`Manual::follow`], starting after `delay` (a poller started again after it ended).
    pub fn follow_after(
        &self,
        plan: &Plan,
        node: Pid,
        delay: Duration,
    ) -> (JoinHandle<()>, watch::Receiver<Option<Reading>>) {
        let (tx, rx) = watch::channel(None);
        let (rpc, height) = (self.rpc.clone(), plan.height);
        let poller = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            poll_height(rpc, height, node, tx).await;
        });
        (poller, rx)
    }
}
