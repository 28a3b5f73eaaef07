//! The two pre-upgrade steps: the operator's `COSMOVISOR_CUSTOM_PREUPGRADE` script before the
//! switch, and the new binary's `pre-upgrade` after it (exit codes as the Cosmos SDK defines them).
//! Both run at least once: a supervisor killed while one runs runs it again.

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
    pub(super) async fn phase_custom_preupgrade(
        &mut self,
        plan: &Plan,
    ) -> Result<bool, UpgradeError> {
        let Some(script_name) = self.cfg.custom_preupgrade.clone() else {
            return Ok(true);
        };
        self.enter(plan, Phase::CustomPreupgrade)?;
        let t = Instant::now();
        let script = self.layout.root_path.join(&script_name);
        let fail = |outcome: String| UpgradeError::CustomPreupgrade {
            upgrade: plan.name.clone(),
            script: script.clone(),
            outcome,
        };
        let meta = match self.layout.root.metadata(&script_name) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Err(fail("is not a regular file".into())),
            Err(e) => {
                return Err(fail(format!(
                    "cannot be used: {e} (COSMOVISOR_CUSTOM_PREUPGRADE names a file inside $DAEMON_HOME/cosmovisor)"
                )));
            }
        };
        use cap_std::fs::PermissionsExt as _;
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o100 == 0 {
            // Cosmovisor adds the owner's execute bit itself; do the same.
            let perms =
                cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(mode | 0o100));
            self.layout
                .root
                .set_permissions(&script_name, perms)
                .map_err(|e| fail(format!("is not executable and cannot be made so: {e}")))?;
            tracing::info!(script = %script.display(), "added the owner's execute permission to the custom pre-upgrade script");
        }
        tracing::info!(script = %script.display(), "running the custom pre-upgrade script");
        let mut cmd = Command::new(&script);
        cmd.arg(&plan.name)
            .arg(plan.height.to_string())
            .current_dir(&self.cfg.home);
        let exit = match self.run_helper(&mut cmd).await {
            Ok(Some(exit)) => exit,
            Ok(None) => return Ok(false),
            Err(e) => return Err(fail(format!("could not be started: {e}"))),
        };
        if !exit.success() {
            return Err(fail(format!("failed with {exit}")));
        }
        self.done(Phase::CustomPreupgrade, t.elapsed());
        Ok(true)
    }

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

    /// Runs a helper process (a pre-upgrade) to its end. A stop request forwards SIGTERM to it
    /// and returns `None` once it has ended.
    async fn run_helper(&mut self, cmd: &mut Command) -> std::io::Result<Option<Exit>> {
        let mut child = self.reaper.spawn(cmd, true)?;
        loop {
            tokio::select! {
                exit = child.wait() => {
                    return Ok(if self.signals.stop().is_some() { None } else { Some(exit) });
                }
                sig = self.signals.recv() => {
                    if self.signals.stop().is_some() {
                        child.stop(self.cfg.shutdown_grace).await;
                        return Ok(None);
                    }
                    child.signal(sig);
                }
            }
        }
    }
}
