//! The switch: the plan record written into the upgrade folder (while the node stops), then
//! `current` renamed over in one step; and the commit that closes the upgrade in the journal.
//!
//! Durability, for a power cut (a `kill -9` needs none of it): the record is fsynced, file and
//! folder, before `current` is renamed (a `current` that reached the disk always names a folder
//! whose record did, so the switched binary is never taken for one that applied nothing); the
//! rename itself reaches the disk with the commit, whose journal write fsyncs the same folder
//! before the launch. The new binary's `pre-upgrade` may therefore run before the switch is on
//! disk: a power cut then finds `current` on the old binary and the journal's durable record of
//! the upgrade, which applies it again, `pre-upgrade` included (it runs at least once).

use std::path::Path;
use std::time::Instant;

use tokio::sync::oneshot;

use super::{Upgrade, UpgradeError, io_error, tree_error};
use crate::tree::{LayoutError, Plan, UPGRADES_DIR, swap};
use crate::upgrade::journal::Phase;

/// The plan record being written, on its own thread, while the node stops (`None`: the
/// folder is not there yet, a download will make it; the swap writes the record).
pub(super) struct Record(Option<oneshot::Receiver<Result<(), LayoutError>>>);

impl Upgrade<'_> {
    /// Starts writing `plan`'s record into its upgrade folder, durably, on a thread of its own,
    /// if the folder is there.
    pub(super) fn start_record(&self, plan: &Plan, dir_name: &str) -> Result<Record, UpgradeError> {
        let folder = Path::new(UPGRADES_DIR).join(dir_name);
        if !self.layout.root.metadata(&folder).is_ok_and(|m| m.is_dir()) {
            return Ok(Record(None));
        }
        let layout = self
            .layout
            .try_clone()
            .map_err(|e| io_error(plan, Phase::Detect, "cannot write the plan record", e))?;
        let (record, dir) = (plan.clone(), dir_name.to_string());
        let writing = crate::plugin::start_off_runtime(move || layout.write_record(&dir, &record))
            .map_err(|e| {
                let e = std::io::Error::other(e.to_string());
                io_error(plan, Phase::Detect, "cannot write the plan record", e)
            })?;
        Ok(Record(Some(writing)))
    }

    pub(super) async fn phase_swap(
        &mut self,
        plan: &Plan,
        dir_name: &str,
        record: Record,
    ) -> Result<(), UpgradeError> {
        self.enter(plan, Phase::Swap)?;
        let t = Instant::now();
        let target = Path::new(UPGRADES_DIR).join(dir_name);
        if let Some(writing) = record.0 {
            let written = writing.await.unwrap_or_else(|_| {
                Err(LayoutError::Io {
                    path: target.clone(),
                    source: std::io::Error::other("the thread writing the plan record ended"),
                })
            });
            written.map_err(tree_error(&plan.name))?;
        }
        // Written now if it was not, or if a download installed the folder anew since.
        let record_file = target.join(crate::tree::plans::UPGRADE_INFO_FILE);
        if self.layout.root.metadata(&record_file).is_err() {
            self.layout
                .write_record(dir_name, plan)
                .map_err(tree_error(&plan.name))?;
        }
        swap::relink_current(&self.layout.root, &target)
            .map_err(|source| io_error(plan, Phase::Swap, "cannot switch `current`", source))?;
        tracing::info!(current = %target.display(), "switched `current`");
        self.done(Phase::Swap, t.elapsed());
        Ok(())
    }

    pub(super) fn phase_commit(&mut self, plan: &Plan) -> Result<(), UpgradeError> {
        self.journal
            .commit()
            .map_err(|source| io_error(plan, Phase::Launch, "cannot write the journal", source))?;
        self.journal.checkpoint("commit");
        // Manual plans at or below the applied height are done: keep the batch file meaningful
        // (rewritten, durably, only when one was: most upgrades have no batch file at all).
        if let Ok(batch) = self.layout.read_batch() {
            let count = batch.len();
            let remaining: Vec<Plan> = batch
                .into_iter()
                .filter(|p| p.height > plan.height)
                .collect();
            if remaining.len() != count
                && let Err(e) = self.layout.write_batch(&remaining)
            {
                tracing::warn!("cannot prune {}: {e}", self.layout.batch_path().display());
            }
        }
        // upgrade-info.json stays for the node to read.
        Ok(())
    }
}
