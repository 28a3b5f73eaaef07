//! Ready before the halt: the upcoming upgrades learnt while the node runs, their binaries
//! staged and checked days ahead, and whether the node will come back said where operators
//! look.
//!
//! One planner task per supervisor. At start and every `WASMVISOR_PLAN_POLL` it asks the chain
//! for x/upgrade's current plan and the upgrade proposals in voting (`crate::chain::plan`) and
//! its recent pace (for an ETA); the supervisor tells it the plans of the files (upgrade-info.json,
//! the batch file) whenever it reads them. The lists are merged (`upcoming.rs`); what changed is
//! said; the next plan is prepared as its upgrade would prepare it (`crate::upgrade::prepare`:
//! the same resolvers, sources and policies), retried with a back-off while that fails and again
//! when what it depends on changes (`plans.rs`); every staged binary is preflighted
//! (`crate::upgrade::preflight`) and, shortly before the ETA, read into the page cache. The
//! result goes to the observer (metrics, `STATUS=`), to the log (`say.rs`: on change, and at 24 h,
//! 1 h and 10 min before the ETA while not ready) and to the record `status` reads
//! (`record.rs`).
//!
//! It never touches `current`, `data/` or the node (it works in the tree the supervisor opened,
//! never prepares into the folder `current` points at, and runs the binary it checks in a
//! scratch folder), and an upgrade waits for it only as long as its work in flight takes to
//! notice a cancellation: the supervisor takes a [`Held`] before an upgrade, which cancels that
//! work (a download resumes later) and keeps new work from starting until the upgrade is over.

mod look;
mod plans;
pub mod record;
mod say;
pub mod upcoming;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedRwLockWriteGuard, RwLock};

use crate::cancel::Cancel;
use crate::config::Config;
use crate::observe::Observer;
use crate::plugin::PluginSet;
use crate::tree::{Layout, Plan};
use crate::upgrade::preflight::Checks;
pub use upcoming::{Source, Upcoming};

/// How often the files' plans are looked at again when the chain is not asked.
const LOCAL_LOOK: Duration = Duration::from_secs(60);

/// What the planner works with.
pub struct Context {
    pub cfg: Config,
    pub plugins: Arc<PluginSet>,
    pub observer: Observer,
    /// The preflight results, shared with the upgrade (which checks at the halt what was not
    /// checked ahead).
    pub checks: Arc<Checks>,
    /// The tree, opened by the supervisor: the planner never opens (nor recovers) it itself.
    pub layout: Arc<Layout>,
    /// `--unsafe-skip-upgrades` heights from the node's arguments: never prepared.
    pub skip_heights: Vec<u64>,
    /// The supervisor's reaper, through which a preflight runs the binary.
    pub reaper: crate::node::Reaper,
}

/// What the supervisor read of the files at its last decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// The plans still to come: upgrade-info.json's and the batch file's.
    pub plans: Vec<Upcoming>,
    /// The plan the running binary applied (a chain plan at or below it is over).
    pub applied: Option<Plan>,
    /// The folder `current` points at (never prepared into).
    pub current: String,
}

/// Whether an upgrade holds the planner, and the token of the work in flight.
#[derive(Default)]
struct Work {
    held: bool,
    token: Cancel,
}

/// What the supervisor and the planner share.
struct Shared {
    local: Mutex<Local>,
    wake: Notify,
    /// One lock, so that work either sees the hold or is cancelled by it.
    work: Mutex<Work>,
    /// Taken for reading by each piece of work, for writing by a hold.
    gate: Arc<RwLock<()>>,
    stopped: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn lock_work(&self) -> std::sync::MutexGuard<'_, Work> {
        self.work.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh token for one piece of work, unless an upgrade holds the planner.
    fn begin_work(&self) -> Option<Cancel> {
        let mut work = self.lock_work();
        if work.held || self.stopped() {
            return None;
        }
        work.token = Cancel::new();
        Some(work.token.clone())
    }

    fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.lock_work().token.cancel();
        self.wake.notify_one();
    }

    fn held(&self) -> bool {
        self.lock_work().held
    }

    fn stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The supervisor's handle on its planner.
pub struct Handle {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// While it lives, the planner does nothing: an upgrade is under way.
pub struct Held {
    shared: Arc<Shared>,
    _gate: OwnedRwLockWriteGuard<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shared.lock_work().held = false;
        self.shared.wake.notify_one();
    }
}

/// Starts the planner.
pub fn spawn(ctx: Context) -> Handle {
    let shared = Arc::new(Shared {
        local: Mutex::new(Local::default()),
        wake: Notify::new(),
        work: Mutex::new(Work::default()),
        gate: Arc::new(RwLock::new(())),
        stopped: false.into(),
    });
    let planner = look::Planner::new(ctx, shared.clone());
    let task = tokio::spawn(planner.run());
    Handle { shared, task }
}

impl Handle {
    /// What the supervisor read of the files: looked at again when it changed.
    pub fn local(&self, now: Local) {
        let mut local = self.shared.local.lock().unwrap_or_else(|p| p.into_inner());
        if *local != now {
            *local = now;
            self.shared.wake.notify_one();
        }
    }

    /// Stops the planner's work in flight and waits for it to end; nothing starts again until
    /// the returned guard is dropped.
    pub async fn hold(&self) -> Held {
        {
            let mut work = self.shared.lock_work();
            work.held = true;
            work.token.cancel();
        }
        let gate = self.shared.gate.clone().write_owned().await;
        Held {
            shared: self.shared.clone(),
            _gate: gate,
        }
    }

    /// A stop request: the work in flight is cancelled and the planner ends.
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// A closure for the stop request's hook.
    pub fn stopper(&self) -> impl Fn() + Send + 'static {
        let shared = self.shared.clone();
        move || shared.stop()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop();
        self.task.abort();
    }
}
