//! `wasmvisor run`: the loop decide → launch → run → upgrade, over and over until the node exits
//! on its own, a stop request ends it, or an upgrade completes with
//! `DAEMON_RESTART_AFTER_UPGRADE=false`.
//!
//! The loop asks [`decide`] before every launch, so a supervisor started (or restarted) at any
//! moment first applies a pending upgrade, never runs a binary past its plan, and never applies a
//! plan twice.
//!
//! - `start.rs`: the home opened and locked, what watches, serves and plans started.
//! - `decide.rs`: the decision, a pure function of the files; `watch.rs`: noticing they changed.
//! - `run/`: one run of the node; `manual/`: manual upgrades.
//! - `crate::ahead`: the planner, told the files' plans at every decision and held during an
//!   upgrade.
//! - `resume.rs`: what a start finds (a leftover node, an interrupted or refused upgrade, an
//!   unfinished rollback).
//! - `failure.rs`: a failed upgrade (rolled back, never retried with the same binary) and a
//!   crashed node (relaunched after a backoff, within a tally).
//! - the upgrade itself is `crate::upgrade`, run over borrowed parts of the supervisor.

pub mod decide;
mod error;
mod failure;
mod manual;
mod resume;
mod run;
mod start;
mod watch;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::node::signals::Signals;
use crate::node::{Child, Exit, Reaper};
use crate::observe::Observer;
use crate::plugin::PluginSet;
use crate::tree::{Layout, Plan, Read};
use crate::upgrade::journal::Journal;
use crate::upgrade::preflight::Checks;
use crate::upgrade::{Outcome, Upgrade};
use decide::{Files, Next, Settled};

pub use error::RunError;
use manual::Manual;
pub use start::run;
use watch::Watcher;

/// How one run of the node ended.
enum Ended {
    /// Supervision is over: exit with this status.
    Exit(i32),
    /// A plan is due: the node (still alive, or already exited) must give way to the upgrade.
    Due {
        plan: Plan,
        manual: bool,
        node: Option<Child>,
    },
    /// Launch again (the halt height changed).
    Relaunch,
    /// The binary `plan` switched to failed before it proved itself, and the configuration says
    /// to roll such an upgrade back.
    Failed {
        plan: Plan,
        reason: String,
        node: Option<Child>,
    },
    /// The node died on its own outside an upgrade, and crash restarts are on.
    Crashed(Exit),
}

pub struct Supervisor {
    cfg: Config,
    layout: Layout,
    journal: Journal,
    signals: Signals,
    reaper: Reaper,
    watcher: Watcher,
    plugins: Arc<PluginSet>,
    /// The node's arguments, as given to `run`.
    node_args: Vec<String>,
    /// `--unsafe-skip-upgrades` heights from them.
    skip_heights: Vec<u64>,
    manual: Manual,
    /// The last complaint about upgrade-info.json, so a bad file is reported once, not per event.
    last_complaint: Option<String>,
    /// The upgrade whose new binary the next launch starts: its launch is journaled, its
    /// health checked, and it is on probation.
    after_upgrade: Option<Plan>,
    /// When the node died on its own, within the last `RESTART_WINDOW`.
    deaths: VecDeque<Instant>,
    /// What systemd, Prometheus and the probes are told.
    observer: Observer,
    /// The planner: the upcoming upgrades, prepared and checked ahead.
    ahead: crate::ahead::Handle,
    /// The preflights' results, shared with the planner.
    checks: Arc<Checks>,
    /// The planner's hold from an applied upgrade until its new binary is launched: the launch
    /// is the last step of the switch, and the planner's work would compete with it.
    held: Option<crate::ahead::Held>,
}

/// What `GET /status` on the metrics address answers: the `status --json` document.
pub type StatusSource = Box<dyn Fn() -> Result<String, String> + Send + Sync>;

/// The plans of the files that are still to come, for the planner.
fn upcoming(snapshot: &decide::Snapshot<'_>) -> Vec<crate::ahead::Upcoming> {
    use crate::ahead::{Source, Upcoming};
    let mut list = Vec::new();
    if let Some((plan, None)) = snapshot.governance() {
        list.push(Upcoming::new(plan.clone(), Source::UpgradeInfo));
    }
    list.extend(
        snapshot
            .pending_manual()
            .map(|p| Upcoming::new(p.clone(), Source::Manual)),
    );
    list
}

impl Supervisor {
    async fn supervise(&mut self) -> Result<i32, RunError> {
        if self.signals.stop_requested() {
            return Ok(self.signals.stop_status());
        }
        self.stop_leftover_node().await?;
        if self.signals.stop_requested() {
            return Ok(self.signals.stop_status());
        }
        if let Some(status) = self.resume().await? {
            return Ok(status);
        }
        loop {
            if self.signals.stop_requested() {
                return Ok(self.signals.stop_status());
            }
            let ended = match self.next() {
                Next::Apply { plan, manual } => Ended::Due {
                    plan,
                    manual,
                    node: None,
                },
                Next::Refuse { plan, reason } => {
                    return Err(RunError::Refused {
                        name: crate::output::shorten(&plan.name, 64),
                        height: plan.height,
                        reason,
                    });
                }
                Next::Launch { halt_at } => self.run_node(halt_at).await?,
            };
            let exit = match ended {
                Ended::Exit(status) => Some(status),
                Ended::Relaunch => None,
                Ended::Due { plan, manual, node } => self.upgrade(plan, manual, node).await?,
                Ended::Failed { plan, reason, node } => {
                    Some(self.failed(plan, reason, node).await?)
                }
                Ended::Crashed(exit) => self.crashed(exit).await,
            };
            if let Some(status) = exit {
                return Ok(status);
            }
        }
    }

    /// The parts of the supervisor an upgrade works with.
    fn upgrade_context(&mut self) -> Upgrade<'_> {
        Upgrade {
            cfg: &self.cfg,
            layout: &self.layout,
            journal: &mut self.journal,
            signals: &mut self.signals,
            reaper: &self.reaper,
            plugins: &self.plugins,
            observer: &self.observer,
            checks: &self.checks,
        }
    }

    /// Applies `plan` (stopping `node` first), unless its staged binary failed before: then
    /// waits for a different one. A refusal is journaled with what it depended on, so a restart
    /// retries it only once something changed. Returns the status to exit with, if supervision
    /// ends here (a stop request, `DAEMON_RESTART_AFTER_UPGRADE=false`, a rollback).
    async fn upgrade(
        &mut self,
        plan: Plan,
        manual: bool,
        node: Option<Child>,
    ) -> Result<Option<i32>, RunError> {
        if let Some(failed) = crate::upgrade::failed_before(&self.layout, &self.journal, &plan)
            .await
            .into_failure()
        {
            return self.await_new_binary(&plan, failed, node).await;
        }
        // The planner's work in flight (a download for this very plan, perhaps) stops first.
        // A stop request meanwhile cancels that work too; the upgrade then sees the request.
        // (A hold kept from an upgrade whose binary never launched ends first.)
        self.held = None;
        let held = self.signals.until_stop(self.ahead.hold()).await;
        let outcome = self
            .upgrade_context()
            .apply(plan.clone(), manual, node)
            .await;
        if matches!(outcome, Outcome::Applied) {
            self.held = held;
        }
        self.after_apply(plan, outcome).await
    }

    /// What follows an attempt to apply `plan` (or to finish it after the switch).
    async fn after_apply(&mut self, plan: Plan, outcome: Outcome) -> Result<Option<i32>, RunError> {
        if let Some(result) = outcome.result() {
            self.observer.upgrade_ended(result);
        }
        if let Outcome::Refused(e) | Outcome::Failed(e) = &outcome {
            self.observer.tell(crate::observe::Notice::UpgradeFailed {
                upgrade: crate::observe::Upgrade::new(&plan.name, plan.height),
                reason: e.to_string(),
            });
        }
        match outcome {
            Outcome::Applied => {
                self.upgraded(plan);
                if self.cfg.restart_after_upgrade {
                    return Ok(None);
                }
                tracing::info!("upgrade complete; DAEMON_RESTART_AFTER_UPGRADE=false, exiting");
                Ok(Some(0))
            }
            Outcome::Interrupted => Ok(Some(self.signals.stop_status())),
            Outcome::FailedBefore => {
                match crate::upgrade::failed_before(&self.layout, &self.journal, &plan)
                    .await
                    .into_failure()
                {
                    Some(failed) => self.await_new_binary(&plan, failed, None).await,
                    None => Ok(None),
                }
            }
            Outcome::RollBack(e) => Ok(Some(self.failed(plan, e.to_string(), None).await?)),
            Outcome::Refused(e) => {
                self.record_refusal(e.to_string());
                Err(e.into())
            }
            Outcome::Failed(e) => Err(e.into()),
        }
    }

    /// An upgrade completed: the next launch starts its binary.
    fn upgraded(&mut self, plan: Plan) {
        self.after_upgrade = Some(plan);
    }

    /// Reads the files and decides. Problems with the files are logged, never fatal.
    fn next(&mut self) -> Next {
        let files = match Files::read(&self.layout) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("{e}");
                return Next::Launch { halt_at: None };
            }
        };
        self.complain_about(&files.upgrade_info);
        self.observer.current(
            files.current.label(),
            files.applied.as_ref().map(|p| p.name.as_str()),
        );
        if let Some(e) = &files.batch_error {
            tracing::error!("{e}; manual upgrades are ignored until it is fixed");
        }
        let chain_height = self.manual.known_height(&files.batch);
        let snapshot = files.snapshot(&self.skip_heights, chain_height, self.layout.names);
        self.ahead.local(crate::ahead::Local {
            plans: upcoming(&snapshot),
            applied: files.applied.clone(),
            current: files.current.label().to_string(),
        });
        self.observer.pending(match snapshot.governance() {
            Some((plan, None)) => Some((plan.name.as_str(), plan.height, "governance")),
            _ => snapshot
                .next_manual()
                .map(|p| (p.name.as_str(), p.height, "manual")),
        });
        if let Some((plan, Some(Settled::Skipped))) = snapshot.governance() {
            tracing::info!(upgrade = %plan.name, height = plan.height, "height is in --unsafe-skip-upgrades; not upgrading");
        }
        snapshot.decide()
    }

    fn complain_about(&mut self, info: &Read) {
        let complaint = match info {
            Read::Invalid(reason) => Some(reason.clone()),
            _ => None,
        };
        if complaint != self.last_complaint {
            if let Some(reason) = &complaint {
                tracing::error!(
                    file = %self.layout.upgrade_info_path().display(),
                    "ignoring an invalid upgrade plan: {reason}; fix or remove the file (the node rewrites it at its next halt)"
                );
            }
            self.last_complaint = complaint;
        }
    }
}
