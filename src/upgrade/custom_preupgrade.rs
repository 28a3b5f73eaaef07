//! The custom-preupgrade phase: the operator's `COSMOVISOR_CUSTOM_PREUPGRADE` script, before the
//! switch. It runs at least once: a supervisor killed while it runs runs it again.

use std::process::Command;
use std::time::Instant;

use super::{Upgrade, UpgradeError};
use crate::node::Exit;
use crate::tree::Plan;
use crate::upgrade::journal::Phase;

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
    /// Runs a helper process (a pre-upgrade) to its end. A stop request forwards SIGTERM to it
    /// and returns `None` once it has ended.
    pub(super) async fn run_helper(&mut self, cmd: &mut Command) -> std::io::Result<Option<Exit>> {
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
