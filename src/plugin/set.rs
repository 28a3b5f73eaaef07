//! The configured plugins of every world, loaded: what the supervisor, `prepare-upgrade` and
//! `plugin` use, and the chains they run in (resolvers in order, health checks until one is not
//! healthy).
//!
//! Loading checks every plugin at once (file, pin, world, version, imports: all failures
//! reported together), then compiles them in parallel — now, or in the background for a
//! supervisor, whose node need not wait for code only an upgrade runs: a call waits for its
//! plugin's compilation if it has not ended.
//!
//! The resolver chain (`wit/plugin-0.2`, `decision`): each resolver is given the decision in
//! force; `use-staged`, `fetch` and `unresolved` replace it, `refuse` is a veto that ends the
//! chain, `not-before` defers the switch and leaves the decision in force as it was. An
//! `unresolved` still in force at the end refuses the upgrade with its reason. Every answer is
//! kept with the name of the resolver that gave it.

use std::sync::Arc;

use super::host::Unit;
use super::{
    Call, Cancel, Decision, Deferral, Health, HealthCheck, HealthContext, Host, Notifier,
    PluginError, Plugins, Request, Resolver, Source, World, WorldPre,
};

/// The plugins of every world, checked, and compiled or being compiled.
pub struct PluginSet {
    /// The host the set was loaded into, which runs its calls.
    pub host: Arc<Host>,
    pub resolvers: Vec<Resolver>,
    pub sources: Vec<Source>,
    pub health: Vec<HealthCheck>,
    /// Told every event, by the supervisor's notice queue (with a cancel of its own: a stop
    /// request gives them a grace).
    pub notifiers: Vec<Notifier>,
    /// Set by a stop request: every call of this set ends at once.
    pub cancel: Cancel,
}

/// When the plugins of a set are compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compile {
    /// Before `load` returns.
    Now,
    /// On a thread of their own; a call waits for its plugin.
    Background,
}

/// The resolver chain's answer.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// `use-staged` or `fetch`; `refuse` or `unresolved` when there is no binary to run.
    pub decision: Decision,
    /// The resolver that gave `decision`.
    pub by: String,
    /// The latest time a resolver deferred the switch to, and which one.
    pub not_before: Option<(Deferral, String)>,
    /// Every resolver's own answer, in order.
    pub answers: Vec<(String, Decision)>,
}

impl Resolution {
    /// The reason there is no binary to run, if there is none.
    pub fn refusal(&self) -> Option<&str> {
        match &self.decision {
            Decision::Refuse(reason) | Decision::Unresolved(reason) => Some(reason),
            _ => None,
        }
    }
}

type Job = Box<dyn FnOnce(&Host) + Send>;

impl PluginSet {
    /// Checks every configured plugin (all failures are returned together) and compiles them
    /// in `host`.
    pub fn load(
        host: Arc<Host>,
        plugins: &Plugins,
        cancel: Cancel,
        compile: Compile,
    ) -> Result<PluginSet, Vec<PluginError>> {
        let mut errors = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        let resolvers = check_all(&host, &plugins.resolvers, &mut errors, &mut jobs);
        let sources = check_all(&host, &plugins.sources, &mut errors, &mut jobs);
        let health = check_all(&host, &plugins.health, &mut errors, &mut jobs);
        let notifiers = check_all(&host, &plugins.notifiers, &mut errors, &mut jobs);
        if !errors.is_empty() {
            return Err(errors);
        }
        let set = PluginSet {
            host: host.clone(),
            resolvers,
            sources,
            health,
            notifiers,
            cancel,
        };
        match compile {
            Compile::Now => {
                run_jobs(&host, jobs);
                let errors = set.compile_errors();
                if !errors.is_empty() {
                    return Err(errors);
                }
            }
            Compile::Background => {
                let spawned = std::thread::Builder::new()
                    .name("wasmvisor-compile".into())
                    .spawn(move || run_jobs(&host, jobs));
                if let Err(e) = spawned {
                    return Err(vec![PluginError {
                        plugin: "(engine)".into(),
                        world: World::Resolver,
                        kind: super::ErrorKind::Load(format!(
                            "cannot start the compiling thread: {e}"
                        )),
                        output: None,
                    }]);
                }
            }
        }
        Ok(set)
    }

    /// Waits for every compilation and returns the failures.
    pub fn compile_errors(&self) -> Vec<PluginError> {
        fn errs<P>(list: &[super::Loaded<P>]) -> impl Iterator<Item = PluginError> + '_ {
            list.iter().filter_map(|p| p.cached().err())
        }
        errs(&self.resolvers)
            .chain(errs(&self.sources))
            .chain(errs(&self.health))
            .chain(errs(&self.notifiers))
            .collect()
    }

    /// (world, name, sha256, contract version, compiled code from the cache) of every plugin,
    /// in order; waits for the compilations.
    pub fn summary(&self) -> Vec<(World, &str, &str, &str, bool)> {
        fn rows<P>(
            list: &[super::Loaded<P>],
        ) -> impl Iterator<Item = (World, &str, &str, &str, bool)> {
            list.iter().map(|p| {
                (
                    p.spec.world,
                    p.spec.name.as_str(),
                    p.digest.as_str(),
                    p.version,
                    p.cached().unwrap_or(false),
                )
            })
        }
        rows(&self.resolvers)
            .chain(rows(&self.sources))
            .chain(rows(&self.health))
            .chain(rows(&self.notifiers))
            .collect()
    }

    /// Whether only the bundled Cosmovisor resolver runs (it never looks at digests).
    pub fn only_default_resolver(&self) -> bool {
        self.resolvers
            .iter()
            .all(|r| r.spec.origin == super::Origin::Bundled("cosmovisor"))
    }

    /// Runs the resolver chain (see the module's documentation). A plugin failure fails closed:
    /// the upgrade is refused.
    pub fn resolve(&self, request: &Request) -> Result<Resolution, PluginError> {
        let call = Call::new(&self.cancel);
        let mut in_force: Option<(Decision, String)> = None;
        let mut not_before: Option<(Deferral, String)> = None;
        let mut answers = Vec::new();
        for r in &self.resolvers {
            let name = r.spec.name.clone();
            let d = self
                .host
                .resolve(r, request, in_force.as_ref().map(|(d, _)| d), &call)?;
            tracing::info!(plugin = %name, decision = %describe(&d), "resolver answered");
            answers.push((name.clone(), d.clone()));
            match d {
                Decision::Refuse(_) => {
                    return Ok(Resolution {
                        decision: d,
                        by: name,
                        not_before,
                        answers,
                    });
                }
                Decision::NotBefore(deferral) => {
                    if not_before.as_ref().is_none_or(|(n, _)| deferral.at > n.at) {
                        not_before = Some((deferral, name));
                    }
                }
                // Passing on the decision in force keeps it the resolver's that chose it: a
                // policy that let the bundled resolver's binary through did not choose it.
                other if in_force.as_ref().is_some_and(|(d, _)| *d == other) => {}
                other => in_force = Some((other, name)),
            }
        }
        let (decision, by) = in_force.unwrap_or_else(|| match answers.last() {
            None => (
                Decision::Refuse("no resolver is configured".into()),
                "(none)".into(),
            ),
            Some((last, _)) => (
                Decision::Unresolved("no resolver named a binary (they only deferred)".into()),
                last.clone(),
            ),
        });
        Ok(Resolution {
            decision,
            by,
            not_before,
            answers,
        })
    }

    /// Asks every health check once; the first non-healthy answer wins, with the name of the
    /// check that gave it.
    pub fn check(&self, context: &HealthContext) -> Result<(Health, Option<&str>), PluginError> {
        let call = Call::new(&self.cancel);
        let mut texts = Vec::new();
        for h in &self.health {
            match self.host.check(h, context, &call)? {
                Health::Healthy(t) => texts.push(format!("{}: {t}", h.spec.name)),
                other => return Ok((other, Some(&h.spec.name))),
            }
        }
        Ok((Health::Healthy(texts.join("; ")), None))
    }
}

/// Checks each of `specs`, collecting failures and the compilations to run.
fn check_all<P: WorldPre>(
    host: &Host,
    specs: &[super::PluginSpec],
    errors: &mut Vec<PluginError>,
    jobs: &mut Vec<Job>,
) -> Vec<super::Loaded<P>> {
    let mut loaded = Vec::new();
    for spec in specs {
        match host.prepare::<P>(spec) {
            Ok((plugin, unit)) => {
                loaded.push(plugin);
                jobs.push(job(unit));
            }
            Err(e) => errors.push(e),
        }
    }
    loaded
}

fn job<P: WorldPre>(unit: Unit<P>) -> Job {
    Box::new(move |host: &Host| {
        let name = unit.name().to_string();
        let started = std::time::Instant::now();
        match host.compile_unit(unit) {
            Ok(true) => tracing::debug!(plugin = %name, "compiled code loaded from the cache"),
            Ok(false) => {
                tracing::info!(plugin = %name, took = %crate::duration::format(started.elapsed()), "plugin compiled")
            }
            Err(e) => {
                tracing::error!("{e}; the next upgrade will be refused until it is fixed");
                if let Some(hook) = &host.on_compile_failure {
                    hook(&e);
                }
            }
        }
    })
}

/// Runs the compilations on as many threads as there are cores (each compilation is
/// single-threaded): a JavaScript and a Python component take the time of the larger one.
fn run_jobs(host: &Host, jobs: Vec<Job>) {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len());
    // In the configured order: resolvers, then sources, then health checks.
    let queue = std::sync::Mutex::new(std::collections::VecDeque::from(jobs));
    let next = || {
        queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    };
    let work = || {
        while let Some(job) = next() {
            job(host);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..workers {
            if let Err(e) = std::thread::Builder::new()
                .name("wasmvisor-compile".into())
                .spawn_scoped(scope, work)
            {
                tracing::warn!("cannot start another compiling thread ({e}): compiling on fewer");
                break;
            }
        }
        // This thread works too: the queue empties even if no other thread could start.
        work();
    });
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
        Decision::Unresolved(reason) => format!("unresolved: {reason}"),
        Decision::NotBefore(d) => {
            format!("not before {}: {}", crate::logging::rfc3339(d.at), d.reason)
        }
    }
}

/// Why work sent to a plugin thread gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ThreadError {
    #[error("cannot start a plugin thread: {0}")]
    Spawn(std::io::Error),
    #[error("the plugin thread ended without an answer")]
    Ended,
}

/// Runs blocking plugin work on its own thread, outside the async runtime (wasmtime-wasi's
/// synchronous bindings must not run on a runtime thread), and awaits its result.
pub async fn off_runtime<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ThreadError> {
    start_off_runtime(f)?.await.map_err(|_| ThreadError::Ended)
}

/// Starts blocking work on its own thread now (not when a future is first polled), so that it
/// runs beside what the caller does next; its result arrives on the receiver.
pub fn start_off_runtime<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<R>, ThreadError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    spawn_thread(Box::new(move || {
        let _ = tx.send(f());
    }))?;
    Ok(rx)
}

/// The one place these threads are spawned: boxed, so that the binary holds one copy of the
/// standard library's spawning code rather than one per kind of work.
fn spawn_thread(job: Box<dyn FnOnce() + Send>) -> Result<(), ThreadError> {
    std::thread::Builder::new()
        .name("wasmvisor-plugin".into())
        .spawn(job)
        .map(drop)
        .map_err(ThreadError::Spawn)
}
