//! Resolving: the resolver plugins choose the upgrade's binary. The request describes the plan,
//! the platform and the upgrade folder; it is built on the plugin thread (describing a staged
//! binary may hash it). Resolution starts while the node stops.

use std::time::Instant;

use super::{Upgrade, UpgradeError, tree_error};
use crate::config::Config;
use crate::plugin::{self, Decision, PluginSet, Request, Staged};
use crate::tree::journal::Phase;
use crate::tree::{Current, Layout, Plan};

/// The resolvers' answer (decision, and the resolver that gave it), computed in the background.
pub(super) type Resolution = tokio::task::JoinHandle<Result<(Decision, String), String>>;

impl Upgrade<'_> {
    /// Asks the resolvers which binary the upgrade runs. Returns the artifacts to fetch
    /// (`Some(None)` when the staged binary is the one), or `None` if a stop request came first.
    pub(super) async fn phase_resolve(
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
        let Some(answer) = self.signals.until_stop(early).await else {
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
            Decision::UseStaged => {
                self.layout
                    .check_binary(&target)
                    .map_err(tree_error(&plan.name))?;
                tracing::info!(binary = %self.layout.binary_path(&target).display(), resolver = %by, "upgrade binary found");
                None
            }
            Decision::Refuse(reason) => {
                return Err(UpgradeError::Refused {
                    upgrade: plan.name.clone(),
                    by,
                    reason,
                });
            }
            Decision::Fetch(list) => Some(list),
        };
        self.done(Phase::Resolve, t.elapsed());
        Ok(Some(artifacts))
    }

    /// Starts asking the resolvers about `plan` in the background.
    /// Describing the staged binary may hash it (for policy resolvers), so the request is built
    /// on the plugin thread too, never on the runtime's.
    pub(super) fn start_resolution(&self, plan: &Plan) -> Resolution {
        let (set, cfg, plan) = (self.plugins.clone(), self.cfg.clone(), plan.clone());
        tokio::spawn(async move {
            crate::plugin::off_runtime(move || {
                let layout = Layout::open(&cfg).map_err(|e| e.to_string())?;
                let request = request(&set, &cfg, Some(&layout), &plan)?;
                set.resolve(&request)
                    .map_err(|e| format!("{e}; policy plugins fail closed"))
            })
            .await
            .and_then(|r| r)
        })
    }
}

/// The WIT form of a plan.
fn wit_plan(plan: &Plan) -> plugin::Plan {
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

/// The health checks' context for the node launched by `plan`'s upgrade.
pub fn health_context(plan: &Plan, elapsed_ms: u64, attempt: u32) -> plugin::HealthContext {
    plugin::HealthContext {
        plan: wit_plan(plan),
        elapsed_ms,
        attempt,
    }
}

/// Resolves `plan` and, if the resolvers want artifacts, fetches and installs them: what
/// `prepare-upgrade` and the supervisor's preparation ahead of a manual halt do. Returns what
/// was done, in words.
pub fn prepare(set: &PluginSet, cfg: &Config, plan: &Plan) -> Result<String, String> {
    let layout = Layout::open(cfg).map_err(|e| e.to_string())?;
    let dir = layout.dir_name(&plan.name).map_err(|e| e.to_string())?;
    let request = request(set, cfg, Some(&layout), plan)?;
    let (decision, by) = set.resolve(&request).map_err(|e| e.to_string())?;
    let binary = format!("upgrades/{dir}/bin/{}", cfg.name);
    match decision {
        Decision::UseStaged => {
            layout
                .check_binary(&Current::Upgrade(dir.clone()))
                .map_err(|e| format!("resolver {by} chose the staged binary: {e}"))?;
            Ok(format!("{binary} is staged"))
        }
        Decision::Refuse(reason) => Err(format!("resolver {by} refused: {reason}")),
        Decision::Fetch(list) => {
            crate::artifact::stage(set, cfg, &layout, &dir, &list, &set.cancel)
                .map_err(|e| e.to_string())?;
            Ok(format!("{binary} downloaded, verified and staged"))
        }
    }
}
