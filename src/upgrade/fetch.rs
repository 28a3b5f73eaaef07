//! Fetching: the source plugins download the chosen artifact; it is verified, unpacked and
//! installed as the upgrade's binary (`crate::artifact`).

use std::time::Instant;

use super::{Upgrade, UpgradeError, tree_error};
use crate::artifact::StageError;
use crate::tree::{Current, Layout, Plan};
use crate::upgrade::journal::Phase;

/// Why the fetch phase failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Stage(StageError),
    #[error(transparent)]
    Thread(crate::plugin::ThreadError),
}

impl Upgrade<'_> {
    /// Fetches, verifies and installs the binary the resolvers chose. Returns false if a stop
    /// request ended it (the partial download stays, to resume at the next start).
    pub(super) async fn phase_fetch(
        &mut self,
        plan: &Plan,
        dir_name: &str,
        artifacts: Vec<crate::plugin::Artifact>,
    ) -> Result<bool, UpgradeError> {
        self.enter(plan, Phase::Fetch)?;
        let t = Instant::now();
        let set = self.plugins.clone();
        let cfg = self.cfg.clone();
        let layout = Layout::open(self.cfg).map_err(tree_error(&plan.name))?;
        let (dir, staged_for) = (dir_name.to_string(), plan.clone());
        let cancel = self.signals.cancel().clone();
        let fetch = crate::plugin::off_runtime(move || {
            let for_plan = (dir.as_str(), &staged_for);
            crate::artifact::stage(&set, &cfg, &layout, for_plan, &artifacts, &cancel)
        });
        let fail = |source: FetchError| UpgradeError::Fetch {
            upgrade: plan.name.clone(),
            source,
        };
        match self.signals.until_stop(fetch).await {
            None | Some(Ok(Err(StageError::Cancelled))) => return Ok(false),
            Some(Err(message)) => return Err(fail(FetchError::Thread(message))),
            Some(Ok(Err(e))) => return Err(fail(FetchError::Stage(e))),
            Some(Ok(Ok(()))) => {}
        }
        let target = Current::Upgrade(dir_name.to_string());
        self.layout
            .check_binary(&target)
            .map_err(tree_error(&plan.name))?;
        self.done(Phase::Fetch, t.elapsed());
        Ok(true)
    }
}
