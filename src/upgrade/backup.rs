//! The data backup, a snapshot taken once the node is stopped and before anything changes; the
//! oldest backups beyond `WASMVISOR_BACKUP_KEEP` are removed after it (never this one).

use std::time::{Duration, Instant};

use super::{Upgrade, UpgradeError, io_error};
use crate::tree::Plan;
use crate::tree::backup::{self, BackupError};
use crate::upgrade::journal::Phase;

impl Upgrade<'_> {
    pub(super) async fn phase_backup(
        &mut self,
        plan: &Plan,
        dir_name: &str,
    ) -> Result<bool, UpgradeError> {
        if self.cfg.unsafe_skip_backup {
            return Ok(true);
        }
        self.enter(plan, Phase::Backup)?;
        let t = Instant::now();
        let target = match self.journal.active().and_then(|a| a.backup.clone()) {
            Some(path) if backup::is_complete(&path) => {
                tracing::info!(backup = %path.display(), "the backup was already taken before the interruption");
                self.done(Phase::Backup, t.elapsed());
                return Ok(true);
            }
            Some(path) => path,
            None => backup::new_backup_path(&self.cfg.data_backup_dir, dir_name, plan.height),
        };
        backup::discard_partial(&target);
        self.journal
            .set_backup(Some(target.clone()))
            .map_err(|source| io_error(plan, Phase::Backup, "cannot write the journal", source))?;
        tracing::info!(backup = %target.display(), "backing up data/");
        let data = self.cfg.home.join("data");
        let mut job = {
            let (cancel, target) = (self.signals.cancel().clone(), target.clone());
            let (upgrade, height) = (dir_name.to_string(), plan.height);
            tokio::task::spawn_blocking(move || {
                backup::create(&data, &target, &upgrade, height, &cancel)
            })
        };
        let result = match self.signals.until_stop(&mut job).await {
            Some(r) => r.unwrap_or_else(|e| {
                Err(BackupError::Io {
                    data: self.cfg.home.join("data"),
                    dir: target.clone(),
                    source: std::io::Error::other(e),
                })
            }),
            None => {
                // The copy stops at its next chunk and removes what it wrote; wait briefly
                // for that, never long.
                let _ = tokio::time::timeout(Duration::from_secs(2), job).await;
                return Ok(false);
            }
        };
        match result {
            Ok(taken) => {
                let t2 = taken.totals;
                tracing::info!(
                    backup = %target.display(),
                    files = t2.files,
                    bytes = t2.bytes,
                    copied = t2.copied,
                    linked = t2.linked,
                    reflinked = t2.reflinked,
                    took = %crate::duration::format(Duration::from_secs_f64(taken.seconds)),
                    "backup complete"
                );
                self.observer
                    .backup(taken.seconds, t2.reflinked, t2.linked, t2.copied);
                self.done(Phase::Backup, t.elapsed());
                self.prune(&target);
                Ok(true)
            }
            Err(BackupError::Interrupted) => Ok(false),
            Err(source) => {
                let _ = self.journal.set_backup(None);
                Err(UpgradeError::Backup {
                    upgrade: plan.name.clone(),
                    source,
                })
            }
        }
    }

    /// Keeps the newest `WASMVISOR_BACKUP_KEEP` backups of this data folder (other homes' in a
    /// shared folder are theirs to keep), never `this` one.
    fn prune(&self, this: &std::path::Path) {
        let name = |p: &std::path::Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        // Only this upgrade can still be rolled back: the last one's node halted for it.
        let this = name(this);
        let protect = [this.as_str()];
        let data = self.cfg.home.join("data");
        match backup::prune(
            &self.cfg.data_backup_dir,
            self.cfg.backup_keep,
            &protect,
            &data,
        ) {
            Ok(removed) if !removed.is_empty() => tracing::info!(
                removed = removed.join(", "),
                keep = self.cfg.backup_keep,
                "removed the oldest backups"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot remove old backups: {e}"),
        }
    }
}
