//! The configured plugins, loaded: what the supervisor, `prepare-upgrade` and `plugin` use.

use cap_std::fs::Dir;

use super::{
    Artifact, Call, Cancel, Decision, Health, HealthContext, Host, Loaded, PluginError, Plugins,
    Request, Staged, World, artifact,
};
use crate::config::Config;
use crate::layout::{Current, Layout};
use crate::plan::Plan;

/// The plugins of every world, compiled and ready to instantiate.
pub struct PluginSet {
    pub host: &'static Host,
    pub resolvers: Vec<Loaded>,
    pub sources: Vec<Loaded>,
    pub health: Vec<Loaded>,
    pub limits: artifact::Limits,
    /// Set by a stop request: every call and download of this set ends at once.
    pub cancel: Cancel,
}

/// Why a binary was not staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A stop request ended it; what was downloaded so far stays for the next start.
    #[error("stopped: wasmvisor is shutting down")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

impl PluginSet {
    /// Loads every configured plugin. All failures are returned together.
    pub fn load(plugins: &Plugins, cache: Option<Dir>) -> Result<PluginSet, Vec<PluginError>> {
        let host = Host::shared(cache).map_err(|e| {
            vec![PluginError {
                plugin: "(engine)".into(),
                world: World::Resolver,
                kind: super::ErrorKind::Load(e),
            }]
        })?;
        let mut errors = Vec::new();
        let mut load = |specs: &[super::PluginSpec]| -> Vec<Loaded> {
            specs
                .iter()
                .filter_map(|s| host.load(s).map_err(|e| errors.push(e)).ok())
                .collect()
        };
        let set = PluginSet {
            host,
            resolvers: load(&plugins.resolvers),
            sources: load(&plugins.sources),
            health: load(&plugins.health),
            limits: artifact::Limits::default(),
            cancel: Cancel::new(),
        };
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// Whether only the bundled Cosmovisor resolver runs (it never looks at digests).
    fn only_default_resolver(&self) -> bool {
        self.resolvers
            .iter()
            .all(|r| r.spec.origin == super::Origin::Bundled("cosmovisor"))
    }

    /// The request for `plan`, describing its upgrade folder (always named, so a refusal can
    /// name the folder wasmvisor really looks in).
    pub fn request(&self, cfg: &Config, layout: &Layout, plan: &Plan) -> Result<Request, String> {
        let dir = layout.dir_name(&plan.name).map_err(|e| e.to_string())?;
        let target = Current::Upgrade(dir.clone());
        let has_binary = layout.check_binary(&target).is_ok();
        let sha256 = if has_binary && !self.only_default_resolver() {
            let path = layout.binary_path(&target);
            Some(
                crate::fsutil::sha256_path(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            )
        } else {
            None
        };
        Ok(Request {
            plan: super::Plan::from(plan),
            platform: super::platform(),
            daemon_name: cfg.name.clone(),
            staged: Some(Staged {
                dir,
                has_binary,
                sha256,
            }),
            downloads_allowed: cfg.allow_download_binaries,
            checksum_required: cfg.download_must_have_checksum,
        })
    }

    /// Runs the resolvers in order. A plugin failure fails closed (the upgrade is refused).
    pub fn resolve(&self, request: &Request) -> Result<(Decision, String), PluginError> {
        let call = Call::new(&self.cancel);
        let mut decision: Option<Decision> = None;
        let mut by = String::new();
        for r in &self.resolvers {
            let d = self.host.resolve(r, request, decision.as_ref(), &call)?;
            tracing::info!(plugin = %r.spec.name, decision = %describe(&d), "resolver answered");
            by = r.spec.name.clone();
            let refused = matches!(d, Decision::Refuse(_));
            decision = Some(d);
            if refused {
                break;
            }
        }
        Ok((
            decision.unwrap_or_else(|| Decision::Refuse("no resolver is configured".into())),
            by,
        ))
    }

    /// Fetches the first artifact that a source delivers and verifies, and installs it into
    /// `upgrades/<dir>/bin/<daemon>`. Downloads wait in `cosmovisor/.wasmvisor-downloads/<dir>`,
    /// a folder of wasmvisor's own (a symlink there is refused, never followed).
    pub fn fetch_and_install(
        &self,
        cfg: &Config,
        layout: &Layout,
        dir: &str,
        artifacts: &[Artifact],
    ) -> Result<(), StageError> {
        let failed = |m: String| StageError::Failed(m);
        let downloads = crate::fsutil::own_dir(&layout.root, DOWNLOADS_DIR)
            .map_err(|e| failed(format!("{DOWNLOADS_DIR}: {e}")))?;
        let work = crate::fsutil::own_dir(&downloads, dir)
            .map_err(|e| failed(format!("{DOWNLOADS_DIR}/{dir}: {e}")))?;
        let mut reasons = Vec::new();
        for a in artifacts {
            if cfg.download_must_have_checksum && a.checksum.is_none() {
                reasons.push(format!(
                    "{} has no checksum and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on",
                    a.url
                ));
                continue;
            }
            let fetched = match artifact::fetch(
                self.host,
                &self.sources,
                a,
                &work,
                &self.limits,
                &self.cancel,
            ) {
                Ok(f) => f,
                Err(artifact::FetchFailure::Cancelled) => return Err(StageError::Cancelled),
                Err(e @ artifact::FetchFailure::Mismatch { .. }) => {
                    return Err(failed(e.to_string()));
                }
                Err(e) => {
                    reasons.push(e.to_string());
                    continue;
                }
            };
            tracing::info!(url = %a.url, bytes = fetched.size, digest = %fetched.sha256_or_512, source = %fetched.source, "artifact fetched and verified");
            let installed = artifact::install(
                &layout.root,
                &work,
                &fetched.name,
                a.format,
                dir,
                &cfg.name,
                &self.limits,
            );
            let _ = crate::fsutil::remove_if_present(&work, &fetched.name);
            match installed {
                Ok(()) => {
                    drop(work);
                    let _ = downloads.remove_dir_all(dir);
                    return Ok(());
                }
                Err(e) => reasons.push(format!("{}: {e}", a.url)),
            }
        }
        Err(failed(reasons.join("; ")))
    }

    /// Asks every health check once; the first non-healthy answer wins.
    pub fn check(&self, context: &HealthContext) -> Result<Health, PluginError> {
        let call = Call::new(&self.cancel);
        let mut texts = Vec::new();
        for h in &self.health {
            match self.host.check(h, context, &call)? {
                Health::Healthy(t) => texts.push(format!("{}: {t}", h.spec.name)),
                other => return Ok(other),
            }
        }
        Ok(Health::Healthy(texts.join("; ")))
    }
}

/// Resolves `plan` and, if the resolvers want artifacts, fetches and installs them: what
/// `prepare-upgrade` and the supervisor's preparation ahead of a manual halt do. Returns what
/// was done, in words.
pub fn prepare(set: &PluginSet, cfg: &Config, plan: &Plan) -> Result<String, String> {
    let layout = Layout::open(cfg).map_err(|e| e.to_string())?;
    let dir = layout.dir_name(&plan.name).map_err(|e| e.to_string())?;
    let request = set.request(cfg, &layout, plan)?;
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
            set.fetch_and_install(cfg, &layout, &dir, &list)
                .map_err(|e| e.to_string())?;
            Ok(format!("{binary} downloaded, verified and staged"))
        }
    }
}

/// Where partial downloads wait, per upgrade folder, under the cosmovisor root.
pub const DOWNLOADS_DIR: &str = ".wasmvisor-downloads";

/// A decision in a few words, for logs.
pub fn describe(d: &Decision) -> String {
    match d {
        Decision::UseStaged => "use the staged binary".into(),
        Decision::Fetch(list) => format!(
            "fetch {}",
            list.iter()
                .map(|a| a.url.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        Decision::Refuse(reason) => format!("refuse: {reason}"),
    }
}

/// Runs blocking plugin work on its own thread, outside the async runtime (wasmtime-wasi's
/// synchronous bindings must not run on a runtime thread), and awaits its result.
pub async fn off_runtime<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wasmvisor-plugin".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| format!("cannot start a plugin thread: {e}"))?;
    rx.await
        .map_err(|_| "the plugin thread ended without an answer".to_string())
}
