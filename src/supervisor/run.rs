//! One run of the node: launched with the current binary (and the halt of a pending manual
//! upgrade, and its folder's `lib/` on `LD_LIBRARY_PATH`), watched until something ends the run —
//! its exit, a stop request, a plan that became due, a changed batch of manual plans, or, after
//! an upgrade, a failure of the new binary while it is on probation.

use std::process::Command;
use std::time::{Duration, Instant};

use super::decide::Decision;
use super::health::{self, HEALTH_EXIT_CODE};
use super::{Ended, RunError, Supervisor};
use crate::config::{HaltHeight, OnFailedUpgrade};
use crate::node::record::{self, NodeRecord};
use crate::node::{self, Exit};
use crate::plugin::OnUnhealthy;
use crate::tree::{Plan, Read};

/// An upgraded node that has not yet proved itself: a failure now is a failed upgrade.
struct Probation {
    plan: Plan,
    launched: Instant,
    /// When it ends without a health check (`WASMVISOR_UPGRADE_PROBATION`); with one, it ends
    /// at the verdict.
    until: Option<tokio::time::Instant>,
}

impl Supervisor {
    /// Launches the current binary and supervises it until something ends this run.
    pub(super) async fn run_node(&mut self, halt_at: Option<Plan>) -> Result<Ended, RunError> {
        let current = self.layout.current()?;
        let after_upgrade = self.after_upgrade.take();
        // A new binary that cannot even start is a failed upgrade, when failures roll back.
        let fails = |plan: &Option<Plan>, cfg: &crate::config::Config| {
            plan.clone()
                .filter(|_| cfg.on_failed_upgrade == OnFailedUpgrade::Rollback)
        };
        if let Err(e) = self.layout.check_binary(&current) {
            return match fails(&after_upgrade, &self.cfg) {
                Some(plan) => Ok(Ended::Failed {
                    plan,
                    reason: format!("the new binary cannot be started: {e}"),
                    node: None,
                }),
                None => Err(e.into()),
            };
        }
        let path = self.layout.binary_path(&current);
        let args = self.manual.args_for(&self.node_args, halt_at.as_ref());
        if after_upgrade.is_some() {
            self.journal.checkpoint("launch");
        }
        let started = Instant::now();
        let mut cmd = Command::new(&path);
        cmd.args(&args);
        if let Some(libs) = self.layout.library_path(&current) {
            tracing::debug!(LD_LIBRARY_PATH = %libs.to_string_lossy(), "the node's libraries");
            cmd.env("LD_LIBRARY_PATH", libs);
        }
        // The service manager's channel is wasmvisor's, not the node's.
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(name);
        }
        let mut node = match self.reaper.spawn(&mut cmd, true) {
            Ok(node) => node,
            Err(source) => {
                return match fails(&after_upgrade, &self.cfg) {
                    Some(plan) => Ok(Ended::Failed {
                        plan,
                        reason: format!(
                            "the new binary {} cannot be started: {source}",
                            path.display()
                        ),
                        node: None,
                    }),
                    None => Err(RunError::Spawn { path, source }),
                };
            }
        };
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
        let mut health = None;
        let mut probation = None;
        if let Some(plan) = after_upgrade {
            tracing::info!(phase = "launch", duration = %crate::duration::format(spawn_took), "phase done");
            let window = match self.plugins.health.iter().map(|h| h.spec.deadline).max() {
                Some(deadline) => deadline,
                None => self.cfg.probation,
            };
            if let Err(e) = self.journal.record_launch(spawn_took, window) {
                tracing::warn!("cannot journal the launch: {e}");
            }
            if let Some(last) = &self.journal.state.last {
                let ms: f64 = last
                    .phases
                    .iter()
                    .filter(|p| p.phase != crate::upgrade::journal::Phase::Health)
                    .map(|p| p.ms)
                    .sum();
                self.observer.downtime(Duration::from_secs_f64(ms / 1000.0));
            }
            let until = if self.plugins.health.is_empty() {
                tracing::info!(
                    probation = %crate::duration::format(self.cfg.probation),
                    "the upgraded node is on probation: a failure before it ends is a failed upgrade"
                );
                Some(tokio::time::Instant::from_std(started + self.cfg.probation))
            } else {
                self.journal.checkpoint("health");
                health = Some(tokio::spawn(health::check_until_final(
                    self.plugins.clone(),
                    plan.clone(),
                    started,
                )));
                None
            };
            probation = Some(Probation {
                plan,
                launched: started,
                until,
            });
        }
        let mut follow = None;
        if let Some(plan) = &halt_at {
            self.manual.prepare_ahead(plan, &self.plugins, &self.cfg);
            follow = Some(self.manual.follow(plan, node.pid));
        }
        let mut recheck: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(20);
        // Signals passed on to the node: its death by one of them is no crash.
        let mut forwarded: Vec<i32> = Vec::new();

        let ended = loop {
            tokio::select! {
                exit = node.wait() => {
                    self.observer.node_ended();
                    node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                    // The poller may have read a height that this loop has not taken yet.
                    if let Some((_, rx)) = follow.as_mut() {
                        // A poll under way as the node exited may bring its last block: the
                        // node's exit is what confirms it.
                        if self.manual.awaits_last_reading(halt_at.as_ref()) {
                            let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
                        }
                        let reading = *rx.borrow_and_update();
                        self.manual.note(reading, halt_at.as_ref(), &mut self.journal);
                        self.manual.node_exited(halt_at.as_ref(), &mut self.journal);
                    }
                    let died = match exit {
                        Exit::Code(c) => c != 0,
                        Exit::Signal(s) => !forwarded.contains(&s),
                    };
                    // A node's `start` ends with 0 only at a halt it was given; on probation,
                    // any other end is a failure (a binary that prints its usage and exits 0).
                    let died = died
                        || (probation.is_some()
                            && halt_at.is_none()
                            && !node::args::has_halt(&self.node_args));
                    break self.after_exit(exit, died, halt_at.as_ref(), probation.take(), node).await;
                }
                sig = self.signals.recv() => {
                    if self.signals.stop().is_none() {
                        forwarded.push(sig as i32);
                        node.signal(sig);
                        continue;
                    }
                    let exit = node.stop_with(sig, self.cfg.shutdown_grace).await;
                    self.observer.node_ended();
                    node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                    tracing::info!(status = %exit, "node stopped");
                    break Ended::Exit(exit.code());
                }
                verdict = async { health.as_mut().expect("guarded").await }, if health.is_some() => {
                    health = None;
                    let Ok(verdict) = verdict else { continue };
                    let detail = verdict.detail.clone();
                    self.observer.health(verdict.healthy, &detail);
                    let Some(plan) = probation.take().map(|p| p.plan) else { continue };
                    match health::on_verdict(&self.plugins, &self.cfg, &mut self.journal, verdict) {
                        None | Some(OnUnhealthy::Warn) => {}
                        Some(OnUnhealthy::Exit) => {
                            node.stop(self.cfg.shutdown_grace).await;
                            node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                            break Ended::Exit(HEALTH_EXIT_CODE);
                        }
                        Some(OnUnhealthy::Rollback) => break Ended::Failed {
                            plan,
                            reason: format!("the health checks judged the upgraded node unhealthy: {detail}"),
                            node: Some(node),
                        },
                    }
                }
                _ = sleep_until(probation.as_ref().and_then(|p| p.until)), if probation.as_ref().is_some_and(|p| p.until.is_some()) => {
                    probation = None;
                    tracing::info!(
                        probation = %crate::duration::format(self.cfg.probation),
                        "the upgraded node passed its probation (WASMVISOR_UPGRADE_PROBATION)"
                    );
                    if let Err(e) = self.journal.end_probation() {
                        tracing::warn!("cannot journal the end of the probation: {e}");
                    }
                }
                changed = async { follow.as_mut().expect("guarded").1.changed().await }, if follow.is_some() => {
                    if changed.is_err() {
                        // The poller ended (it only could by a bug): a failed poll must never
                        // leave the node running past its halt unseen.
                        tracing::error!("the node's height poller stopped; starting it again in a second");
                        if let Some(plan) = &halt_at {
                            follow = Some(self.manual.follow_after(plan, node.pid, Duration::from_secs(1)));
                        }
                        continue;
                    }
                    let reading = *follow.as_mut().expect("guarded").1.borrow_and_update();
                    if let Some(reading) = reading {
                        self.observer.chain_height(reading.height);
                    }
                    self.manual.note(reading, halt_at.as_ref(), &mut self.journal);
                    // The node can go no further: nothing to wait for.
                    if self.manual.reached(halt_at.as_ref()) {
                        recheck = Some(tokio::time::Instant::now());
                    }
                }
                _ = self.watcher.changed() => {
                    recheck = Some(tokio::time::Instant::now());
                }
                _ = sleep_until(recheck) => {
                    recheck = None;
                    if matches!(self.layout.read_upgrade_info(), Read::NotYet) {
                        // Half-written: the writer is not done. Look again shortly.
                        recheck = Some(tokio::time::Instant::now() + backoff);
                        backoff = (backoff * 2).min(self.cfg.poll_interval);
                        continue;
                    }
                    backoff = Duration::from_millis(20);
                    match self.decision() {
                        Decision::Upgrade { plan, manual } => {
                            tracing::info!(upgrade = %plan.name, height = plan.height, mono_ns = node::monotonic_ns(), "upgrade detected");
                            break Ended::Upgrade { plan, manual, node: Some(node) };
                        }
                        Decision::Launch { halt_at: new } if new.as_ref().map(|p| p.height) != halt_at.as_ref().map(|p| p.height) => {
                            tracing::info!(
                                halt_height = new.as_ref().map(|p| p.height),
                                "manual upgrades changed: restarting the node so it halts at the right height"
                            );
                            node.stop(self.cfg.shutdown_grace).await;
                            node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                            if probation.take().is_some() {
                                tracing::info!("the relaunch ends the upgraded node's probation");
                                if let Err(e) = self.journal.end_probation() {
                                    tracing::warn!("cannot journal the end of the probation: {e}");
                                }
                            }
                            break Ended::Relaunch;
                        }
                        Decision::Refuse { plan, reason } => {
                            tracing::error!(upgrade = %plan.name, "cannot apply this upgrade: {reason}");
                        }
                        Decision::Launch { .. } => {}
                    }
                }
            }
        };
        if let Some((poller, _)) = follow {
            poller.abort();
        }
        if let Some(health) = health {
            health.abort();
            tracing::warn!("the node's run ended before the health check gave its verdict");
        }
        Ok(ended)
    }

    /// The node exited without being asked to (`died`: with a failure status, or by a signal
    /// wasmvisor did not pass on). Older SDKs exit at the upgrade halt (and at `--halt-height`):
    /// an upgrade is due if the files (and the last height read) say so. A death of an upgraded
    /// node on probation is a failed upgrade; another is a crash (relaunched when crash restarts
    /// are on). Anything else ends supervision with the node's status.
    async fn after_exit(
        &mut self,
        exit: Exit,
        died: bool,
        halt_at: Option<&Plan>,
        probation: Option<Probation>,
        node: node::Child,
    ) -> Ended {
        if self.signals.stop_requested() {
            tracing::info!(status = %exit, "node stopped");
            return Ended::Exit(exit.code());
        }
        // The node writes upgrade-info.json before it exits; a half-written file settles quickly.
        for _ in 0..20 {
            if !matches!(self.layout.read_upgrade_info(), Read::NotYet) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Decision::Upgrade { plan, manual } = self.decision() {
            tracing::info!(upgrade = %plan.name, height = plan.height, status = %exit, mono_ns = node::monotonic_ns(), "node halted for the upgrade");
            return Ended::Upgrade {
                plan,
                manual,
                node: Some(node),
            };
        }
        if let Some(p) = probation.filter(|_| died) {
            let reason = format!(
                "the upgraded node died ({exit}) {} after its launch, before it proved healthy",
                crate::duration::format(Duration::from_millis(
                    p.launched.elapsed().as_millis() as u64
                ))
            );
            if self.cfg.on_failed_upgrade == OnFailedUpgrade::Rollback {
                return Ended::Failed {
                    plan: p.plan,
                    reason,
                    node: None,
                };
            }
            tracing::error!("{reason}; WASMVISOR_ON_FAILED_UPGRADE=exit");
        }
        // A crash while a manual upgrade is pending is relaunched with the same halt only where
        // the relaunch cannot execute the upgrade's height: with a halt before it, or while the
        // node was still far from it. An SDK that halts *at* X by SIGINT (v0.46 and earlier exit
        // 130 there) looks like a crash; relaunched, it would execute H with the old binary.
        let relaunch_safe = halt_at.is_none_or(|plan| {
            self.cfg.halt_height == HaltHeight::Before || self.manual.far_from(plan)
        });
        if died && self.cfg.restart_on_crash && relaunch_safe {
            return Ended::Crashed(exit);
        }
        if let Some(plan) = halt_at {
            // Relaunching is not safe here: a node that ended its `start` by itself having
            // executed its halt height (SDK v0.47) would execute one more block with the old
            // binary.
            let error = RunError::StoppedShort {
                name: plan.name.clone(),
                last: plan.height - 1,
                seen: self.manual.height.map_or("none".into(), |h| h.to_string()),
                status: exit,
            };
            tracing::error!("{error} (node RPC {})", self.cfg.rpc);
            return Ended::Exit(if exit.success() { 1 } else { exit.code() });
        }
        if !died {
            tracing::info!(status = %exit, "node exited");
            return Ended::Exit(exit.code());
        }
        tracing::error!(status = %exit, "node exited with an error; passing its status on");
        Ended::Exit(exit.code())
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
