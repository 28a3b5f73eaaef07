//! One run of the node: launched with the current binary (and the halt of a pending manual
//! upgrade, and its folder's `lib/` on `LD_LIBRARY_PATH`), watched until something ends the run —
//! its exit, a stop request, a plan that became due, a changed batch of manual plans, or, after
//! an upgrade, a failure of the new binary while it is on probation.

mod exit;
mod state;

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

use super::decide::Next;
use super::manual::Reading;
use super::{Ended, RunError, Supervisor};
use crate::config::OnFailedUpgrade;
use crate::node::record::{self, NodeRecord};
use crate::node::{self, Child, Exit};
use crate::plugin::OnUnhealthy;
use crate::tree::{Current, Plan, Read};
use crate::upgrade::journal::{HealthRecord, Resumed};
use crate::upgrade::probation::{self, HEALTH_EXIT_CODE, Verdict};
use crate::upgrade::resumed;
use state::{OnNext, OnSignal, Run};

/// The height poller of a run with a manual halt: its task and what it read last.
type Follow = (JoinHandle<()>, watch::Receiver<Option<Reading>>);

/// What ended a wait of the run's loop.
enum Event {
    Exited(Exit),
    Signal(Signal),
    Verdict(Result<HealthRecord, JoinError>),
    ProbationOver,
    /// The poller read a height (`false`: it ended).
    Height(bool),
    /// What the chain did after the upgrade (none: its follower is done).
    Resumed(Option<Resumed>),
    FilesChanged,
    Look,
}

/// The node of a run and the tasks that watch it with it.
struct Watched {
    node: Child,
    verdict: Option<Verdict>,
    follow: Option<Follow>,
    resumed: Option<resumed::Follow>,
}

impl Supervisor {
    /// Launches the current binary and supervises it until something ends this run.
    pub(super) async fn run_node(&mut self, halt_at: Option<Plan>) -> Result<Ended, RunError> {
        let after_upgrade = self.after_upgrade.take();
        let current = self.layout.current()?;
        let Launched {
            node,
            started,
            spawn_took,
        } = match self.launch(&current, halt_at.as_ref(), after_upgrade.as_ref()) {
            Ok(launched) => {
                // The switch is over: the planner goes on.
                self.held = None;
                launched
            }
            Err(e) => {
                self.held = None;
                return self.not_launched(e, after_upgrade);
            }
        };
        let mut watched = Watched {
            node,
            verdict: None,
            follow: None,
            resumed: None,
        };
        let mut probation = None;
        if let Some(plan) = after_upgrade {
            let (on, verdict) = probation::begin(
                &self.plugins,
                &self.cfg,
                &mut self.journal,
                &self.observer,
                plan,
                started,
                spawn_took,
            );
            watched.resumed = resumed::follow(&self.cfg.rpc, on.plan.height, &self.journal);
            probation = Some(on);
            watched.verdict = verdict;
        }
        if let Some(plan) = &halt_at {
            watched.follow = Some(self.manual.follow(plan, watched.node.pid));
        }
        let halts_by_itself = node::args::has_halt(&self.node_args);
        let mut run = Run::new(halt_at, probation, halts_by_itself, self.cfg.poll_interval);
        loop {
            let event = self.next_event(&mut watched, &run).await;
            watched = match self.on_event(event, watched, &mut run).await {
                Step::Continue(watched) => watched,
                Step::End(ended) => return Ok(ended),
            };
        }
    }

    /// Checks and starts the current binary (with `halt_at`'s halt and its folder's `lib/`),
    /// and records it. `after_upgrade`: the binary an upgrade just switched to.
    fn launch(
        &mut self,
        current: &Current,
        halt_at: Option<&Plan>,
        after_upgrade: Option<&Plan>,
    ) -> Result<Launched, NotLaunched> {
        self.layout
            .check_binary(current)
            .map_err(NotLaunched::Unusable)?;
        let path = self.layout.binary_path(current);
        let args = self.manual.args_for(&self.node_args, halt_at);
        if after_upgrade.is_some() {
            self.journal.checkpoint("launch");
        }
        // The launch phase is the spawn: from building the command to the child's creation.
        let started = Instant::now();
        let mut cmd = Command::new(&path);
        cmd.args(&args);
        if let Some(libs) = self.layout.library_path(current) {
            tracing::debug!(LD_LIBRARY_PATH = %libs.to_string_lossy(), "the node's libraries");
            cmd.env("LD_LIBRARY_PATH", libs);
        }
        // The service manager's channel is wasmvisor's, not the node's.
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(name);
        }
        let node = self
            .reaper
            .spawn(&mut cmd, true)
            .map_err(|source| NotLaunched::Spawn {
                path: path.clone(),
                source,
            })?;
        let spawn_took = started.elapsed();
        match NodeRecord::of(node.pid) {
            Some(r) => {
                if let Err(e) = r.write(&self.layout.root) {
                    tracing::warn!("cannot record the node in {}: {e}", record::NODE_FILE);
                }
            }
            None => tracing::warn!("the node exited as soon as it started"),
        }
        tracing::info!(binary = %path.display(), pid = node.pid.as_raw(), version = current.label(), "node started");
        self.observer
            .node_started(current.label(), node.pid.as_raw());
        Ok(Launched {
            node,
            started,
            spawn_took,
        })
    }

    /// A binary that could not be started: after an upgrade, a failed upgrade when failures
    /// roll back; else supervision ends with the error.
    fn not_launched(
        &self,
        error: NotLaunched,
        after_upgrade: Option<Plan>,
    ) -> Result<Ended, RunError> {
        let rolls_back = self.cfg.on_failed_upgrade == OnFailedUpgrade::Rollback;
        match (error, after_upgrade.filter(|_| rolls_back)) {
            (NotLaunched::Unusable(e), Some(plan)) => Ok(Ended::Failed {
                plan,
                reason: format!("the new binary cannot be started: {e}"),
                node: None,
            }),
            (NotLaunched::Spawn { path, source }, Some(plan)) => Ok(Ended::Failed {
                plan,
                reason: format!(
                    "the new binary {} cannot be started: {source}",
                    path.display()
                ),
                node: None,
            }),
            (NotLaunched::Unusable(e), None) => Err(e.into()),
            (NotLaunched::Spawn { path, source }, None) => Err(RunError::Spawn { path, source }),
        }
    }

    /// Waits for whatever comes first of what the run watches.
    async fn next_event(&mut self, watched: &mut Watched, run: &Run) -> Event {
        let Watched {
            node,
            verdict,
            follow,
            resumed,
        } = watched;
        tokio::select! {
            exit = node.wait() => Event::Exited(exit),
            sig = self.signals.recv() => Event::Signal(sig),
            v = maybe(verdict.as_mut()) => {
                *verdict = None;
                Event::Verdict(v)
            }
            _ = sleep_until(run.probation_ends()), if run.probation_ends().is_some() => Event::ProbationOver,
            alive = height_changed(follow.as_mut()) => Event::Height(alive),
            mark = resumed::next(resumed.as_mut()) => Event::Resumed(mark),
            _ = self.watcher.changed() => Event::FilesChanged,
            _ = sleep_until(run.next_look()) => Event::Look,
        }
    }

    /// Carries out what `event` makes of the run.
    async fn on_event(&mut self, event: Event, mut watched: Watched, run: &mut Run) -> Step {
        match event {
            Event::Exited(exit) => {
                self.observer.node_ended();
                node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                self.last_reading(&mut watched, run).await;
                let died = run.died(exit);
                let probation = run.probation.take();
                let node = watched.end();
                Step::End(
                    self.after_exit(exit, died, run.halt_at.as_ref(), probation, node)
                        .await,
                )
            }
            Event::Signal(sig) => match run.signal(sig as i32, self.signals.stop().is_some()) {
                OnSignal::Forward => {
                    watched.node.signal(sig);
                    Step::Continue(watched)
                }
                OnSignal::Stop => {
                    let exit = watched.node.stop_with(sig, self.cfg.shutdown_grace).await;
                    self.observer.node_ended();
                    node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                    tracing::info!(status = %exit, "node stopped");
                    watched.end();
                    Step::End(Ended::Exit(exit.code()))
                }
            },
            Event::Verdict(verdict) => match verdict {
                Ok(verdict) => self.on_verdict(verdict, watched, run).await,
                Err(_) => Step::Continue(watched),
            },
            Event::ProbationOver => {
                if run.probation_passed() {
                    tracing::info!(
                        probation = %crate::duration::format(self.cfg.probation),
                        "the upgraded node passed its probation (WASMVISOR_UPGRADE_PROBATION)"
                    );
                    probation::end(&mut self.journal);
                }
                Step::Continue(watched)
            }
            Event::Height(alive) => {
                self.on_height(alive, &mut watched, run);
                Step::Continue(watched)
            }
            Event::Resumed(mark) => {
                match mark {
                    Some(mark) => resumed::record(&mut self.journal, &self.observer, mark),
                    None => watched.resumed = None,
                }
                Step::Continue(watched)
            }
            Event::FilesChanged => {
                run.look_now();
                Step::Continue(watched)
            }
            Event::Look => {
                let half_written = matches!(self.layout.read_upgrade_info(), Read::NotYet);
                if !run.looked(half_written) {
                    return Step::Continue(watched);
                }
                let next = self.next();
                self.on_next(run.next(next), watched).await
            }
        }
    }

    /// The height poller read a height, or ended (`alive` false: it only could by a bug, and a
    /// failed poll must never leave the node running past its halt unseen).
    fn on_height(&mut self, alive: bool, watched: &mut Watched, run: &mut Run) {
        let Some((_, rx)) = watched.follow.as_mut() else {
            return;
        };
        if !alive {
            tracing::error!("the node's height poller stopped; starting it again in a second");
            if let Some(plan) = &run.halt_at {
                let pid = watched.node.pid;
                watched.follow = Some(self.manual.follow_after(plan, pid, Duration::from_secs(1)));
            }
            return;
        }
        let reading = *rx.borrow_and_update();
        if let Some(reading) = reading {
            self.observer.chain_height(reading.height);
        }
        self.manual
            .note(reading, run.halt_at.as_ref(), &mut self.journal);
        // The node can go no further: nothing to wait for.
        if self.manual.reached(run.halt_at.as_ref()) {
            run.look_now();
        }
    }

    /// The node exited: the poller may have read a height that the run has not taken yet, and
    /// a poll under way as the node exited may bring its last block (the node's exit is what
    /// confirms it).
    async fn last_reading(&mut self, watched: &mut Watched, run: &Run) {
        let Some((_, rx)) = watched.follow.as_mut() else {
            return;
        };
        let halt_at = run.halt_at.as_ref();
        if self.manual.awaits_last_reading(halt_at) {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
        }
        let reading = *rx.borrow_and_update();
        self.manual.note(reading, halt_at, &mut self.journal);
        self.manual.node_exited(halt_at, &mut self.journal);
    }

    /// The health checks' verdict on the upgraded node: logged, journaled and acted on.
    async fn on_verdict(
        &mut self,
        verdict: HealthRecord,
        mut watched: Watched,
        run: &mut Run,
    ) -> Step {
        let detail = verdict.detail.clone();
        self.observer.health(verdict.healthy, &detail);
        let Some(plan) = run.verdict() else {
            return Step::Continue(watched);
        };
        let (set, observer) = ((&*self.plugins, &self.cfg), &self.observer);
        match probation::on_verdict(set, &mut self.journal, observer, &plan, verdict) {
            None | Some(OnUnhealthy::Warn) => Step::Continue(watched),
            Some(OnUnhealthy::Exit) => {
                watched.node.stop(self.cfg.shutdown_grace).await;
                node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                watched.end();
                Step::End(Ended::Exit(HEALTH_EXIT_CODE))
            }
            Some(OnUnhealthy::Rollback) => Step::End(Ended::Failed {
                plan,
                reason: format!("the health checks judged the upgraded node unhealthy: {detail}"),
                node: Some(watched.end()),
            }),
        }
    }

    /// What the decision from the files makes of the run.
    async fn on_next(&mut self, next: OnNext, mut watched: Watched) -> Step {
        match next {
            OnNext::Upgrade { plan, manual } => {
                tracing::info!(upgrade = %plan.name, height = plan.height, mono_ns = node::monotonic_ns(), "upgrade detected");
                Step::End(Ended::Due {
                    plan,
                    manual,
                    node: Some(watched.end()),
                })
            }
            OnNext::Relaunch { ended_probation } => {
                tracing::info!(
                    "manual upgrades changed: restarting the node so it halts at the right height"
                );
                watched.node.stop(self.cfg.shutdown_grace).await;
                node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                if ended_probation {
                    tracing::info!("the relaunch ends the upgraded node's probation");
                    probation::end(&mut self.journal);
                }
                watched.end();
                Step::End(Ended::Relaunch)
            }
            OnNext::Refused { plan, reason } => {
                tracing::error!(upgrade = %plan.name, "cannot apply this upgrade: {reason}");
                Step::Continue(watched)
            }
            OnNext::Stay => Step::Continue(watched),
        }
    }
}

/// The node of a run, started at `started`; `spawn_took` is the launch phase.
struct Launched {
    node: Child,
    started: Instant,
    spawn_took: Duration,
}

/// Why the node of a run could not be started.
enum NotLaunched {
    /// The binary is missing, not executable or outside the tree.
    Unusable(crate::tree::LayoutError),
    Spawn {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// What the run's loop does after an event.
enum Step {
    Continue(Watched),
    End(Ended),
}

impl Watched {
    /// The run is over: the tasks watching the node with it stop, and the node is handed on.
    fn end(self) -> Child {
        if let Some((poller, _)) = self.follow {
            poller.abort();
        }
        if let Some(verdict) = self.verdict {
            verdict.abort();
            tracing::warn!("the node's run ended before the health check gave its verdict");
        }
        self.node
    }
}

/// Awaits `future`, if there is one (else never).
async fn maybe<F: std::future::Future + Unpin>(future: Option<&mut F>) -> F::Output {
    match future {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Whether the poller read a new height (false: it ended); never, without a poller.
async fn height_changed(follow: Option<&mut Follow>) -> bool {
    match follow {
        Some((_, rx)) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Sleeps until `at` (forever for `None`). A moment already reached resolves at once: a timer
/// would wait for the timer wheel's next millisecond tick, which is most of the detection
/// latency after an inotify event.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) if at <= tokio::time::Instant::now() => {}
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
