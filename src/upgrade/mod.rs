//! The upgrade, from its detection to its commit or rollback, as a pipeline of named phases (the
//! journal's `Phase`) over an `Upgrade` context that borrows what it needs from the supervisor.
//! One file per phase, in pipeline order:
//!
//! ```text
//! detect             mod.rs                the node is asked to stop; the plan record is
//!                                          written and the journal begins while it does
//! stop, delay        stop.rs               the node stops (resolving already runs),
//!                                          DAEMON_RESTART_DELAY
//! backup             backup.rs             data/ snapshot (unless UNSAFE_SKIP_BACKUP)
//! custom-preupgrade  custom_preupgrade.rs  COSMOVISOR_CUSTOM_PREUPGRADE
//! resolve            resolve.rs            the resolver plugins choose the binary
//! fetch              fetch.rs              the source plugins download it; verified, unpacked,
//!                                          installed
//! wait               wait.rs               a resolver's `not-before`: the node stays halted
//!                                          until then, and the resolvers are asked again
//! swap, commit       swap.rs               `current` renamed over in one step (once the plan
//!                                          record is on disk); the journal's record of the
//!                                          finished upgrade
//! app-preupgrade     app_preupgrade.rs     `<new binary> pre-upgrade` (before the commit)
//! launch, health     probation.rs          the new binary on probation until it proves itself
//! ```
//!
//! `apply` classifies how it ended as one [`Outcome`] (`outcome.rs`). A new binary that fails
//! (cannot start, dies or is judged unhealthy before it proved itself) is rolled back by
//! `rollback.rs` when `WASMVISOR_ON_FAILED_UPGRADE=rollback`, and never run for that upgrade
//! again (`rollback.rs` is also the one answer to "did this binary fail before?").
//!
//! Each phase is journaled (`journal.rs`, the upgrade's record on disk) before it starts and logs
//! its duration. Nothing before `swap` changes which binary runs, and `swap` is a single rename,
//! so an upgrade interrupted anywhere leaves `current` pointing at a complete binary; the journal
//! tells the next supervisor how to finish. The supervisor launches the node; what follows the
//! launch is `probation.rs`.

// The phases (the table above).
mod app_preupgrade;
mod backup;
mod custom_preupgrade;
mod fetch;
pub mod probation;
mod resolve;
pub mod resumed;
mod stop;
mod swap;
mod wait;

pub mod journal;
mod outcome;
pub mod plugins;
pub mod preflight;
mod rollback;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::node::signals::Signals;
use crate::node::{Child, Reaper};
use crate::observe::Observer;
use crate::plugin::{Decision, PluginSet};
use crate::tree::backup::BackupError;
use crate::tree::{Layout, LayoutError, Plan};
use crate::upgrade::journal::{Journal, Phase};
pub use fetch::FetchError;
pub use outcome::Outcome;
pub use resolve::{prepare, prepare_until, request};
pub use rollback::{
    EXIT_ROLLED_BACK, FailedBefore, OnDisk, failed_before, failed_before_blocking, short,
};

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
    #[error(
        "upgrade {upgrade:?}: {} plugin(s) cannot be used: {}; fix plugins.toml or the plugin, then restart wasmvisor; `current` is unchanged",
        .errors.len(),
        lines(.errors)
    )]
    Unusable {
        upgrade: String,
        errors: Vec<crate::plugin::PluginError>,
    },
    /// The thread compiling the plugins ended without an answer.
    #[error("upgrade {upgrade:?}: {message}; `current` is unchanged")]
    Compile { upgrade: String, message: String },
    #[error("upgrade {upgrade:?}: {source}; `current` is unchanged")]
    Resolve {
        upgrade: String,
        source: Box<resolve::ResolveError>,
    },
    #[error(
        "upgrade {upgrade:?}: resolver {by} refused it: {reason}; `current` is unchanged (stage the binary with add-upgrade, or fix the plugin configuration, then restart wasmvisor)"
    )]
    Refused {
        upgrade: String,
        by: String,
        reason: String,
    },
    #[error(
        "upgrade {upgrade:?}: the binary could not be fetched: {source}; `current` is unchanged (restart wasmvisor to retry; partial downloads resume)"
    )]
    Fetch { upgrade: String, source: FetchError },
    #[error(
        "upgrade {upgrade:?}: `{binary} pre-upgrade` {outcome}; `current` now points at the new binary and wasmvisor will run pre-upgrade again before the next launch"
    )]
    AppPreupgrade {
        upgrade: String,
        binary: PathBuf,
        outcome: String,
    },
    #[error(
        "upgrade {upgrade:?}: the binary in upgrades/{dir}/bin (sha256 {sha256}) failed before ({reason}) and was rolled back; it is not run for this upgrade again: stage a different binary (`wasmvisor add-upgrade {upgrade} <path> --force`)"
    )]
    FailedBefore {
        upgrade: String,
        dir: String,
        sha256: String,
        reason: String,
    },
    #[error(
        "upgrade {upgrade:?}: the staged binary would not run on this host: {reason}; `current` is unchanged (stage a binary that runs here, `wasmvisor add-upgrade {upgrade} <path> --force`, or install what it needs, then restart wasmvisor)"
    )]
    Preflight {
        upgrade: String,
        reason: crate::preflight::NotReady,
    },
    #[error("upgrade {upgrade:?}: the preflight could not run: {source}; `current` is unchanged")]
    PreflightThread {
        upgrade: String,
        source: crate::plugin::ThreadError,
    },
    #[error("upgrade {upgrade:?}: the rollback is not finished: {message}")]
    Rollback { upgrade: String, message: String },
}

impl UpgradeError {
    /// Whether the upgrade was refused for want of a usable binary or by a policy: retrying
    /// makes sense only once the operator changed something.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            UpgradeError::Refused { .. }
                | UpgradeError::Preflight { .. }
                | UpgradeError::Layout {
                    source: LayoutError::MissingBinary { .. }
                        | LayoutError::BadBinary { .. }
                        | LayoutError::BinaryOutside { .. },
                    ..
                }
        )
    }
}

/// What an upgrade works with, borrowed from the supervisor for its duration.
pub struct Upgrade<'a> {
    pub cfg: &'a Config,
    pub layout: &'a Layout,
    pub journal: &'a mut Journal,
    pub signals: &'a mut Signals,
    pub reaper: &'a Reaper,
    pub plugins: &'a Arc<PluginSet>,
    pub observer: &'a Observer,
    pub checks: &'a preflight::Checks,
}

impl Upgrade<'_> {
    /// Applies `plan`. `node` is the running (or just exited) node to stop first.
    pub async fn apply(&mut self, plan: Plan, manual: bool, node: Option<Child>) -> Outcome {
        let result = self.pipeline(plan, manual, node).await;
        Outcome::of(result, self.cfg.on_failed_upgrade)
    }

    /// The part of an upgrade after the switch: the app's pre-upgrade, then commit. The journal
    /// must already record the upgrade.
    pub async fn finish_after_swap(&mut self, plan: Plan) -> Outcome {
        let result = self.after_swap(&plan).await;
        Outcome::of(result, self.cfg.on_failed_upgrade)
    }

    /// The phases in order. Returns false if a stop request interrupted the upgrade (the journal
    /// keeps it for the next start).
    async fn pipeline(
        &mut self,
        plan: Plan,
        manual: bool,
        node: Option<Child>,
    ) -> Result<bool, UpgradeError> {
        let started = Instant::now();
        let mut node = node;
        let (dir_name, record) = self.detect(&plan, manual, node.as_mut())?;
        // Resolving needs nothing the stop changes, so it runs while the node stops (and during
        // the delay and backup). A custom pre-upgrade script may stage the binary itself: with
        // one, the resolvers run after it, in their phase.
        let early = self
            .cfg
            .custom_preupgrade
            .is_none()
            .then(|| self.start_resolution(&plan));

        // So is the preflight of a binary already staged and not checked ahead.
        let early_check = self.start_preflight(&dir_name);
        self.phase_stop(&plan, node).await?;
        if self.signals.stop_requested() || !self.phase_delay(&plan).await? {
            return Ok(false);
        }
        if self.signals.stop_requested() || !self.phase_backup(&plan, &dir_name).await? {
            return Ok(false);
        }
        if self.signals.stop_requested() || !self.phase_custom_preupgrade(&plan).await? {
            return Ok(false);
        }
        if !self.resolve_and_fetch(&plan, &dir_name, early).await? {
            return Ok(false);
        }
        if !self.ready_to_swap(&plan, &dir_name, early_check).await? {
            return Ok(false);
        }
        self.phase_swap(&plan, &dir_name, record).await?;
        let done = self.after_swap(&plan).await?;
        if done {
            tracing::info!(upgrade = %plan.name, took = %crate::duration::format(started.elapsed()), "upgrade complete");
        }
        Ok(done)
    }

    /// The detect phase: a manual plan is recorded as the node would have written it, the node
    /// is asked to stop, and while it shuts down (the stop phase waits for it) the plan record
    /// is written into the upgrade folder and the journal begins, both durably. Returns the
    /// upgrade's folder name and the record being written.
    fn detect(
        &mut self,
        plan: &Plan,
        manual: bool,
        node: Option<&mut Child>,
    ) -> Result<(String, swap::Record), UpgradeError> {
        let dir_name = self
            .layout
            .dir_name(&plan.name)
            .map_err(tree_error(&plan.name))?;
        let from = self.layout.current().map_err(tree_error(&plan.name))?;
        let detect_lag = if manual {
            // The chain reached the height of a manual plan: record it as the node would have.
            self.layout.write_upgrade_info(plan).map_err(|source| {
                io_error(
                    plan,
                    Phase::Detect,
                    "cannot write upgrade-info.json",
                    source,
                )
            })?;
            Duration::ZERO
        } else {
            file_age(&self.layout.upgrade_info_path())
        };
        if let Some(node) = node {
            node.ask_to_stop();
        }
        let record = self.start_record(plan, &dir_name)?;
        tracing::info!(upgrade = %plan.name, height = plan.height, from = from.label(), to = %dir_name, "upgrade starting");
        self.observer.tell(crate::observe::Notice::UpgradeStarted {
            upgrade: crate::observe::Upgrade::new(&plan.name, plan.height),
            from: from.label().to_string(),
            to: format!("upgrades/{dir_name}"),
        });
        self.journal
            .begin(plan, &dir_name, from.label())
            .map_err(|source| io_error(plan, Phase::Detect, "cannot write the journal", source))?;
        // The record `begin` wrote is in the detect phase already.
        tracing::debug!(phase = Phase::Detect.name(), "phase starting");
        self.observer.phase(&plan.name, Phase::Detect.name());
        self.journal.checkpoint(Phase::Detect.name());
        self.done(Phase::Detect, detect_lag);
        Ok((dir_name, record))
    }

    /// Resolve, fetch, and hold the switch while a resolver defers it. At the time it named —
    /// or at once, if that time passed while fetching — the chain is asked again, with the
    /// request it was first given (what was staged before wasmvisor's own fetch): it may defer
    /// again, refuse, or name another binary. Returns false if a stop request interrupted it.
    async fn resolve_and_fetch(
        &mut self,
        plan: &Plan,
        dir_name: &str,
        early: Option<resolve::Pending>,
    ) -> Result<bool, UpgradeError> {
        let mut pending = early;
        let mut fetched: Option<Decision> = None;
        loop {
            let Some(chosen) = self.phase_resolve(plan, dir_name, pending.take()).await? else {
                return Ok(false);
            };
            if fetched.as_ref() != Some(&chosen.decision) {
                if let Some(artifacts) = chosen.artifacts
                    && !self.phase_fetch(plan, dir_name, artifacts).await?
                {
                    return Ok(false);
                }
                fetched = Some(chosen.decision);
            }
            let Some(waiting) = chosen.not_before else {
                return Ok(true);
            };
            // A time already past when the chain was asked holds nothing back.
            if waiting.until_unix <= chosen.asked_unix {
                return Ok(true);
            }
            if waiting.until_unix > crate::clock::unix_secs()
                && !self.phase_wait(plan, waiting).await?
            {
                return Ok(false);
            }
            pending = Some(self.ask(plan, Some(chosen.request)));
        }
    }

    /// Before the swap: every plugin compiled (they compile in the background from the start;
    /// a health check that cannot run would judge the new binary unhealthy, so the switch
    /// waits for them and does not happen if one failed), and the binary about to run did not
    /// fail for this upgrade before, and it passed its preflight (ahead of the halt, or now).
    /// Returns false if a stop request interrupted the wait.
    async fn ready_to_swap(
        &mut self,
        plan: &Plan,
        dir_name: &str,
        early_check: Option<preflight::Early>,
    ) -> Result<bool, UpgradeError> {
        let plugins = self.plugins.clone();
        let compiling = tokio::spawn(crate::plugin::off_runtime(move || plugins.compile_errors()));
        let Some(compiled) = self.signals.until_stop(compiling).await else {
            return Ok(false);
        };
        let errors = compiled
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|message| UpgradeError::Compile {
                upgrade: plan.name.clone(),
                message,
            })?;
        if !errors.is_empty() {
            return Err(UpgradeError::Unusable {
                upgrade: plan.name.clone(),
                errors,
            });
        }
        if let Some(failed) = failed_before(self.layout, self.journal, plan)
            .await
            .into_failure()
        {
            return Err(UpgradeError::FailedBefore {
                upgrade: plan.name.clone(),
                dir: dir_name.to_string(),
                sha256: failed.sha256,
                reason: failed.reason,
            });
        }
        self.preflight_at_halt(plan, dir_name, early_check).await
    }

    /// The app's pre-upgrade, then commit. Returns false if a stop request interrupted it.
    async fn after_swap(&mut self, plan: &Plan) -> Result<bool, UpgradeError> {
        if !self.phase_app_preupgrade(plan).await? {
            return Ok(false);
        }
        self.phase_commit(plan)?;
        Ok(true)
    }

    fn enter(&mut self, plan: &Plan, phase: Phase) -> Result<(), UpgradeError> {
        tracing::debug!(phase = phase.name(), "phase starting");
        self.observer.phase(&plan.name, phase.name());
        self.journal
            .enter(phase)
            .map_err(|source| io_error(plan, phase, "cannot write the journal", source))
    }

    fn done(&mut self, phase: Phase, took: Duration) {
        tracing::info!(phase = phase.name(), duration = %crate::duration::format(took), "phase done");
        self.observer.phase_done(phase.name(), took);
        self.journal.done(phase, took);
    }
}

/// The plugins' errors, one after the other.
fn lines(errors: &[crate::plugin::PluginError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// Wraps an error of the tree as the upgrade's.
fn tree_error<E: Into<LayoutError>>(upgrade: &str) -> impl FnOnce(E) -> UpgradeError + '_ {
    move |e| UpgradeError::Layout {
        upgrade: upgrade.to_string(),
        source: e.into(),
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
