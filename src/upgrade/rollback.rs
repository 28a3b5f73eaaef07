//! Rolling back an upgrade whose new binary failed (`WASMVISOR_ON_FAILED_UPGRADE=rollback`):
//!
//! ```text
//! rollback            journaled: the plan, the folders, the backup, the failed binary's sha256
//!   the node stops
//!   data/ restored    from the pre-upgrade backup, in one rename (the signing state kept)
//! rollback:restored   journaled
//!   `current` back    at the folder it pointed at before, in one rename
//! rollback:end        journaled: the upgrade is recorded as failed with that binary
//! ```
//!
//! A supervisor killed anywhere in between finds the rollback in the journal and finishes it
//! (restoring again unless the journal says it was done). `data/upgrade-info.json` is the one the
//! backup holds: the chain's, as it wrote it at the halt. Afterwards the upgrade is due again, and
//! the binary that failed is never run for it again: wasmvisor waits until a different one is
//! staged.

use std::path::PathBuf;
use std::time::Duration;

use super::{Upgrade, UpgradeError};
use crate::node::{self, Child};
use crate::tree::backup::{self, BackupError};
use crate::tree::journal::{self, Failed, Journal, Rollback};
use crate::tree::{Current, GENESIS_DIR, Layout, Plan, swap};

/// wasmvisor's exit status after it rolled an upgrade back: distinct, so a service manager can
/// be told not to restart it into the same failure (systemd: `RestartPreventExitStatus=4`).
pub const EXIT_ROLLED_BACK: i32 = 4;

impl Upgrade<'_> {
    /// Rolls back `plan`, whose new binary failed for `reason`, stopping `node` first if it
    /// still runs. Returns false if a stop request interrupted it (the journal keeps it, and the
    /// next start finishes it).
    pub async fn rollback(
        &mut self,
        plan: &Plan,
        reason: String,
        node: Option<Child>,
    ) -> Result<bool, UpgradeError> {
        let fail = |message: String| UpgradeError::Rollback {
            upgrade: plan.name.clone(),
            message,
        };
        let (dir, from, backup) = self.journal.rollback_source(plan).ok_or_else(|| {
            fail("the journal does not record which binary ran before it, so there is nothing to go back to; point `current` back by hand".into())
        })?;
        let binary = self.layout.binary_path(&Current::Upgrade(dir.clone()));
        let sha256 = hash(binary.clone()).await.unwrap_or_else(|e| {
            tracing::warn!(binary = %binary.display(), "cannot hash the failed binary ({e}); it is recorded by its identity on disk instead");
            String::new()
        });
        let fingerprint = fingerprint(&binary);
        tracing::error!(
            upgrade = %plan.name,
            height = plan.height,
            binary = %binary.display(),
            sha256 = %sha256,
            "the upgrade FAILED: {reason}; rolling back to {from}"
        );
        self.journal
            .begin_rollback(Rollback {
                plan: plan.clone(),
                dir,
                from,
                backup,
                sha256,
                fingerprint,
                reason,
                restored: false,
                unrestored: None,
                started_unix_ms: journal::unix_ms(),
            })
            .map_err(|e| fail(format!("cannot write the journal: {e}")))?;
        self.finish_rollback(node).await
    }

    /// Carries the journaled rollback through to its end. Returns false if a stop request
    /// interrupted it.
    pub async fn finish_rollback(&mut self, node: Option<Child>) -> Result<bool, UpgradeError> {
        let Some(r) = self.journal.state.rollback.clone() else {
            return Ok(true);
        };
        let fail = |message: String| UpgradeError::Rollback {
            upgrade: r.plan.name.clone(),
            message,
        };
        if let Some(mut node) = node {
            let exit = node.stop(self.cfg.shutdown_grace).await;
            node::gone(self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
            tracing::info!(status = %exit, "the failed node stopped");
        }
        if !r.restored && r.unrestored.is_none() {
            let unrestored = match &r.backup {
                Some(path) => match self.restore(path, &fail).await? {
                    None => return Ok(false),
                    Some(outcome) => outcome,
                },
                None => {
                    tracing::warn!(
                        "no backup of data/ was taken for this upgrade (UNSAFE_SKIP_BACKUP=true): data/ stays as the failed binary left it; if it ran past the upgrade height, restore data/ from a snapshot of your own before the next attempt"
                    );
                    Some("no backup was taken (UNSAFE_SKIP_BACKUP=true)".to_string())
                }
            };
            self.journal
                .rollback_restored(unrestored)
                .map_err(|e| fail(format!("cannot write the journal: {e}")))?;
        }
        let back = if r.from == GENESIS_DIR {
            Current::Genesis
        } else {
            Current::Upgrade(r.from.clone())
        };
        swap::point_current(&self.layout.root, &back.rel_dir())
            .map_err(|e| fail(format!("cannot point `current` back at {}: {e}", r.from)))?;
        tracing::info!(current = %back.rel_dir().display(), "switched `current` back");
        self.journal
            .finish_rollback()
            .map_err(|e| fail(format!("cannot write the journal: {e}")))?;
        tracing::error!(
            upgrade = %r.plan.name,
            height = r.plan.height,
            "ROLLED BACK: {}; data/ is {}, `current` points at {} again and the binary in upgrades/{}/bin (sha256 {}) will not be run for this upgrade again. To retry, stage a fixed binary (`wasmvisor add-upgrade {} <path> --force`) and start wasmvisor: it upgrades as soon as a different binary is in place",
            r.reason,
            match (&r.backup, self.journal.state.failed.last().and_then(|f| f.unrestored.as_deref())) {
                (_, Some(why)) => format!("as the failed binary left it ({why})"),
                (Some(b), None) => format!("restored from {}", b.display()),
                (None, None) => "as the failed binary left it".into(),
            },
            r.from,
            r.dir,
            short(&r.sha256),
            r.plan.name,
        );
        Ok(true)
    }

    /// Restores data/ from `path` off the runtime. Returns `None` if a stop request interrupted
    /// it (the restore then removes what it wrote; data/ is untouched), `Some(None)` once data/
    /// is restored, and `Some(Some(why))` when the backup cannot be used at all (gone, incomplete,
    /// damaged): the rollback then goes on without it rather than never finishing. An error that
    /// may pass (no space, I/O) fails the rollback, for the next start to finish.
    async fn restore(
        &mut self,
        path: &std::path::Path,
        fail: &impl Fn(String) -> UpgradeError,
    ) -> Result<Option<Option<String>>, UpgradeError> {
        tracing::warn!(backup = %path.display(), "restoring data/ from the pre-upgrade backup");
        let data = self.cfg.home.join("data");
        let mut job = {
            let (cancel, path, data) = (self.signals.cancel().clone(), path.to_path_buf(), data);
            tokio::task::spawn_blocking(move || backup::restore(&path, &data, &cancel))
        };
        let restored = match self.signals.until_stop(&mut job).await {
            Some(Ok(Ok(restored))) => restored,
            Some(Ok(Err(BackupError::Interrupted))) => return Ok(None),
            Some(Ok(Err(BackupError::Unusable(why)))) => {
                tracing::error!(
                    backup = %path.display(),
                    "the pre-upgrade backup cannot be restored: {why}; rolling back without it: data/ stays as the failed binary left it (restore a snapshot of your own before the next attempt if it ran past the upgrade height)"
                );
                return Ok(Some(Some(format!("the backup cannot be restored: {why}"))));
            }
            Some(Ok(Err(e))) => {
                return Err(fail(format!(
                    "data/ cannot be restored: {e}; data/ is as the failed binary left it and `current` still points at the failed binary: fix the cause and start wasmvisor again to finish the rollback"
                )));
            }
            Some(Err(e)) => return Err(fail(format!("the restore did not finish: {e}"))),
            None => {
                // The capture stops at its next chunk and removes what it wrote.
                let _ = tokio::time::timeout(Duration::from_secs(2), job).await;
                return Ok(None);
            }
        };
        tracing::info!(
            backup = %path.display(),
            files = restored.totals.files,
            bytes = restored.totals.bytes,
            kept_signing_state = restored.kept_signing_state,
            in_place = restored.in_place,
            "data/ restored{}",
            if restored.kept_signing_state {
                " (the newer priv_validator_state.json kept: the validator never signs a height twice)"
            } else {
                ""
            }
        );
        Ok(Some(None))
    }
}

/// The failure recorded for `plan` with the binary now staged in its folder, if that very
/// binary failed before: the same sha256, or, for a failure recorded without one, the same file
/// on disk. A staged binary that cannot be read to be compared counts as the failed one (never
/// run on a guess). Hashes only when the journal records a failure of `plan`.
pub async fn failed_before(layout: &Layout, journal: &Journal, plan: &Plan) -> Option<Failed> {
    let latest = journal.failures(plan).next()?.clone();
    let dir = layout.dir_name(&plan.name).ok()?;
    let binary = layout.binary_path(&Current::Upgrade(dir));
    if std::fs::symlink_metadata(&binary).is_err() {
        // Nothing staged: the resolvers fetch a binary, compared again before the switch.
        return None;
    }
    let print = fingerprint(&binary);
    let sha256 = match hash(binary).await {
        Ok(sha) => sha,
        Err(e) => {
            return Some(Failed {
                reason: format!(
                    "{}; and the staged binary cannot be read to tell whether it is another: {e}",
                    latest.reason
                ),
                ..latest
            });
        }
    };
    journal
        .failures(plan)
        .find(|f| f.sha256 == sha256 || (f.sha256.is_empty() && f.fingerprint == print))
        .cloned()
}

/// A file's identity on disk: device, inode, size and modification time.
pub fn fingerprint(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or_else(
        |_| String::new(),
        |m| {
            format!(
                "{}:{}:{}:{}.{}",
                m.dev(),
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            )
        },
    )
}

/// The sha256 of a file, off the runtime (a node binary is 100 MB or more).
async fn hash(path: PathBuf) -> Result<String, String> {
    tokio::task::spawn_blocking(move || crate::fs::sha256_path(&path).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

/// The first 12 hex digits of a sha256, for messages.
pub fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}
