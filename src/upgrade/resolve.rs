//! Resolving: the resolver plugins choose the upgrade's binary. The request describes the plan,
//! the platform and the upgrade folder; it is built on the plugin thread (describing a staged
//! binary may hash it). Resolution starts while the node stops.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use super::{Upgrade, UpgradeError, tree_error};
use crate::artifact::StageError;
use crate::config::Config;
use crate::plugin::{
    self, Artifact, Decision, Deferral, PluginError, PluginSet, Request, Resolution, Staged,
};
use crate::tree::{Current, Layout, LayoutError, NameError, Plan};
use crate::upgrade::journal::{Phase, Waiting};

/// The resolvers' answer, computed in the background, with the request they were asked (asked
/// again after a wait, the chain is given the same one: what was staged before wasmvisor's own
/// fetch) and when (Unix seconds).
pub(super) type Pending = tokio::task::JoinHandle<Result<(Resolution, Request, u64), ResolveError>>;

/// Why the resolvers could not be asked, or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: crate::fs::ReadError,
    },
    #[error("{0}; policy plugins fail closed")]
    Plugin(PluginError),
    #[error(transparent)]
    Thread(#[from] plugin::ThreadError),
    /// The task awaiting the plugin thread ended without an answer.
    #[error("the resolution task failed: {0}")]
    Task(String),
}

/// What a resolution asks of the host. The chain of resolvers never leaves a deferral as its
/// decision (it keeps it as `not_before`), so a final decision is one of these.
#[derive(Debug)]
enum Action {
    UseStaged,
    Fetch(Vec<Artifact>),
    Refuse(String),
    /// No resolver named a binary.
    Unresolved(String),
}

impl Action {
    fn of(decision: Decision) -> Action {
        match decision {
            Decision::UseStaged => Action::UseStaged,
            Decision::Fetch(list) => Action::Fetch(list),
            Decision::Refuse(reason) => Action::Refuse(reason),
            Decision::Unresolved(reason) => Action::Unresolved(reason),
            // Never left in force by the chain; were it, nothing was chosen.
            Decision::NotBefore(d) => Action::Unresolved(format!(
                "only a deferral until {} was given ({})",
                crate::logging::rfc3339(d.at),
                d.reason
            )),
        }
    }
}

/// What the resolvers chose: the artifacts to fetch (`None`: the staged binary), and the time
/// the switch must wait for.
pub(super) struct Chosen {
    pub artifacts: Option<Vec<Artifact>>,
    pub not_before: Option<Waiting>,
    /// The whole decision (URLs, checksums, formats), to tell whether asking again changed it.
    pub decision: Decision,
    pub request: Request,
    /// When the resolvers were asked.
    pub asked_unix: u64,
}

impl Upgrade<'_> {
    /// Asks the resolvers which binary the upgrade runs, or `None` if a stop request came first.
    pub(super) async fn phase_resolve(
        &mut self,
        plan: &Plan,
        dir_name: &str,
        early: Option<Pending>,
    ) -> Result<Option<Chosen>, UpgradeError> {
        self.enter(plan, Phase::Resolve)?;
        let t = Instant::now();
        let early = match early {
            Some(task) => task,
            None => self.start_resolution(plan),
        };
        let Some(answer) = self.signals.until_stop(early).await else {
            return Ok(None);
        };
        let (resolution, request, asked_unix) = answer
            .map_err(|e| ResolveError::Task(e.to_string()))
            .and_then(|r| r)
            .map_err(|source| UpgradeError::Resolve {
                upgrade: plan.name.clone(),
                source: Box::new(source),
            })?;
        let by = resolution.by.clone();
        let target = Current::Upgrade(dir_name.to_string());
        let decision = resolution.decision.clone();
        let artifacts = match Action::of(resolution.decision) {
            Action::UseStaged => {
                self.layout
                    .check_binary(&target)
                    .map_err(tree_error(&plan.name))?;
                tracing::info!(binary = %self.layout.binary_path(&target).display(), resolver = %by, "upgrade binary found");
                None
            }
            Action::Refuse(reason) | Action::Unresolved(reason) => {
                return Err(UpgradeError::Refused {
                    upgrade: plan.name.clone(),
                    by,
                    reason,
                });
            }
            Action::Fetch(list) => Some(list),
        };
        self.done(Phase::Resolve, t.elapsed());
        Ok(Some(Chosen {
            artifacts,
            not_before: resolution.not_before.map(|(d, by)| Waiting {
                until_unix: d.at,
                by,
                reason: d.reason,
            }),
            decision,
            request,
            asked_unix,
        }))
    }

    /// Starts asking the resolvers about `plan` in the background.
    /// Describing the staged binary may hash it (for policy resolvers), so the request is built
    /// on the plugin thread too, never on the runtime's.
    pub(super) fn start_resolution(&self, plan: &Plan) -> Pending {
        self.ask(plan, None)
    }

    /// Asks the resolvers about `plan` in the background: with `asked`, the request of an
    /// earlier resolution; else one describing the tree now.
    pub(super) fn ask(&self, plan: &Plan, asked: Option<Request>) -> Pending {
        let (set, cfg, plan) = (self.plugins.clone(), self.cfg.clone(), plan.clone());
        tokio::spawn(async move {
            crate::plugin::off_runtime(move || {
                let request = match asked {
                    Some(r) => r,
                    None => {
                        let layout = Layout::open(&cfg)?;
                        set_aside_if_stale(&layout, &cfg, &plan);
                        request(&set, &cfg, Some(&layout), &plan)?
                    }
                };
                let asked_unix = crate::clock::unix_secs();
                let resolution = set.resolve(&request).map_err(ResolveError::Plugin)?;
                Ok((resolution, request, asked_unix))
            })
            .await
            .map_err(ResolveError::Thread)
            .and_then(|r| r)
        })
    }
}

/// The WIT form of a plan.
pub(super) fn wit_plan(plan: &Plan) -> plugin::GuestPlan {
    plugin::GuestPlan {
        name: plan.name.clone(),
        height: plan.height,
        info: plan.info.clone(),
    }
}

/// What the resolvers are asked about `plan`: the plan, the platform and, in a tree, its upgrade
/// folder (always named, so a refusal can name the folder wasmvisor really looks in).
pub fn request(
    set: &PluginSet,
    cfg: &Config,
    layout: Option<&Layout>,
    plan: &Plan,
) -> Result<Request, ResolveError> {
    let staged = match layout {
        Some(layout) => Some(staged(set, layout, plan)?),
        None => None,
    };
    Ok(Request {
        plan: wit_plan(plan),
        platform: plugin::platform(),
        daemon_name: cfg.name.clone(),
        staged,
        downloads_allowed: cfg.allow_download_binaries,
        checksum_required: cfg.download_must_have_checksum,
    })
}

/// What the tree holds for `plan`: its folder, whether a binary is there, and its sha256 when a
/// resolver other than the bundled one may look at it.
fn staged(set: &PluginSet, layout: &Layout, plan: &Plan) -> Result<Staged, ResolveError> {
    let dir = layout.dir_name(&plan.name)?;
    let target = Current::Upgrade(dir.clone());
    let has_binary = layout.check_binary(&target).is_ok();
    let sha256 = if has_binary && !set.only_default_resolver() {
        let path = layout.binary_path(&target);
        match crate::fs::sha256_path(&path) {
            Ok(sha256) => Some(sha256),
            Err(source) => return Err(ResolveError::Unreadable { path, source }),
        }
    } else {
        None
    };
    Ok(Staged {
        dir,
        has_binary,
        sha256,
    })
}

/// What `prepare` did.
#[derive(Debug)]
pub struct Prepared {
    /// The binary's place, `upgrades/<dir>/bin/<daemon>`.
    pub binary: String,
    /// It was fetched (else it was already staged).
    pub downloaded: bool,
    /// A resolver's hold on the switch, and its name.
    pub held: Option<(Deferral, String)>,
}

impl fmt::Display for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.downloaded {
            true => write!(f, "{} downloaded, verified and staged", self.binary)?,
            false => write!(f, "{} is staged", self.binary)?,
        }
        match &self.held {
            Some((d, by)) => write!(
                f,
                "; resolver {by} holds the switch until {} ({})",
                crate::logging::rfc3339(d.at),
                d.reason
            ),
            None => Ok(()),
        }
    }
}

/// Why `prepare` could not stage the binary.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Request(#[from] ResolveError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("resolver {by} chose the staged binary: {source}")]
    StagedUnusable { by: String, source: LayoutError },
    #[error("resolver {by} refused: {reason}")]
    Refused { by: String, reason: String },
    #[error("no resolver named a binary: {by}: {reason}")]
    Unresolved { by: String, reason: String },
    #[error(transparent)]
    Stage(#[from] StageError),
}

/// Resolves `plan` and, if the resolvers want artifacts, fetches and installs them: what
/// `prepare-upgrade` and the supervisor's preparation ahead of a manual halt do.
pub fn prepare(set: &PluginSet, cfg: &Config, plan: &Plan) -> Result<Prepared, PrepareError> {
    prepare_until(set, cfg, &Layout::open(cfg)?, plan, &set.cancel)
}

/// [`prepare`] in an opened tree, its download stopped by `cancel` (the planner's, which an
/// upgrade cancels).
pub fn prepare_until(
    set: &PluginSet,
    cfg: &Config,
    layout: &Layout,
    plan: &Plan,
    cancel: &crate::cancel::Cancel,
) -> Result<Prepared, PrepareError> {
    let dir = layout.dir_name(&plan.name)?;
    set_aside_if_stale(layout, cfg, plan);
    let request = request(set, cfg, Some(layout), plan)?;
    let resolution = set.resolve(&request)?;
    let by = resolution.by;
    let downloaded = match Action::of(resolution.decision) {
        Action::UseStaged => {
            if let Err(source) = layout.check_binary(&Current::Upgrade(dir.clone())) {
                return Err(PrepareError::StagedUnusable { by, source });
            }
            false
        }
        Action::Refuse(reason) => return Err(PrepareError::Refused { by, reason }),
        Action::Unresolved(reason) => return Err(PrepareError::Unresolved { by, reason }),
        Action::Fetch(list) => {
            crate::artifact::stage(set, cfg, layout, (&dir, plan), &list, cancel)?;
            true
        }
    };
    Ok(Prepared {
        binary: format!("upgrades/{dir}/bin/{}", cfg.name),
        downloaded,
        held: resolution.not_before,
    })
}

/// Before staging `plan` (ahead, or at its halt; never for a diagnostic `plugin call`): a
/// binary wasmvisor staged for other info of this plan (proposed again, or replaced under the
/// same name) is moved aside, so the resolvers fetch the plan's own. Unreadable records leave
/// the binary where it is, as a binary staged by hand.
fn set_aside_if_stale(layout: &Layout, cfg: &Config, plan: &Plan) {
    use crate::artifact::provenance::{self, Looked};
    let Ok(dir) = layout.dir_name(&plan.name) else {
        return;
    };
    let dir = dir.as_str();
    match provenance::set_aside_if_stale(layout, (dir, plan), cfg.allow_download_binaries) {
        Ok(Looked::Unchanged) => {}
        Ok(Looked::Kept(why)) => tracing::warn!(
            upgrade = %plan.name,
            "the binary wasmvisor staged in upgrades/{dir} was for other plan info; it is kept and used: {why}"
        ),
        Ok(Looked::SetAside(to)) => tracing::warn!(
            upgrade = %plan.name,
            "the binary wasmvisor staged in upgrades/{dir} was for other plan info; moved to {to}, the plan's binary is fetched again"
        ),
        Ok(Looked::HandStaged) => tracing::info!(
            upgrade = %plan.name,
            "the binary in upgrades/{dir} was replaced by hand since wasmvisor staged it: it is used as staged"
        ),
        Err(e) => tracing::warn!(
            upgrade = %plan.name,
            "cannot tell which plan upgrades/{dir} was staged for ({e}); its binary is used as staged"
        ),
    }
}
