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
//! memory = "64MiB"
//! timeout = "5s"                         # the whole call; for a source, every retry too
//! idle-timeout = "30s"                   # an HTTP response silent this long fails (and retries)
//! ```
//!
//! With no `[[resolver]]` the bundled `cosmovisor` resolver runs; with no `[[source]]` the
//! bundled `http` source. `[[health]]` entries also take `interval`, `deadline` and
//! `on-unhealthy` (`warn` or `exit`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::duration;

/// The three plugin worlds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Resolver,
    Source,
    Health,
}

impl World {
    pub const ALL: [World; 3] = [World::Resolver, World::Source, World::Health];

    pub fn as_str(self) -> &'static str {
        match self {
            World::Resolver => "resolver",
            World::Source => "source",
            World::Health => "health",
        }
    }

    /// The interface a component of this world exports, without its version.
    pub fn export(self) -> &'static str {
        match self {
            World::Resolver => "wasmvisor:plugin/resolve",
            World::Source => "wasmvisor:plugin/fetch",
            World::Health => "wasmvisor:plugin/check",
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

/// What to do when the health check says unhealthy or its deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnhealthy {
    /// Log it, record it in the journal and `status`, keep supervising.
    Warn,
    /// Also stop the node and exit with status 3, so the service manager and operator notice.
    Exit,
}

/// One configured plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    pub world: World,
    pub name: String,
    pub origin: Origin,
    pub sha256: Option<String>,
    pub settings: Vec<(String, String)>,
    pub allow_hosts: Vec<String>,
    pub dirs: Vec<(PathBuf, String)>,
    pub memory: u64,
    pub timeout: Duration,
    /// The longest an HTTP response may stay silent before the request fails (a stalled
    /// download is noticed long before `timeout`).
    pub read_idle: Duration,
    pub interval: Duration,
    pub deadline: Duration,
    pub on_unhealthy: OnUnhealthy,
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
            allow_hosts: vec!["*".into()],
            dirs: Vec::new(),
            memory: DEFAULT_MEMORY,
            timeout: default_timeout(world),
            read_idle: DEFAULT_READ_IDLE,
            interval: Duration::from_secs(2),
            deadline: Duration::from_secs(300),
            on_unhealthy: OnUnhealthy::Warn,
        }
    }
}

fn default_timeout(world: World) -> Duration {
    match world {
        // A source's call lasts the whole download.
        World::Source => Duration::from_secs(1800),
        World::Resolver | World::Health => Duration::from_secs(10),
    }
}

/// The plugins of each world, in order.
#[derive(Debug, Clone)]
pub struct Plugins {
    pub file: Option<PathBuf>,
    pub resolvers: Vec<PluginSpec>,
    pub sources: Vec<PluginSpec>,
    pub health: Vec<PluginSpec>,
}

impl Plugins {
    /// The bundled defaults alone: Cosmovisor's behaviour.
    pub fn defaults() -> Plugins {
        Plugins {
            file: None,
            resolvers: vec![PluginSpec::bundled(World::Resolver, "cosmovisor")],
            sources: vec![PluginSpec::bundled(World::Source, "http")],
            health: Vec::new(),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &PluginSpec> {
        self.resolvers
            .iter()
            .chain(&self.sources)
            .chain(&self.health)
    }

    pub fn find(&self, world: World, name: &str) -> Option<&PluginSpec> {
        self.all().find(|p| p.world == world && p.name == name)
    }

    /// Reads `path`, or the defaults when `path` is `None`. Every problem is reported at once.
    pub fn load(path: Option<&Path>) -> Result<Plugins, PluginsConfigError> {
        let Some(path) = path else {
            return Ok(Plugins::defaults());
        };
        let text = crate::fsutil::read_regular_path(path, 1 << 20)
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
        let mut plugins = Plugins {
            file: Some(path.to_path_buf()),
            resolvers,
            sources,
            health,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    resolver: Vec<RawPlugin>,
    #[serde(default)]
    source: Vec<RawPlugin>,
    #[serde(default)]
    health: Vec<RawPlugin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPlugin {
    name: Option<String>,
    path: String,
    sha256: Option<String>,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    allow_hosts: Vec<String>,
    #[serde(default)]
    dirs: Vec<(PathBuf, String)>,
    memory: Option<String>,
    timeout: Option<String>,
    idle_timeout: Option<String>,
    interval: Option<String>,
    deadline: Option<String>,
    on_unhealthy: Option<OnUnhealthy>,
}

impl RawPlugin {
    fn into_spec(self, world: World, base: &Path) -> Result<PluginSpec, Vec<String>> {
        let mut errs = Vec::new();
        let origin = match self.path.strip_prefix("bundled:") {
            Some(name) => match crate::plugin::bundled(name) {
                Some((name, _)) => Origin::Bundled(name),
                None => {
                    errs.push(format!(
                        "path {:?}: no bundled plugin of that name (bundled: cosmovisor, http)",
                        self.path
                    ));
                    Origin::Bundled("?")
                }
            },
            None => Origin::File(base.join(&self.path)),
        };
        let name = self.name.unwrap_or_else(|| match &origin {
            Origin::Bundled(n) => n.to_string(),
            Origin::File(p) => p
                .file_stem()
                .map_or("plugin".into(), |s| s.to_string_lossy().into_owned()),
        });
        let sha256 = self.sha256.map(|s| s.to_ascii_lowercase());
        if let Some(s) = &sha256
            && (s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            errs.push(format!("sha256 {s:?} is not 64 hex digits"));
        }
        let mut settings = Vec::new();
        for (k, v) in self.config {
            match v {
                toml::Value::String(s) => settings.push((k, s)),
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                    settings.push((k, v.to_string()))
                }
                toml::Value::Array(items) => {
                    for item in items {
                        match item {
                            toml::Value::String(s) => settings.push((k.clone(), s)),
                            other => settings.push((k.clone(), other.to_string())),
                        }
                    }
                }
                _ => errs.push(format!(
                    "config key {k:?}: use a string, number, boolean or list"
                )),
            }
        }
        for host in &self.allow_hosts {
            if host.is_empty() || host.contains('/') {
                errs.push(format!(
                    "allow-hosts entry {host:?}: use host, host:port, *.domain or *"
                ));
            }
        }
        let mut dirs = Vec::new();
        for (host_dir, guest) in self.dirs {
            if !host_dir.is_absolute() || !host_dir.is_dir() {
                errs.push(format!(
                    "dirs entry {}: must be an existing absolute directory",
                    host_dir.display()
                ));
            } else if !guest.starts_with('/') {
                errs.push(format!(
                    "dirs entry {guest:?}: the path inside the plugin must start with /"
                ));
            } else {
                dirs.push((host_dir, guest));
            }
        }
        let mut dur = |key: &str, v: Option<String>, default: Duration| match v {
            None => default,
            Some(s) => match duration::parse(&s) {
                Ok(d) if !d.is_zero() => d,
                _ => {
                    errs.push(format!(
                        "{key} {s:?} is not a positive duration like 5s or 2m"
                    ));
                    default
                }
            },
        };
        let timeout = dur("timeout", self.timeout, default_timeout(world));
        let read_idle = dur("idle-timeout", self.idle_timeout, DEFAULT_READ_IDLE);
        let interval = dur("interval", self.interval, Duration::from_secs(2));
        let deadline = dur("deadline", self.deadline, Duration::from_secs(300));
        let memory = match self.memory.as_deref().map(parse_size) {
            None => DEFAULT_MEMORY,
            Some(Some(m)) if m >= 1 << 20 => m,
            Some(_) => {
                errs.push(format!(
                    "memory {:?} is not a size of at least 1MiB like 64MiB",
                    self.memory.unwrap_or_default()
                ));
                DEFAULT_MEMORY
            }
        };
        if world != World::Health && self.on_unhealthy.is_some() {
            errs.push("on-unhealthy only applies to [[health]] entries".into());
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let allow_hosts = if self.allow_hosts.is_empty() && matches!(origin, Origin::Bundled(_)) {
            vec!["*".into()]
        } else {
            self.allow_hosts
        };
        Ok(PluginSpec {
            world,
            name,
            origin,
            sha256,
            settings,
            allow_hosts,
            dirs,
            memory,
            timeout,
            read_idle,
            interval,
            deadline,
            on_unhealthy: self.on_unhealthy.unwrap_or(OnUnhealthy::Warn),
        })
    }
}

/// `64MiB`, `512KiB`, `1GiB`, or a number of bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_the_bundled_defaults() {
        let p = Plugins::parse("", Path::new("/x/plugins.toml")).unwrap();
        assert_eq!(p.resolvers[0].origin, Origin::Bundled("cosmovisor"));
        assert_eq!(p.sources[0].origin, Origin::Bundled("http"));
        assert!(p.health.is_empty());
    }

    #[test]
    fn entries_are_read_with_relative_paths_and_settings() {
        let p = Plugins::parse(
            r#"
            [[resolver]]
            path = "reg.wasm"
            config = { chain-json = "/r/chain.json", sha256 = ["a", "b"], n = 3 }
            allow-hosts = ["127.0.0.1:9"]
            memory = "32MiB"
            timeout = "2s"
            [[health]]
            name = "h"
            path = "bundled:http"
            on-unhealthy = "exit"
            "#,
            Path::new("/etc/wv/plugins.toml"),
        )
        .unwrap();
        let r = &p.resolvers[0];
        assert_eq!(r.name, "reg");
        assert_eq!(r.origin, Origin::File("/etc/wv/reg.wasm".into()));
        assert_eq!(r.memory, 32 << 20);
        assert_eq!(r.timeout, Duration::from_secs(2));
        assert!(r.settings.contains(&("sha256".into(), "b".into())));
        assert!(r.settings.contains(&("n".into(), "3".into())));
        assert_eq!(p.health[0].on_unhealthy, OnUnhealthy::Exit);
        assert_eq!(p.sources[0].origin, Origin::Bundled("http"));
    }

    #[test]
    fn every_problem_is_reported() {
        let err = Plugins::parse(
            r#"
            [[resolver]]
            path = "bundled:nope"
            sha256 = "xyz"
            memory = "lots"
            timeout = "soon"
            on-unhealthy = "exit"
            "#,
            Path::new("/p.toml"),
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "bundled:nope",
            "sha256",
            "memory",
            "timeout",
            "on-unhealthy",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        let err = Plugins::parse("[[resolvr]]\npath='x'", Path::new("/p.toml")).unwrap_err();
        assert!(err.to_string().contains("resolvr"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1TB"), None);
    }
}
