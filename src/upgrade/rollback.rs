//! Rolling back an upgrade whose new binary failed (`WASMVISOR_ON_FAILED_UPGRADE=rollback`):
//!
//! ```text
//! rollback            journaled: the plan, the folders, the backup, the failed binary's fingerprint
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
//! staged. Whether a staged binary is that one is [`failed_before`]'s answer (a [`Fingerprint`]
//! compared with each recorded failure), the one both the supervisor and `status` use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Upgrade, UpgradeError};
use crate::fs::ReadError;
use crate::node::{self, Child};
use crate::tree::backup::{self, BackupError};
use crate::tree::{Current, GENESIS_DIR, Layout, Plan, swap};
use crate::upgrade::journal::{self, Failed, Journal, Rollback};

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
        let fingerprint = OnDisk::journaled(&binary);
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

/// Which binary a file is, as far as "is this the binary that failed?" needs to know: its
/// identity on disk and, when it could be read, its content's sha256.
///
/// The sha256 decides whenever both sides have one: a different content is a different binary,
/// whatever the file's metadata says. The identity on disk decides only for a failure recorded
/// without a sha256 (its binary could not be read at the rollback). That identity is
/// [`OnDisk`]: device, inode, size and modification time, and deliberately not the inode change
/// time (ctime). ctime moves on a `chmod`, a `chown`, a new hard link or a rename, none of which
/// changes what the file runs; with it, making the unreadable failed binary readable again would
/// turn it into "another binary" and run it for the upgrade it failed. Without it, the one
/// rewrite the identity misses (in place, same size, modification time put back) is taken for
/// the failed binary: wasmvisor refuses a binary rather than rerun one that failed, and
/// `add-upgrade --force` stages a new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// `None` when the file's metadata could not be read.
    pub on_disk: Option<OnDisk>,
    /// The lower-case hex sha256 of its content; `None` when it could not be read.
    pub sha256: Option<String>,
}

impl Fingerprint {
    /// The binary a failure records (the journal writes an unknown value as an empty string).
    pub fn recorded(failed: &Failed) -> Fingerprint {
        Fingerprint {
            on_disk: OnDisk::parse(&failed.fingerprint),
            sha256: Some(failed.sha256.clone()).filter(|s| !s.is_empty()),
        }
    }

    /// Whether `self` and `other` are the same binary: the same sha256 if both have one, else
    /// the same identity on disk (unknown on either side is never the same).
    pub fn same_binary(&self, other: &Fingerprint) -> bool {
        match (&self.sha256, &other.sha256) {
            (Some(a), Some(b)) => a == b,
            _ => self.on_disk.is_some() && self.on_disk == other.on_disk,
        }
    }
}

/// A file's identity on disk: device, inode, size and modification time. Journaled as
/// `dev:ino:len:mtime.nsec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnDisk {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

impl OnDisk {
    /// The identity of the file at `path` (symlinks followed); `None` if it cannot be read.
    pub fn of(path: &Path) -> Option<OnDisk> {
        std::fs::metadata(path)
            .ok()
            .map(|m| OnDisk::from_metadata(&m))
    }

    pub fn from_metadata(m: &std::fs::Metadata) -> OnDisk {
        use std::os::unix::fs::MetadataExt;
        OnDisk {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }

    /// Reads the journaled form back; `None` for an empty (unknown) or malformed one.
    pub fn parse(text: &str) -> Option<OnDisk> {
        let mut parts = text.split(':');
        let (dev, ino, len, mtime) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let (secs, nsec) = mtime.split_once('.')?;
        Some(OnDisk {
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
            len: len.parse().ok()?,
            mtime: secs.parse().ok()?,
            mtime_nsec: nsec.parse().ok()?,
        })
    }

    /// The journaled form of the identity of the file at `path` (empty if it cannot be read).
    pub fn journaled(path: &Path) -> String {
        OnDisk::of(path).map_or_else(String::new, |d| d.to_string())
    }
}

impl std::fmt::Display for OnDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}.{}",
            self.dev, self.ino, self.len, self.mtime, self.mtime_nsec
        )
    }
}

/// Whether the binary staged for an upgrade is one that failed for it before: the one answer
/// the supervisor acts on and `status` shows.
#[derive(Debug)]
pub enum FailedBefore {
    /// No failure of the upgrade is recorded, nothing is staged, or the staged binary is another.
    NotBlocked,
    /// The staged binary is the one `failed` records; `sha256` is the staged binary's.
    Blocked { failed: Failed, sha256: String },
    /// The staged binary cannot be read to be compared, so it counts as the one the most recent
    /// failure records (never run on a guess).
    Unreadable { failed: Failed, error: ReadError },
}

impl FailedBefore {
    /// The failure that blocks the upgrade, if one does. For an unreadable binary, the most
    /// recent failure, its reason saying why the binary counts as that one.
    pub fn into_failure(self) -> Option<Failed> {
        match self {
            FailedBefore::NotBlocked => None,
            FailedBefore::Blocked { failed, .. } => Some(failed),
            FailedBefore::Unreadable { failed, error } => Some(Failed {
                reason: format!(
                    "{}; and the staged binary cannot be read to tell whether it is another: {error}",
                    failed.reason
                ),
                ..failed
            }),
        }
    }
}

/// Judges the binary staged for `plan` against the failures in `failed` (the journal's, oldest
/// first): `staged` is its fingerprint, or why it could not be read. Pure: the callers read the
/// binary, and only when [`to_compare`] says there is something to compare.
pub fn judge(
    failed: &[Failed],
    plan: &Plan,
    staged: Result<Fingerprint, ReadError>,
) -> FailedBefore {
    let mut failures = failed
        .iter()
        .rev()
        .filter(|f| f.plan.name == plan.name && f.plan.height == plan.height);
    let Some(latest) = failures.clone().next() else {
        return FailedBefore::NotBlocked;
    };
    let staged = match staged {
        Ok(staged) => staged,
        Err(error) => {
            return FailedBefore::Unreadable {
                failed: latest.clone(),
                error,
            };
        }
    };
    match failures.find(|f| Fingerprint::recorded(f).same_binary(&staged)) {
        Some(f) => FailedBefore::Blocked {
            failed: f.clone(),
            sha256: staged.sha256.unwrap_or_default(),
        },
        None => FailedBefore::NotBlocked,
    }
}

/// The binary staged for `plan`, when there is one to compare: a failure of `plan` is recorded
/// and something is in its folder. Nothing staged is not blocked: the resolvers fetch a binary,
/// compared again before the switch.
fn to_compare(layout: &Layout, failed: &[Failed], plan: &Plan) -> Option<PathBuf> {
    if !failed
        .iter()
        .any(|f| f.plan.name == plan.name && f.plan.height == plan.height)
    {
        return None;
    }
    let dir = layout.dir_name(&plan.name).ok()?;
    let binary = layout.binary_path(&Current::Upgrade(dir));
    std::fs::symlink_metadata(&binary).ok()?;
    Some(binary)
}

/// Whether the binary now staged for `plan` failed for it before (see [`judge`]), hashing it
/// off the runtime. Hashes only when the journal records a failure of `plan`.
pub async fn failed_before(layout: &Layout, journal: &Journal, plan: &Plan) -> FailedBefore {
    let failed = &journal.state.failed;
    let Some(binary) = to_compare(layout, failed, plan) else {
        return FailedBefore::NotBlocked;
    };
    let on_disk = OnDisk::of(&binary);
    let sha256 = hash(binary).await;
    judge(failed, plan, sha256.map(|sha| staged(on_disk, sha)))
}

/// [`failed_before`] on the calling thread, for `status` (which reads the journal's `failed`
/// without opening it).
pub fn failed_before_blocking(layout: &Layout, failed: &[Failed], plan: &Plan) -> FailedBefore {
    let Some(binary) = to_compare(layout, failed, plan) else {
        return FailedBefore::NotBlocked;
    };
    let on_disk = OnDisk::of(&binary);
    let sha256 = crate::fs::sha256_path(&binary);
    judge(failed, plan, sha256.map(|sha| staged(on_disk, sha)))
}

fn staged(on_disk: Option<OnDisk>, sha256: String) -> Fingerprint {
    Fingerprint {
        on_disk,
        sha256: Some(sha256),
    }
}

/// The sha256 of a file, off the runtime (a node binary is 100 MB or more).
async fn hash(path: PathBuf) -> Result<String, ReadError> {
    tokio::task::spawn_blocking(move || crate::fs::sha256_path(&path))
        .await
        .map_err(|e| ReadError::Io(std::io::Error::other(e)))?
}

/// The first 12 hex digits of a sha256, for messages.
pub fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

#[cfg(test)]
mod tests;
