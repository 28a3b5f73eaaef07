//! `plugins.toml`: which plugins run for each world, with their settings, grants and limits.
//!
//! ```toml
//! [[resolver]]
//! name = "registry"                      # how logs and `plugin call` name it
//! path = "/opt/wasmvisor/chain_registry.wasm"   # or "bundled:cosmovisor"
//! sha256 = "…"                           # optional pin of the .wasm file
//! config = { chain-json = "/registry/chain.json" }
//! allow-hosts = ["github.com", "*.githubusercontent.com", "127.0.0.1:26657"]
//! dirs = [["/srv/registry", "/registry"]]   # host dir, path inside the plugin (read-only)
//! env = ["CHAIN_ID"]                     # variables of wasmvisor's environment it may read
//! memory = "64MiB"
//! timeout = "5s"                         # the whole call; for a source, every retry too
//! idle-timeout = "30s"                   # an HTTP response silent this long fails (and retries)
//! ```
//!
//! With no `[[resolver]]` the bundled `cosmovisor` resolver runs; with no `[[source]]` the
//! bundled `http` source. `[[health]]` entries also take `interval`, `deadline` and
//! `on-unhealthy` (`warn`, `exit` or `rollback`; unset, it follows `WASMVISOR_ON_FAILED_UPGRADE`).
//! `[[notifier]]` entries are told every event (their `timeout` defaults to 5 s).

mod allow;
mod raw;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use allow::{AllowHost, HostPattern};
use raw::{RawFile, RawPlugin};

/// The four plugin worlds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Resolver,
    Source,
    Health,
    Notifier,
}

impl World {
    pub const ALL: [World; 4] = [
        World::Resolver,
        World::Source,
        World::Health,
        World::Notifier,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            World::Resolver => "resolver",
            World::Source => "source",
            World::Health => "health",
            World::Notifier => "notifier",
        }
    }

    /// The interface a component of this world exports, without its version.
    pub fn export(self) -> &'static str {
        match self {
            World::Resolver => "wasmvisor:plugin/resolve",
            World::Source => "wasmvisor:plugin/fetch",
            World::Health => "wasmvisor:plugin/check",
            World::Notifier => "wasmvisor:plugin/notify",
        }
    }

    pub fn parse(s: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.as_str() == s)
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do when the health check says unhealthy or its deadline passes. Unset, it follows
/// `WASMVISOR_ON_FAILED_UPGRADE`: `rollback` when that says so, else `warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnhealthy {
    /// Log it, record it in the journal and `status`, keep supervising.
    Warn,
    /// Also stop the node and exit with status 3, so the service manager and operator notice.
    Exit,
    /// The upgrade failed: roll it back (see `WASMVISOR_ON_FAILED_UPGRADE=rollback`).
    Rollback,
}

impl OnUnhealthy {
    pub fn name(self) -> &'static str {
        match self {
            OnUnhealthy::Warn => "warn",
            OnUnhealthy::Exit => "exit",
            OnUnhealthy::Rollback => "rollback",
        }
    }
}

/// One configured plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    pub world: World,
    pub name: String,
    pub origin: Origin,
    pub sha256: Option<String>,
    pub settings: Vec<(String, String)>,
    /// The hosts its HTTP requests may reach (empty: none).
    pub allow_hosts: Vec<AllowHost>,
    pub dirs: Vec<(PathBuf, String)>,
    /// The environment variables exposed to it (their values in wasmvisor's environment at
    /// each call; an unset one stays unset).
    pub env: Vec<String>,
    pub memory: u64,
    pub timeout: Duration,
    /// The longest an HTTP response may stay silent before the request fails (a stalled
    /// download is noticed long before `timeout`).
    pub read_idle: Duration,
    pub interval: Duration,
    pub deadline: Duration,
    /// As written in plugins.toml (`None`: follow `WASMVISOR_ON_FAILED_UPGRADE`).
    pub on_unhealthy: Option<OnUnhealthy>,
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into wasmvisor (`bundled:<name>`).
    Bundled(&'static str),
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Bundled(name) => write!(f, "bundled:{name}"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// How long a download may stall before it is retried (resuming where it stopped).
pub const DEFAULT_READ_IDLE: Duration = Duration::from_secs(30);

impl PluginSpec {
    /// A bundled plugin with its defaults: any host (Cosmovisor downloads from anywhere).
    pub fn bundled(world: World, name: &'static str) -> PluginSpec {
        PluginSpec {
            world,
            name: name.to_string(),
            origin: Origin::Bundled(name),
            sha256: None,
            settings: Vec::new(),
            allow_hosts: vec![AllowHost::ANY],
            dirs: Vec::new(),
            env: Vec::new(),
            memory: DEFAULT_MEMORY,
            timeout: default_timeout(world),
            read_idle: DEFAULT_READ_IDLE,
            interval: Duration::from_secs(2),
            deadline: Duration::from_secs(300),
            on_unhealthy: None,
        }
    }
}

impl PluginSpec {
    /// What an unhealthy verdict of this plugin does when its entry does not say: the bundled
    /// `signing` check warns, whatever `WASMVISOR_ON_FAILED_UPGRADE` says, because rolling back
    /// the binary does not reconnect a remote signer or restore a key file.
    pub fn default_on_unhealthy(&self) -> Option<OnUnhealthy> {
        (self.origin == Origin::Bundled("signing")).then_some(OnUnhealthy::Warn)
    }
}

pub(super) fn default_timeout(world: World) -> Duration {
    match world {
        // A source's call lasts the whole download.
        World::Source => Duration::from_secs(1800),
        World::Resolver | World::Health => Duration::from_secs(10),
        // A notice that takes longer is late news: the next one waits behind it.
        World::Notifier => Duration::from_secs(5),
    }
}

/// The plugins of each world, in order.
#[derive(Debug, Clone)]
pub struct Plugins {
    pub file: Option<PathBuf>,
    pub resolvers: Vec<PluginSpec>,
    pub sources: Vec<PluginSpec>,
    pub health: Vec<PluginSpec>,
    pub notifiers: Vec<PluginSpec>,
}

impl Plugins {
    /// The bundled defaults alone: Cosmovisor's behaviour.
    pub fn defaults() -> Plugins {
        Plugins {
            file: None,
            resolvers: vec![PluginSpec::bundled(World::Resolver, "cosmovisor")],
            sources: vec![PluginSpec::bundled(World::Source, "http")],
            health: Vec::new(),
            notifiers: Vec::new(),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &PluginSpec> {
        self.resolvers
            .iter()
            .chain(&self.sources)
            .chain(&self.health)
            .chain(&self.notifiers)
    }

    pub fn find(&self, world: World, name: &str) -> Option<&PluginSpec> {
        self.all().find(|p| p.world == world && p.name == name)
    }

    /// Reads `path`, or the defaults when `path` is `None`. Every problem is reported at once.
    pub fn load(path: Option<&Path>) -> Result<Plugins, PluginsConfigError> {
        let Some(path) = path else {
            return Ok(Plugins::defaults());
        };
        let text = crate::fs::read_regular_path(path, 1 << 20)
            .map_err(|e| e.to_string())
            .and_then(|b| String::from_utf8(b).map_err(|_| "it is not UTF-8 text".into()))
            .map_err(|e| PluginsConfigError {
                file: path.to_path_buf(),
                problems: vec![format!("cannot read it: {e}")],
            })?;
        Plugins::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Plugins, PluginsConfigError> {
        let fail = |problems| PluginsConfigError {
            file: path.to_path_buf(),
            problems,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| fail(vec![e.to_string()]))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();
        let mut convert = |world: World, list: Vec<RawPlugin>| -> Vec<PluginSpec> {
            list.into_iter()
                .enumerate()
                .filter_map(|(i, raw)| match raw.into_spec(world, base) {
                    Ok(spec) => Some(spec),
                    Err(errs) => {
                        problems.extend(
                            errs.into_iter()
                                .map(|e| format!("[[{world}]] entry {}: {e}", i + 1)),
                        );
                        None
                    }
                })
                .collect()
        };
        let resolvers = convert(World::Resolver, raw.resolver);
        let sources = convert(World::Source, raw.source);
        let health = convert(World::Health, raw.health);
        let notifiers = convert(World::Notifier, raw.notifier);
        let mut plugins = Plugins {
            file: Some(path.to_path_buf()),
            resolvers,
            sources,
            health,
            notifiers,
        };
        for world in World::ALL {
            let mut seen = std::collections::BTreeSet::new();
            for p in plugins.all().filter(|p| p.world == world) {
                if !seen.insert(&p.name) {
                    problems.push(format!("two [[{world}]] entries are named {:?}", p.name));
                }
            }
        }
        if !problems.is_empty() {
            return Err(fail(problems));
        }
        let defaults = Plugins::defaults();
        if plugins.resolvers.is_empty() {
            plugins.resolvers = defaults.resolvers;
        }
        if plugins.sources.is_empty() {
            plugins.sources = defaults.sources;
        }
        Ok(plugins)
    }
}

#[derive(Debug, thiserror::Error)]
pub struct PluginsConfigError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for PluginsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin configuration {}:", self.file.display())?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
