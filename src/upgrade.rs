//! The upgrade, as named phases: stop → delay → backup → custom-preupgrade → resolve → swap →
//! app-preupgrade → commit. Each phase is journaled before it starts and logs its duration.
//!
//! Nothing before `swap` changes which binary runs, and `swap` is a single rename, so an upgrade
//! interrupted anywhere leaves `current` pointing at a complete binary; the journal tells the next
//! supervisor how to finish.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::backup::{self, BackupError};
use crate::journal::Phase;
use crate::layout::{Current, LayoutError, UPGRADES_DIR};
use crate::plan::{Plan, Read};
use crate::plugin::set::StageError;
use crate::process::{Child, Exit};
use crate::supervisor::Supervisor;
use crate::swap;

/// Exit codes of `<node> pre-upgrade`, as the Cosmos SDK defines them.
const PREUPGRADE_OK: i32 = 0;
const PREUPGRADE_NOT_IMPLEMENTED: i32 = 1;
const PREUPGRADE_ABORT: i32 = 30;
const PREUPGRADE_RETRY: i32 = 31;

/// The resolvers' answer (decision, and the resolver that gave it), computed in the background.
type Resolution = tokio::task::JoinHandle<Result<(crate::plugin::Decision, String), String>>;

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("upgrade {upgrade:?}: {source}")]
    Layout {
        upgrade: String,
        source: LayoutError,
    },
    #[error("upgrade {upgrade:?}: phase {phase}: {what}: {source}")]
    Io {
        upgrade: String,
        phase: Phase,
        what: String,
        source: std::io::Error,
    },
    #[error("upgrade {upgrade:?}: backup failed: {source}")]
    Backup {
        upgrade: String,
        source: BackupError,
    },
    #[error(
        "upgrade {upgrade:?}: the custom pre-upgrade script {script} {outcome}; the upgrade is aborted and the node was not switched (fix the script, then restart wasmvisor to retry)"
    )]
    CustomPreupgrade {
        upgrade: String,
        script: PathBuf,
        outcome: String,
    },
    #[error("upgrade {upgrade:?}: {message}; `current` is unchanged")]
    Plugin { upgrade: String, message: String },
    #[error(
        "upgrade {upgrade:?}: resolver {by} refused it: {reason}; `current` is unchanged (stage the binary with add-upgrade, or fix the plugin configuration, then restart wasmvisor)"
    )]
    Refused {
        upgrade: String,
        by: String,
        reason: String,
    },
    #[error(
        "upgrade {upgrade:?}: the binary could not be fetched: {message}; `current` is unchanged (restart wasmvisor to retry; partial downloads resume)"
    )]
    Fetch { upgrade: String, message: String },
    #[error(
        "upgrade {upgrade:?}: `{binary} pre-upgrade` {outcome}; `current` now points at the new binary and wasmvisor will run pre-upgrade again before the next launch"
    )]
    AppPreupgrade {
        upgrade: String,
        binary: PathBuf,
        outcome: String,
    },
}

impl UpgradeError {
    /// Whether the upgrade was refused for want of a usable binary or by a policy: retrying
    /// makes sense only once the operator changed something.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            UpgradeError::Refused { .. }
                | UpgradeError::Layout {
                    source: LayoutError::MissingBinary { .. }
                        | LayoutError::BadBinary { .. }
                        | LayoutError::BinaryOutside { .. },
                    ..
                }
        )
    }
}

impl Supervisor {
    /// Applies `plan`. `node` is the running (or just exited) node to stop first. Returns false
    /// if a stop request interrupted the upgrade (the journal keeps it for the next start).
    pub(crate) async fn upgrade(
        &mut self,
        plan: Plan,
        manual: bool,
        node: Option<Child>,
    ) -> Result<bool, UpgradeError> {
        let upgrade = plan.name.clone();
        let dir_name = self
            .layout
            .dir_name(&plan.name)
            .map_err(|source| UpgradeError::Layout {
                upgrade: upgrade.clone(),
                source,
            })?;
        let from = self
            .layout
            .current()
            .map_err(|source| UpgradeError::Layout {
                upgrade: upgrade.clone(),
                source,
            })?;
        let detect_lag = if manual {
            // The chain reached the height of a manual plan: record it as the node would have.
            self.layout.write_upgrade_info(&plan).map_err(|source| {
                io_error(
                    &plan,
                    Phase::Detect,
                    "cannot write upgrade-info.json",
                    source,
                )
            })?;
            Duration::ZERO
        } else {
            file_age(&self.layout.upgrade_info_path())
        };
        tracing::info!(upgrade = %plan.name, height = plan.height, from = from.label(), to = %dir_name, "upgrade starting");
        let started = Instant::now();
        self.journal
            .begin(&plan, &dir_name, from.label())
            .map_err(|source| io_error(&plan, Phase::Detect, "cannot write the journal", source))?;
        self.enter(&plan, Phase::Detect)?;
        self.done(Phase::Detect, detect_lag);
        // Resolving needs nothing the stop changes, so it runs while the node stops (and during
        // the delay and backup). A custom pre-upgrade script may stage the binary itself: with
        // one, the resolvers run after it, in their phase.
        let early = self
            .cfg
            .custom_preupgrade
            .is_none()
            .then(|| self.start_resolution(&plan));

        self.phase_stop(&plan, node).await?;
        if self.poll_stop() || !self.phase_delay(&plan).await? {
            return Ok(false);
        }
        if self.poll_stop() || !self.phase_backup(&plan, &dir_name).await? {
            return Ok(false);
        }
        if self.poll_stop() || !self.phase_custom_preupgrade(&plan).await? {
            return Ok(false);
        }
        let Some(artifacts) = self.phase_resolve(&plan, &dir_name, early).await? else {
            return Ok(false);
        };
        if let Some(artifacts) = artifacts
            && !self.phase_fetch(&plan, &dir_name, artifacts).await?
        {
            return Ok(false);
        }
        self.phase_swap(&plan, &dir_name)?;
        let done = self.finish_after_swap(plan.clone()).await?;
        if done && !self.plugins.health.is_empty() {
            self.health_due = Some(plan);
        }
        if done {
            tracing::info!(upgrade = %upgrade, took = %crate::duration::format(started.elapsed()), "upgrade complete");
        }
        Ok(done)
    }

    /// The part of an upgrade after the switch: the app's pre-upgrade, then commit. The journal
    /// must already record the upgrade.
    pub(crate) async fn finish_after_swap(&mut self, plan: Plan) -> Result<bool, UpgradeError> {
        if !self.phase_app_preupgrade(&plan).await? {
            return Ok(false);
        }
        self.phase_commit(&plan)?;
        Ok(true)
    }

    fn enter(&mut self, plan: &Plan, phase: Phase) -> Result<(), UpgradeError> {
        tracing::debug!(phase = phase.name(), "phase starting");
        self.journal
            .enter(phase)
            .map_err(|source| io_error(plan, phase, "cannot write the journal", source))
    }

    fn done(&mut self, phase: Phase, took: Duration) {
        tracing::info!(phase = phase.name(), duration = %crate::duration::format(took), "phase done");
        self.journal.done(phase, took);
    }

    async fn phase_stop(&mut self, plan: &Plan, node: Option<Child>) -> Result<(), UpgradeError> {
        self.enter(plan, Phase::Stop)?;
        let t = Instant::now();
        if let Some(mut node) = node {
            let exit = node.stop(self.cfg.shutdown_grace).await;
            self.node_gone().await;
            tracing::info!(status = %exit, "node stopped");
        }
        self.done(Phase::Stop, t.elapsed());
        Ok(())
    }

    async fn phase_delay(&mut self, plan: &Plan) -> Result<bool, UpgradeError> {
        let Some(delay) = self.cfg.restart_delay else {
            return Ok(true);
        };
        self.enter(plan, Phase::Delay)?;
        let t = Instant::now();
        if self.until_stop(tokio::time::sleep(delay)).await.is_none() {
            return Ok(false);
        }
        self.done(Phase::Delay, t.elapsed());
        Ok(true)
    }

    async fn phase_backup(&mut self, plan: &Plan, dir_name: &str) -> Result<bool, UpgradeError> {
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
            let (cancel, target) = (self.cancel.clone(), target.clone());
            tokio::task::spawn_blocking(move || backup::run(&data, &target, &cancel))
        };
        let result = match self.until_stop(&mut job).await {
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

    async fn phase_custom_preupgrade(&mut self, plan: &Plan) -> Result<bool, UpgradeError> {
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

    /// Asks the resolvers which binary the upgrade runs. Returns the artifacts to fetch
    /// (`Some(None)` when the staged binary is the one), or `None` if a stop request came first.
    async fn phase_resolve(
        &mut self,
        plan: &Plan,
        dir_name: &str,
        early: Option<Resolution>,
    ) -> Result<Option<Option<Vec<crate::plugin::Artifact>>>, UpgradeError> {
        self.enter(plan, Phase::Resolve)?;
        let t = Instant::now();
        let early = match early {
            Some(task) => task,
            None => self.start_resolution(plan),
        };
        let Some(answer) = self.until_stop(early).await else {
            return Ok(None);
        };
        let (decision, by) = answer
            .map_err(|e| format!("the resolution task failed: {e}"))
            .and_then(|r| r)
            .map_err(|message| UpgradeError::Plugin {
                upgrade: plan.name.clone(),
                message,
            })?;
        let target = Current::Upgrade(dir_name.to_string());
        let artifacts = match decision {
            crate::plugin::Decision::UseStaged => {
                self.layout
                    .check_binary(&target)
                    .map_err(|source| UpgradeError::Layout {
                        upgrade: plan.name.clone(),
                        source,
                    })?;
                tracing::info!(binary = %self.layout.binary_path(&target).display(), resolver = %by, "upgrade binary found");
                None
            }
            crate::plugin::Decision::Refuse(reason) => {
                return Err(UpgradeError::Refused {
                    upgrade: plan.name.clone(),
                    by,
                    reason,
                });
            }
            crate::plugin::Decision::Fetch(list) => Some(list),
        };
        self.done(Phase::Resolve, t.elapsed());
        Ok(Some(artifacts))
    }

    /// Starts asking the resolvers about `plan` in the background.
    /// Describing the staged binary may hash it (for policy resolvers), so the request is built
    /// on the plugin thread too, never on the runtime's.
    fn start_resolution(&self, plan: &Plan) -> Resolution {
        let (set, cfg, plan) = (self.plugins.clone(), self.cfg.clone(), plan.clone());
        tokio::spawn(async move {
            crate::plugin::off_runtime(move || {
                let layout = crate::layout::Layout::open(&cfg).map_err(|e| e.to_string())?;
                let request = set.request(&cfg, &layout, &plan)?;
                set.resolve(&request)
                    .map_err(|e| format!("{e}; policy plugins fail closed"))
            })
            .await
            .and_then(|r| r)
        })
    }

    /// Fetches, verifies and installs the binary the resolvers chose. Returns false if a stop
    /// request ended it (the partial download stays, to resume at the next start).
    async fn phase_fetch(
        &mut self,
        plan: &Plan,
        dir_name: &str,
        artifacts: Vec<crate::plugin::Artifact>,
    ) -> Result<bool, UpgradeError> {
        self.enter(plan, Phase::Fetch)?;
        let t = Instant::now();
        let set = self.plugins.clone();
        let cfg = self.cfg.clone();
        let layout =
            crate::layout::Layout::open(&self.cfg).map_err(|source| UpgradeError::Layout {
                upgrade: plan.name.clone(),
                source,
            })?;
        let dir = dir_name.to_string();
        let fetch = crate::plugin::off_runtime(move || {
            set.fetch_and_install(&cfg, &layout, &dir, &artifacts)
        });
        let fail = |message: String| UpgradeError::Fetch {
            upgrade: plan.name.clone(),
            message,
        };
        match self.until_stop(fetch).await {
            None | Some(Ok(Err(StageError::Cancelled))) => return Ok(false),
            Some(Err(message)) => return Err(fail(message)),
            Some(Ok(Err(StageError::Failed(message)))) => return Err(fail(message)),
            Some(Ok(Ok(()))) => {}
        }
        let target = Current::Upgrade(dir_name.to_string());
        self.layout
            .check_binary(&target)
            .map_err(|source| UpgradeError::Layout {
                upgrade: plan.name.clone(),
                source,
            })?;
        self.done(Phase::Fetch, t.elapsed());
        Ok(true)
    }

    fn phase_swap(&mut self, plan: &Plan, dir_name: &str) -> Result<(), UpgradeError> {
        self.enter(plan, Phase::Swap)?;
        let t = Instant::now();
        self.layout
            .write_record(dir_name, plan)
            .map_err(|source| UpgradeError::Layout {
                upgrade: plan.name.clone(),
                source,
            })?;
        let target = Path::new(UPGRADES_DIR).join(dir_name);
        swap::point_current(&self.layout.root, &target)
            .map_err(|source| io_error(plan, Phase::Swap, "cannot switch `current`", source))?;
        tracing::info!(current = %target.display(), "switched `current`");
        self.done(Phase::Swap, t.elapsed());
        Ok(())
    }

    async fn phase_app_preupgrade(&mut self, plan: &Plan) -> Result<bool, UpgradeError> {
        self.enter(plan, Phase::AppPreupgrade)?;
        let t = Instant::now();
        let current = Current::Upgrade(self.layout.dir_name(&plan.name).map_err(|source| {
            UpgradeError::Layout {
                upgrade: plan.name.clone(),
                source,
            }
        })?);
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
            let exit = match self
                .run_helper(Command::new(&binary).arg("pre-upgrade"))
                .await
            {
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

    fn phase_commit(&mut self, plan: &Plan) -> Result<(), UpgradeError> {
        self.journal
            .commit()
            .map_err(|source| io_error(plan, Phase::Launch, "cannot write the journal", source))?;
        self.journal.checkpoint("commit");
        self.mark_launch_after_upgrade();
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

    /// Runs a helper process (a pre-upgrade) to its end. A stop request forwards SIGTERM to it
    /// and returns `None` once it has ended.
    async fn run_helper(&mut self, cmd: &mut Command) -> std::io::Result<Option<Exit>> {
        let mut child = self.reaper.spawn(cmd, true)?;
        loop {
            tokio::select! {
                exit = child.wait() => {
                    return Ok(if self.stop.is_some() { None } else { Some(exit) });
                }
                Some(sig) = self.signals.recv() => {
                    self.note_signal(sig);
                    if self.stop.is_some() {
                        child.stop(self.cfg.shutdown_grace).await;
                        return Ok(None);
                    }
                    child.signal(sig);
                }
            }
        }
    }
}

fn io_error(plan: &Plan, phase: Phase, what: &str, source: std::io::Error) -> UpgradeError {
    UpgradeError::Io {
        upgrade: plan.name.clone(),
        phase,
        what: what.into(),
        source,
    }
}

/// How long ago a file was last written (zero when unknown).
fn file_age(path: &Path) -> Duration {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default()
}
