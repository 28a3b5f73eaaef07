//! The wait phase: a resolver's `not-before` holds the switch, with the node halted, until the
//! time it named; then the resolvers are asked again.

use std::time::{Duration, Instant};

use super::{Upgrade, UpgradeError};
use crate::clock::unix_secs;
use crate::tree::Plan;
use crate::upgrade::journal::{Phase, Waiting};

impl Upgrade<'_> {
    /// Holds the switch until `waiting.until_unix`; the node stays halted. Returns false if a
    /// stop request came first (the journal keeps the upgrade: the next start asks again).
    pub(super) async fn phase_wait(
        &mut self,
        plan: &Plan,
        waiting: Waiting,
    ) -> Result<bool, UpgradeError> {
        self.enter(plan, Phase::Wait)?;
        let t = Instant::now();
        let until = crate::logging::rfc3339(waiting.until_unix);
        tracing::warn!(upgrade = %plan.name, until = %until, resolver = %waiting.by, reason = %waiting.reason, "the switch waits: the node stays halted until then");
        self.observer
            .phase(&plan.name, &format!("wait until {until} ({})", waiting.by));
        let until_unix = waiting.until_unix;
        self.journal.wait(Some(waiting)).map_err(|source| {
            super::io_error(plan, Phase::Wait, "cannot write the journal", source)
        })?;
        // By the wall clock, in steps of at most a minute: a clock set forward (NTP, a resumed
        // VM) ends the wait on time, and no timer is asked for years ahead.
        let mut stopped = false;
        loop {
            let left = until_unix.saturating_sub(unix_secs());
            if left == 0 {
                break;
            }
            let step = Duration::from_secs(left.min(60)) + Duration::from_millis(50);
            if self
                .signals
                .until_stop(tokio::time::sleep(step))
                .await
                .is_none()
            {
                stopped = true;
                break;
            }
        }
        if stopped {
            // The record stays: `status` shows the wait until a restart asks the resolvers again.
            return Ok(false);
        }
        self.journal.wait(None).map_err(|source| {
            super::io_error(plan, Phase::Wait, "cannot write the journal", source)
        })?;
        self.done(Phase::Wait, t.elapsed());
        Ok(true)
    }
}
