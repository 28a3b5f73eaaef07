//! The app-preupgrade phase: the new binary's `pre-upgrade`, after the switch (exit codes as the
//! Cosmos SDK defines them). It runs at least once: a supervisor killed while it runs runs it
//! again, and a `current` found switched at a start runs it before the launch.

use std::process::Command;
use std::time::Instant;

use super::{Upgrade, UpgradeError, tree_error};
use crate::node::Exit;
use crate::tree::{Current, Plan};
use crate::upgrade::journal::Phase;

/// Exit codes of `<node> pre-upgrade`, as the Cosmos SDK defines them.
const PREUPGRADE_OK: i32 = 0;
const PREUPGRADE_NOT_IMPLEMENTED: i32 = 1;
const PREUPGRADE_ABORT: i32 = 30;
const PREUPGRADE_RETRY: i32 = 31;

impl Upgrade<'_> {
    pub(super) async fn phase_app_preupgrade(&mut self, plan: &Plan) -> Result<bool, UpgradeError> {
        self.enter(plan, Phase::AppPreupgrade)?;
        let t = Instant::now();
        let current = Current::Upgrade(
            self.layout
                .dir_name(&plan.name)
                .map_err(tree_error(&plan.name))?,
        );
        let binary = self.layout.binary_path(&current);
        let fail = |outcome: String| UpgradeError::AppPreupgrade {
            upgrade: plan.name.clone(),
            binary: binary.clone(),
            outcome,
        };
        let max_tries = self.cfg.preupgrade_max_retries + 1;
        for attempt in 1..=max_tries {
            tracing::info!(
                attempt,
                of = max_tries,
                "running `{} pre-upgrade`",
                binary.display()
            );
            let mut cmd = Command::new(&binary);
            cmd.arg("pre-upgrade");
            if let Some(libs) = self.layout.library_path(&current) {
                cmd.env("LD_LIBRARY_PATH", libs);
            }
            let exit = match self.run_helper(&mut cmd).await {
                Ok(Some(exit)) => exit,
                Ok(None) => return Ok(false),
                Err(e) => return Err(fail(format!("could not be started: {e}"))),
            };
            match exit {
                Exit::Code(PREUPGRADE_OK) => break,
                Exit::Code(PREUPGRADE_NOT_IMPLEMENTED) => {
                    tracing::info!("the node does not implement pre-upgrade (exit 1); going on");
                    break;
                }
                Exit::Code(PREUPGRADE_ABORT) => {
                    return Err(fail("exited 30: the node aborted the upgrade".into()));
                }
                Exit::Code(PREUPGRADE_RETRY) if attempt < max_tries => {
                    tracing::warn!(attempt, "pre-upgrade asked for a retry (exit 31)");
                }
                Exit::Code(PREUPGRADE_RETRY) => {
                    return Err(fail(format!(
                        "asked for a retry (exit 31) {max_tries} time(s); DAEMON_PREUPGRADE_MAX_RETRIES={} allows no more",
                        self.cfg.preupgrade_max_retries
                    )));
                }
                other => {
                    return Err(fail(format!(
                        "failed with {other} (only 0, 1, 30 and 31 are defined)"
                    )));
                }
            }
        }
        self.done(Phase::AppPreupgrade, t.elapsed());
        Ok(true)
    }
}
