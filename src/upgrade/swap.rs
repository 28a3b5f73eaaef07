//! The switch: the plan record written into the upgrade folder, then `current` renamed over in
//! one step; and the commit that closes the upgrade in the journal.

use std::path::Path;
use std::time::Instant;

use super::{Upgrade, UpgradeError, io_error, tree_error};
use crate::tree::{Plan, Read, UPGRADES_DIR, swap};
use crate::upgrade::journal::Phase;

impl Upgrade<'_> {
    pub(super) fn phase_swap(&mut self, plan: &Plan, dir_name: &str) -> Result<(), UpgradeError> {
        self.enter(plan, Phase::Swap)?;
        let t = Instant::now();
        self.layout
            .write_record(dir_name, plan)
            .map_err(tree_error(&plan.name))?;
        let target = Path::new(UPGRADES_DIR).join(dir_name);
        swap::point_current(&self.layout.root, &target)
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
        // Manual plans at or below the applied height are done: keep the batch file meaningful.
        if let Ok(batch) = self.layout.read_batch() {
            let remaining: Vec<Plan> = batch
                .into_iter()
                .filter(|p| p.height > plan.height)
                .collect();
            if let Err(e) = self.layout.write_batch(&remaining) {
                tracing::warn!("cannot prune {}: {e}", self.layout.batch_path().display());
            }
        }
        if let Read::Valid(p) = self.layout.read_upgrade_info() {
            tracing::debug!(upgrade = %p.name, "upgrade-info.json stays for the node to read");
        }
        Ok(())
    }
}
