//! One run of the node: launched with the current binary (and the halt of a pending manual
//! upgrade), watched until something ends the run — its exit, a stop request, a plan that became
//! due, a changed batch of manual plans, or an unhealthy verdict after an upgrade.

use std::process::Command;
use std::time::{Duration, Instant};

use super::decide::Decision;
use super::health::{self, HEALTH_EXIT_CODE};
use super::{Ended, RunError, Supervisor};
use crate::node::record::{self, NodeRecord};
use crate::node::{self, Exit};
use crate::tree::{Plan, Read};

impl Supervisor {
    /// Launches the current binary and supervises it until something ends this run.
    pub(super) async fn run_node(&mut self, halt_at: Option<Plan>) -> Result<Ended, RunError> {
        let current = self.layout.current()?;
        self.layout.check_binary(&current)?;
        let path = self.layout.binary_path(&current);
        let args = self.manual.args_for(&self.node_args, halt_at.as_ref());
        let after_upgrade = self.after_upgrade.take();
        if after_upgrade.is_some() {
            self.journal.checkpoint("launch");
        }
        let started = Instant::now();
        let mut cmd = Command::new(&path);
        cmd.args(&args);
        let mut node = self
            .reaper
            .spawn(&mut cmd, true)
            .map_err(|source| RunError::Spawn {
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
        let mut health = None;
        if let Some(plan) = after_upgrade {
            tracing::info!(phase = "launch", duration = %crate::duration::format(spawn_took), "phase done");
            if let Err(e) = self.journal.record_launch(spawn_took) {
                tracing::warn!("cannot journal the launch: {e}");
            }
            if !self.plugins.health.is_empty() {
                self.journal.checkpoint("health");
                health = Some(tokio::spawn(health::check_until_final(
                    self.plugins.clone(),
                    plan,
                    started,
                )));
            }
        }
        let mut follow = None;
        if let Some(plan) = &halt_at {
            self.manual.prepare_ahead(plan, &self.plugins, &self.cfg);
            follow = Some(self.manual.follow(plan));
        }
        let mut recheck: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(20);

        let ended = loop {
            tokio::select! {
                exit = node.wait() => {
                    node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                    // The poller may have read a height that this loop has not taken yet.
                    if let Some((_, rx)) = follow.as_mut() {
                        let h = *rx.borrow_and_update();
                        self.manual.note(h, halt_at.as_ref(), &mut self.journal);
                    }
                    break self.after_exit(exit, halt_at.as_ref(), node).await;
                }
                sig = self.signals.recv() => {
                    if self.signals.stop().is_none() {
                        node.signal(sig);
                        continue;
                    }
                    let exit = node.stop_with(sig, self.cfg.shutdown_grace).await;
                    node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                    tracing::info!(status = %exit, "node stopped");
                    break Ended::Exit(exit.code());
                }
                verdict = async { health.as_mut().expect("guarded").await }, if health.is_some() => {
                    health = None;
                    let Ok(verdict) = verdict else { continue };
                    if health::on_verdict(&self.plugins, &mut self.journal, verdict) {
                        node.stop(self.cfg.shutdown_grace).await;
                        node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
                        break Ended::Exit(HEALTH_EXIT_CODE);
                    }
                }
                Ok(()) = async { follow.as_mut().expect("guarded").1.changed().await }, if follow.is_some() => {
                    let h = *follow.as_mut().expect("guarded").1.borrow_and_update();
                    self.manual.note(h, halt_at.as_ref(), &mut self.journal);
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
                            break Ended::Upgrade { plan, manual, node };
                        }
                        Decision::Launch { halt_at: new } if new.as_ref().map(|p| p.height) != halt_at.as_ref().map(|p| p.height) => {
                            tracing::info!(
                                halt_height = new.as_ref().map(|p| p.height),
                                "manual upgrades changed: restarting the node so it halts at the right height"
                            );
                            node.stop(self.cfg.shutdown_grace).await;
                            node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
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

    /// The node exited without being asked to. Older SDKs exit at the upgrade halt (and at
    /// `--halt-height`): an upgrade is due if the files (and the last height read) say so.
    /// Anything else ends supervision with the node's status.
    async fn after_exit(&mut self, exit: Exit, halt_at: Option<&Plan>, node: node::Child) -> Ended {
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
        match self.decision() {
            Decision::Upgrade { plan, manual } => {
                tracing::info!(upgrade = %plan.name, height = plan.height, status = %exit, mono_ns = node::monotonic_ns(), "node halted for the upgrade");
                Ended::Upgrade { plan, manual, node }
            }
            _ => {
                if let Some(plan) = halt_at {
                    // Relaunching is not safe here: a node that executes its halt height (SDK
                    // v0.47) would execute one more block with the old binary.
                    let error = RunError::StoppedShort {
                        name: plan.name.clone(),
                        last: plan.height - 1,
                        seen: self.manual.height.map_or("none".into(), |h| h.to_string()),
                        status: exit,
                    };
                    tracing::error!("{error} (node RPC {})", self.cfg.rpc);
                    return Ended::Exit(if exit.success() { 1 } else { exit.code() });
                }
                if exit.success() {
                    tracing::info!(status = %exit, "node exited");
                } else {
                    tracing::error!(status = %exit, "node exited with an error; passing its status on");
                }
                Ended::Exit(exit.code())
            }
        }
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
