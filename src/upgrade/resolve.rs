//! Resolving: the resolver plugins choose the upgrade's binary. The request describes the plan,
//! the platform and the upgrade folder; it is built on the plugin thread (describing a staged
//! binary may hash it). Resolution starts while the node stops.

use std::time::Instant;

use super::{Upgrade, UpgradeError, tree_error};
use crate::config::Config;
use crate::plugin::{self, Artifact, Decision, PluginSet, Request, Resolution, Staged};
use crate::tree::{Current, Layout, Plan};
use crate::upgrade::journal::{Phase, Waiting};

/// The resolvers' answer, computed in the background, with the request they were asked (asked
/// again after a wait, the chain is given the same one: what was staged before wasmvisor's own
/// fetch) and when (Unix seconds).
pub(super) type Pending = tokio::task::JoinHandle<Result<(Resolution, Request, u64), String>>;

/// What the resolvers chose: the artifacts to fetch (`None`: the staged binary), and the time
/// the switch must wait for.
pub(super) struct Chosen {
    pub artifacts: Option<Vec<Artifact>>,
    pub not_before: Option<Waiting>,
    /// The whole decision (URLs, checksums, formats), to tell whether asking again changed it.
    pub decision: String,
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
            .map_err(|e| format!("the resolution task failed: {e}"))
            .and_then(|r| r)
            .map_err(|message| UpgradeError::Plugin {
                upgrade: plan.name.clone(),
                message,
            })?;
        let by = resolution.by.clone();
        let target = Current::Upgrade(dir_name.to_string());
        let decision = format!("{:?}", resolution.decision);
        let artifacts = match resolution.decision {
            Decision::UseStaged => {
                self.layout
                    .check_binary(&target)
                    .map_err(tree_error(&plan.name))?;
                tracing::info!(binary = %self.layout.binary_path(&target).display(), resolver = %by, "upgrade binary found");
                None
            }
            Decision::Refuse(reason) | Decision::Unresolved(reason) => {
                return Err(UpgradeError::Refused {
                    upgrade: plan.name.clone(),
                    by,
                    reason,
                });
            }
            Decision::Fetch(list) => Some(list),
            Decision::NotBefore(_) => unreachable!("the chain never leaves a deferral in force"),
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
                        let layout = Layout::open(&cfg).map_err(|e| e.to_string())?;
                        request(&set, &cfg, Some(&layout), &plan)?
                    }
                };
                let asked_unix = now_unix();
                let resolution = set
                    .resolve(&request)
                    .map_err(|e| format!("{e}; policy plugins fail closed"))?;
                Ok((resolution, request, asked_unix))
            })
            .await
            .and_then(|r| r)
        })
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The WIT form of a plan.
pub(super) fn wit_plan(plan: &Plan) -> plugin::Plan {
    plugin::Plan {
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
) -> Result<Request, String> {
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
fn staged(set: &PluginSet, layout: &Layout, plan: &Plan) -> Result<Staged, String> {
    let dir = layout.dir_name(&plan.name).map_err(|e| e.to_string())?;
    let target = Current::Upgrade(dir.clone());
    let has_binary = layout.check_binary(&target).is_ok();
    let sha256 = if has_binary && !set.only_default_resolver() {
        let path = layout.binary_path(&target);
        Some(
            crate::fs::sha256_path(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        )
    } else {
        None
    };
    Ok(Staged {
        dir,
        has_binary,
        sha256,
    })
}

/// Resolves `plan` and, if the resolvers want artifacts, fetches and installs them: what
/// `prepare-upgrade` and the supervisor's preparation ahead of a manual halt do. Returns what
/// was done, in words.
pub fn prepare(set: &PluginSet, cfg: &Config, plan: &Plan) -> Result<String, String> {
    let layout = Layout::open(cfg).map_err(|e| e.to_string())?;
    let dir = layout.dir_name(&plan.name).map_err(|e| e.to_string())?;
    let request = request(set, cfg, Some(&layout), plan)?;
    let resolution = set.resolve(&request).map_err(|e| e.to_string())?;
    let by = &resolution.by;
    let binary = format!("upgrades/{dir}/bin/{}", cfg.name);
    let done = match &resolution.decision {
        Decision::UseStaged => {
            layout
                .check_binary(&Current::Upgrade(dir.clone()))
                .map_err(|e| format!("resolver {by} chose the staged binary: {e}"))?;
            format!("{binary} is staged")
        }
        Decision::Refuse(reason) => return Err(format!("resolver {by} refused: {reason}")),
        Decision::Unresolved(reason) => {
            return Err(format!("no resolver named a binary: {by}: {reason}"));
        }
        Decision::Fetch(list) => {
            crate::artifact::stage(set, cfg, &layout, &dir, list, &set.cancel)
                .map_err(|e| e.to_string())?;
            format!("{binary} downloaded, verified and staged")
        }
        Decision::NotBefore(_) => unreachable!("the chain never leaves a deferral in force"),
    };
    Ok(match &resolution.not_before {
        Some((d, by)) => format!(
            "{done}; resolver {by} holds the switch until {} ({})",
            crate::logging::rfc3339(d.at),
            d.reason
        ),
        None => done,
    })
}
