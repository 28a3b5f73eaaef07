//! The data backup, taken once the node is stopped and before anything changes.

use std::time::{Duration, Instant};

use super::{Upgrade, UpgradeError, io_error};
use crate::tree::Plan;
use crate::tree::backup::{self, BackupError};
use crate::tree::journal::Phase;

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
            Some(path) if path.is_dir() => {
                tracing::info!(backup = %path.display(), "the backup was already taken before the interruption");
                self.done(Phase::Backup, t.elapsed());
                return Ok(true);
            }
            Some(path) => path,
            None => self
                .cfg
                .data_backup_dir
                .join(backup::backup_name(dir_name, plan.height)),
        };
        backup::discard_partial(&target);
        self.journal
            .set_backup(Some(target.clone()))
            .map_err(|source| io_error(plan, Phase::Backup, "cannot write the journal", source))?;
        tracing::info!(backup = %target.display(), "backing up data/");
        let data = self.cfg.home.join("data");
        let mut job = {
            let (cancel, target) = (self.signals.cancel().clone(), target.clone());
            tokio::task::spawn_blocking(move || backup::run(&data, &target, &cancel))
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
            Ok(bytes) => {
                tracing::info!(backup = %target.display(), bytes, "backup complete");
                self.done(Phase::Backup, t.elapsed());
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
}
