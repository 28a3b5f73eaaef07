//! Stopping the node for the upgrade, and the operator's `DAEMON_RESTART_DELAY` after it.

use std::time::Instant;

use super::{Upgrade, UpgradeError};
use crate::node::Child;
use crate::tree::Plan;
use crate::upgrade::journal::Phase;

impl Upgrade<'_> {
    pub(super) async fn phase_stop(
        &mut self,
        plan: &Plan,
        node: Option<Child>,
    ) -> Result<(), UpgradeError> {
        self.enter(plan, Phase::Stop)?;
        let t = Instant::now();
        if let Some(mut node) = node {
            let exit = node.stop(self.cfg.shutdown_grace).await;
            crate::node::gone(self.reaper, &self.layout.root, self.cfg.shutdown_grace).await;
            tracing::info!(status = %exit, "node stopped");
        }
        self.done(Phase::Stop, t.elapsed());
        Ok(())
    }

    pub(super) async fn phase_delay(&mut self, plan: &Plan) -> Result<bool, UpgradeError> {
        let Some(delay) = self.cfg.restart_delay else {
            return Ok(true);
        };
        self.enter(plan, Phase::Delay)?;
        let t = Instant::now();
        if self
            .signals
            .until_stop(tokio::time::sleep(delay))
            .await
            .is_none()
        {
            return Ok(false);
        }
        self.done(Phase::Delay, t.elapsed());
        Ok(true)
    }
}
