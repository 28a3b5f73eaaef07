//! When things fail: an upgrade whose new binary failed is rolled back (and its binary never run
//! for it again: the supervisor waits for a different one); a node that crashed outside an
//! upgrade is relaunched after a capped exponential backoff, as long as it has not died too often.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::decide::Next;
use super::{RunError, Supervisor};
use crate::config::RESTART_WINDOW;
use crate::duration::format;
use crate::node::{self, Child, Exit};
use crate::observe::{Notice, Upgrade};
use crate::tree::{Current, Plan};
use crate::upgrade::journal::{self, Failed};
use crate::upgrade::{EXIT_ROLLED_BACK, OnDisk, failed_before, short};

/// The first crash restart waits this long; each death within the window doubles it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before the relaunch that follows the `deaths`-th death within the window.
pub(super) fn backoff(deaths: u32) -> Duration {
    let doublings = deaths.saturating_sub(1).min(16);
    (FIRST_BACKOFF * (1u32 << doublings)).min(MAX_BACKOFF)
}

/// What wakes the wait for a different binary: the file's identity on disk and its inode change
/// time, so that anything done to the file (replaced, rewritten, made readable, renamed) is
/// noticed. Only a trigger, so it errs towards noticing: whether the file is still the binary
/// that failed is [`failed_before`]'s answer, whose `Fingerprint` leaves the change time out.
type ChangeStamp = Option<(OnDisk, i64, i64)>;

fn change_stamp(path: &Path) -> ChangeStamp {
    let m = std::fs::metadata(path).ok()?;
    Some((OnDisk::from_metadata(&m), m.ctime(), m.ctime_nsec()))
}

impl Supervisor {
    /// Rolls back `plan`, whose new binary failed for `reason`. Returns the status to exit with.
    pub(super) async fn failed(
        &mut self,
        plan: Plan,
        reason: String,
        node: Option<Child>,
    ) -> Result<i32, RunError> {
        self.observer.rolling_back(&plan.name);
        let done = self
            .upgrade_context()
            .rollback(&plan, reason.clone(), node)
            .await?;
        if done {
            self.observer.rolled_back(&plan.name, &reason);
            self.observer.tell(Notice::RolledBack {
                upgrade: Upgrade::new(&plan.name, plan.height),
                reason: reason.clone(),
            });
        }
        Ok(if done {
            EXIT_ROLLED_BACK
        } else {
            self.signals.stop_status()
        })
    }

    /// `plan` is due, but the binary staged for it is one that failed for it before. Stops
    /// `node` (halted at the upgrade), says so and what to do, and waits until a different binary
    /// is staged, the files no longer call for the upgrade, or a stop request. Returns the status
    /// to exit with, or `None` to decide again.
    pub(super) async fn await_new_binary(
        &mut self,
        plan: &Plan,
        failed: Failed,
        node: Option<Child>,
    ) -> Result<Option<i32>, RunError> {
        if let Some(mut node) = node {
            node.stop(self.cfg.shutdown_grace).await;
            node::gone(&self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
        }
        let binary = self
            .layout
            .binary_path(&Current::Upgrade(failed.dir.clone()));
        let ago = journal::unix_ms().saturating_sub(failed.at_unix_ms) / 1000;
        tracing::error!(
            upgrade = %plan.name,
            height = plan.height,
            binary = %binary.display(),
            sha256 = short(&failed.sha256),
            "not upgrading: this binary failed for this upgrade {} ago ({}) and was rolled back{}. Waiting for a different binary: stage a fixed one with `wasmvisor add-upgrade {} <path> --force` (or replace the file); the upgrade starts as soon as it is in place",
            format(Duration::from_secs(ago.max(1))),
            failed.reason,
            failed
                .restored
                .as_ref()
                .map_or(String::new(), |b| format!(", data/ restored from {}", b.display())),
            plan.name,
        );
        self.observer.halted(&format!(
            "the binary staged for {} failed for it before; waiting for a different one",
            plan.name
        ));
        let mut seen = change_stamp(&binary);
        let tick = self.cfg.poll_interval.max(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = self.watcher.changed() => {}
                _ = self.signals.recv() => {}
            }
            if self.signals.stop_requested() {
                return Ok(Some(self.signals.stop_status()));
            }
            match self.next() {
                Next::Apply { plan: due, .. } if due == *plan => {}
                _ => {
                    tracing::info!(upgrade = %plan.name, "the failed upgrade is no longer due; deciding again");
                    return Ok(None);
                }
            }
            let now = change_stamp(&binary);
            if now == seen {
                continue;
            }
            seen = now;
            if seen.is_none() {
                tracing::info!(binary = %binary.display(), "the failed binary was removed: resolving the upgrade's binary again");
                return Ok(None);
            }
            if failed_before(&self.layout, &self.journal, plan)
                .await
                .into_failure()
                .is_none()
            {
                tracing::info!(upgrade = %plan.name, binary = %binary.display(), "a different binary is staged: upgrading");
                return Ok(None);
            }
        }
    }

    /// The node died on its own (`exit`) outside an upgrade, with crash restarts on. Waits out
    /// the backoff (a stop request ends it at once) and returns `None` to relaunch — after the
    /// usual decision — or, past `WASMVISOR_MAX_RESTARTS` deaths within the window, the status to
    /// exit with.
    pub(super) async fn crashed(&mut self, exit: Exit) -> Option<i32> {
        let now = Instant::now();
        while self
            .deaths
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RESTART_WINDOW)
        {
            self.deaths.pop_front();
        }
        self.deaths.push_back(now);
        let deaths = self.deaths.len() as u32;
        let max = self.cfg.max_restarts;
        if deaths > max {
            tracing::error!(
                status = %exit,
                deaths,
                window = %format(RESTART_WINDOW),
                "the node died {deaths} times within {}, more than WASMVISOR_MAX_RESTARTS={max} allows: giving up, exiting with its status",
                format(RESTART_WINDOW)
            );
            return Some(exit.code());
        }
        let delay = backoff(deaths);
        self.observer
            .restarting(&exit.to_string(), delay, deaths, max);
        tracing::warn!(
            status = %exit,
            deaths,
            "the node died; relaunching it in {} (WASMVISOR_RESTART_ON_CRASH; death {deaths} of at most {max} within {})",
            format(delay),
            format(RESTART_WINDOW)
        );
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return None,
                _ = self.signals.recv() => {
                    if self.signals.stop_requested() {
                        tracing::info!("stop requested during the restart backoff: exiting");
                        return Some(self.signals.stop_status());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_one_second_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
