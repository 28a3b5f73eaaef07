//! What a start finds left by a supervisor that was killed: a node still running (stopped first,
//! once its record proves it is one), a rollback under way (finished), and an upgrade under way
//! (finished, or decided again from the files). Refusals are journaled with what they depended on, so a restart repeats one only
//! while nothing changed.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::{RunError, Supervisor};
use crate::node::record::{self, Group, Leftover};
use crate::supervisor::decide::Next;
use crate::tree::Current;
use crate::upgrade::EXIT_ROLLED_BACK;
use crate::upgrade::journal::{self, Refusal};

/// How long a leftover node may take to go after SIGKILL before wasmvisor gives up on it.
const KILL_WAIT: Duration = Duration::from_secs(10);

impl Supervisor {
    /// A supervisor killed while its node ran leaves the node behind (it runs in its own process
    /// group). Stop it before anything else, so two nodes never share a data folder — after
    /// checking that the record names a node wasmvisor launched, and never waiting unbounded.
    pub(super) async fn stop_leftover_node(&mut self) -> Result<(), RunError> {
        match record::leftover(&self.layout.root) {
            Leftover::None => {}
            Leftover::Foreign(why) => {
                tracing::warn!(
                    file = record::NODE_FILE,
                    "ignoring the record of a leftover node: {why}"
                );
            }
            Leftover::Running(leftover) => {
                let pid = leftover.pid;
                tracing::warn!(
                    pid,
                    "a node left running by a previous supervisor is still alive; stopping it first"
                );
                let mut group = Group(leftover);
                let grace = self.cfg.shutdown_grace;
                let stopping =
                    crate::node::stop(&mut group, Some(Signal::SIGTERM), grace, KILL_WAIT);
                match self.signals.until_stop(stopping).await {
                    // Stopping is what was asked: the leftover has had its SIGTERM.
                    None => return Ok(()),
                    Some(false) => {
                        return Err(RunError::LeftoverAlive {
                            pid,
                            file: record::NODE_FILE.into(),
                        });
                    }
                    Some(true) => {}
                }
            }
        }
        record::clear(&self.layout.root);
        Ok(())
    }

    /// Finishes what a previous supervisor was interrupted in. A rollback is finished (then
    /// wasmvisor exits as after any rollback). An upgrade is finished once `current` was switched
    /// (pre-upgrade, commit); before that, the files decide again: a plan that is gone, skipped
    /// or superseded is dropped, and a refused one is tried again only if something it depended
    /// on changed. An upgraded node that had not proved itself is put on probation again.
    /// Returns the status to exit with, if supervision ends here.
    pub(super) async fn resume(&mut self) -> Result<Option<i32>, RunError> {
        if let Some(r) = self.journal.state.rollback.clone() {
            tracing::warn!(upgrade = %r.plan.name, restored = r.restored, "finishing a rollback that was interrupted");
            return Ok(Some(
                match self.upgrade_context().finish_rollback(None).await? {
                    true => EXIT_ROLLED_BACK,
                    false => self.signals.stop_status(),
                },
            ));
        }
        let current = self.layout.current()?;
        if let Some(last) = self.journal.on_probation()
            && current == Current::Upgrade(last.to.clone())
        {
            self.after_upgrade = Some(last.plan.clone());
        }
        let Some(active) = self.journal.active().cloned() else {
            return Ok(None);
        };
        if current == Current::Upgrade(active.dir_name.clone()) {
            tracing::warn!(upgrade = %active.plan.name, phase = %active.phase, "resuming an upgrade that was interrupted after the switch");
            self.journal
                .begin(&active.plan, &active.dir_name, &active.from)
                .map_err(|source| RunError::Io {
                    what: "cannot write the journal".into(),
                    source,
                })?;
            let plan = active.plan.clone();
            let finished = self.upgrade_context().finish_after_swap(plan.clone()).await;
            return self.after_apply(plan, finished).await;
        }
        match self.next() {
            Next::Apply { plan, manual } if plan == active.plan => {
                if let Some(refused) = &active.refused
                    && refused.inputs == self.refusal_inputs(&active.dir_name)
                {
                    return Err(RunError::StillRefused {
                        name: plan.name,
                        height: plan.height,
                        dir: active.dir_name,
                        ago: ago(refused.at_unix_ms),
                        reason: refused.reason.clone(),
                    });
                }
                tracing::warn!(upgrade = %plan.name, phase = %active.phase, "resuming an upgrade that was interrupted");
                self.upgrade(plan, manual, None).await
            }
            _ => {
                tracing::warn!(
                    upgrade = %active.plan.name,
                    height = active.plan.height,
                    "the upgrade a previous supervisor began is no longer due (its plan file is gone, its height is skipped, or a later upgrade is applied): dropping it"
                );
                self.journal.drop_active().map_err(|source| RunError::Io {
                    what: "cannot write the journal".into(),
                    source,
                })?;
                Ok(None)
            }
        }
    }

    /// Journals a refused upgrade with the digest of what it depended on.
    pub(super) fn record_refusal(&mut self, reason: String) {
        let Some(dir) = self.journal.active().map(|a| a.dir_name.clone()) else {
            return;
        };
        let refusal = Refusal {
            reason,
            at_unix_ms: journal::unix_ms(),
            inputs: self.refusal_inputs(&dir),
        };
        if let Err(e) = self.journal.refuse(refusal) {
            tracing::warn!("cannot journal the refusal: {e}");
        }
    }

    /// A digest of what a refused upgrade depended on and the operator can change: the
    /// configuration, the plugin configuration, the upgrade folder's binary, and what the
    /// loader would give it (its `lib/`, the system's libraries: a preflight refusal for a
    /// missing library is tried again once one was installed).
    fn refusal_inputs(&self, dir: &str) -> String {
        use sha2::Digest;
        use std::os::unix::fs::MetadataExt;
        let mut h = sha2::Sha256::new();
        for (key, value) in self.cfg.values() {
            h.update(format!("{key}={value}\n"));
        }
        if let Some(path) = self.cfg.plugins_path() {
            h.update(crate::fs::read_regular_path(&path, 1 << 20).unwrap_or_default());
        }
        let binary = self.layout.binary_path(&Current::Upgrade(dir.to_string()));
        if let Ok(m) = std::fs::metadata(&binary) {
            h.update(format!(
                "{} {} {} {} {}",
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.mode()
            ));
        }
        h.update(crate::upgrade::preflight::loader_inputs(&self.layout, dir));
        hex::encode(h.finalize())
    }
}

/// How long ago a Unix time in milliseconds was, in words.
fn ago(unix_ms: u64) -> String {
    let secs = journal::unix_ms().saturating_sub(unix_ms) / 1000;
    format!(
        "{} ago",
        crate::duration::format(Duration::from_secs(secs.max(1)))
    )
}
