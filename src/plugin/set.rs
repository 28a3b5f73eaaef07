//! The configured plugins of every world, loaded: what the supervisor, `prepare-upgrade` and
//! `plugin` use, and the chains they run in (resolvers in order, health checks until one is not
//! healthy).

use cap_std::fs::Dir;

use super::{
    Call, Cancel, Decision, Health, HealthCheck, HealthContext, Host, PluginError, Plugins,
    Request, Resolver, Source, World,
};

/// The plugins of every world, compiled and ready to instantiate.
pub struct PluginSet {
    pub host: &'static Host,
    pub resolvers: Vec<Resolver>,
    pub sources: Vec<Source>,
    pub health: Vec<HealthCheck>,
    /// Set by a stop request: every call of this set ends at once.
    pub cancel: Cancel,
}

impl PluginSet {
    /// Loads every configured plugin. All failures are returned together.
    pub fn load(
        plugins: &Plugins,
        cache: Option<Dir>,
        cancel: Cancel,
    ) -> Result<PluginSet, Vec<PluginError>> {
        let host = Host::shared(cache).map_err(|e| {
            vec![PluginError {
                plugin: "(engine)".into(),
                world: World::Resolver,
                kind: super::ErrorKind::Load(e),
            }]
        })?;
        let mut errors = Vec::new();
        let resolvers = load_all(host, &plugins.resolvers, &mut errors);
        let sources = load_all(host, &plugins.sources, &mut errors);
        let health = load_all(host, &plugins.health, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(PluginSet {
            host,
            resolvers,
            sources,
            health,
            cancel,
        })
    }

    /// (world, name, sha256, compiled code from the cache) of every plugin, in order.
    pub fn summary(&self) -> Vec<(World, &str, &str, bool)> {
        fn rows<P>(list: &[super::Loaded<P>]) -> impl Iterator<Item = (World, &str, &str, bool)> {
            list.iter().map(|p| {
                (
                    p.spec.world,
                    p.spec.name.as_str(),
                    p.digest.as_str(),
                    p.cached,
                )
            })
        }
        rows(&self.resolvers)
            .chain(rows(&self.sources))
            .chain(rows(&self.health))
            .collect()
    }

    /// Whether only the bundled Cosmovisor resolver runs (it never looks at digests).
    pub fn only_default_resolver(&self) -> bool {
        self.resolvers
            .iter()
            .all(|r| r.spec.origin == super::Origin::Bundled("cosmovisor"))
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

fn load_all<P: super::WorldPre>(
    host: &Host,
    specs: &[super::PluginSpec],
    errors: &mut Vec<PluginError>,
) -> Vec<super::Loaded<P>> {
    specs
        .iter()
        .filter_map(|s| host.load::<P>(s).map_err(|e| errors.push(e)).ok())
        .collect()
}

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
