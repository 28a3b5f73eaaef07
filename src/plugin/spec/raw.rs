//! The entries of `plugins.toml` as written, and their checking into `PluginSpec`s: every
//! problem of every entry is collected.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::allow::{ACCEPTED, AllowHost};
use super::{
    DEFAULT_MEMORY, DEFAULT_READ_IDLE, OnUnhealthy, Origin, PluginSpec, World, default_timeout,
};
use crate::duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub resolver: Vec<RawPlugin>,
    #[serde(default)]
    pub source: Vec<RawPlugin>,
    #[serde(default)]
    pub health: Vec<RawPlugin>,
    #[serde(default)]
    pub notifier: Vec<RawPlugin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPlugin {
    name: Option<String>,
    path: String,
    sha256: Option<String>,
    #[serde(default)]
    config: toml::Table,
    /// Absent and present-but-empty differ: a bundled plugin without the key reaches any host,
    /// with `[]` none.
    allow_hosts: Option<Vec<String>>,
    #[serde(default)]
    dirs: Vec<(PathBuf, String)>,
    #[serde(default)]
    env: Vec<String>,
    memory: Option<String>,
    timeout: Option<String>,
    idle_timeout: Option<String>,
    interval: Option<String>,
    deadline: Option<String>,
    on_unhealthy: Option<OnUnhealthy>,
}

impl RawPlugin {
    /// The entry checked, or every problem it has, in the order of its keys as documented.
    pub(super) fn into_spec(self, world: World, base: &Path) -> Result<PluginSpec, Vec<String>> {
        let mut errs = Vec::new();
        let origin = origin(&self.path, base, &mut errs);
        let name = self.name.unwrap_or_else(|| default_name(&origin));
        let sha256 = self.sha256.map(|s| s.to_ascii_lowercase());
        if let Some(s) = &sha256
            && (s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            errs.push(format!("sha256 {s:?} is not 64 hex digits"));
        }
        let settings = settings(self.config, &mut errs);
        let allow_hosts = allow_hosts(self.allow_hosts.as_deref(), &origin, &name, &mut errs);
        let dirs = dirs(self.dirs, &mut errs);
        check_env(&self.env, &mut errs);
        let mut dur = |key, v, default| duration(key, v, default, &mut errs);
        let timeout = dur("timeout", self.timeout, default_timeout(world));
        let read_idle = dur("idle-timeout", self.idle_timeout, DEFAULT_READ_IDLE);
        let interval = dur("interval", self.interval, Duration::from_secs(2));
        let deadline = dur("deadline", self.deadline, Duration::from_secs(300));
        let memory = memory(self.memory, &mut errs);
        if world != World::Health && self.on_unhealthy.is_some() {
            errs.push("on-unhealthy only applies to [[health]] entries".into());
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(PluginSpec {
            world,
            name,
            origin,
            sha256,
            settings,
            allow_hosts,
            dirs,
            env: self.env,
            memory,
            timeout,
            read_idle,
            interval,
            deadline,
            on_unhealthy: self.on_unhealthy,
        })
    }
}

/// `path`: a bundled plugin's name (only the name is checked here: the component is inflated
/// when it is loaded), or a file relative to the folder of plugins.toml.
fn origin(path: &str, base: &Path, errs: &mut Vec<String>) -> Origin {
    let Some(name) = path.strip_prefix("bundled:") else {
        return Origin::File(base.join(path));
    };
    match crate::plugin::bundled_name(name) {
        Some(name) => Origin::Bundled(name),
        None => {
            errs.push(format!(
                "path {path:?}: no bundled plugin of that name (bundled: cosmovisor, http)"
            ));
            Origin::Bundled("?")
        }
    }
}

/// The name of an entry without `name`: the bundled plugin's, or the file's stem.
fn default_name(origin: &Origin) -> String {
    match origin {
        Origin::Bundled(n) => n.to_string(),
        Origin::File(p) => p
            .file_stem()
            .map_or("plugin".into(), |s| s.to_string_lossy().into_owned()),
    }
}

/// `config`, as the (key, value) pairs a plugin is given: a list gives one pair per item.
fn settings(config: toml::Table, errs: &mut Vec<String>) -> Vec<(String, String)> {
    let mut settings = Vec::new();
    for (k, v) in config {
        match v {
            toml::Value::String(s) => settings.push((k, s)),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                settings.push((k, crate::output::toml_value(&v)))
            }
            toml::Value::Array(items) => {
                for item in items {
                    match item {
                        toml::Value::String(s) => settings.push((k.clone(), s)),
                        other => settings.push((k.clone(), crate::output::toml_value(&other))),
                    }
                }
            }
            _ => errs.push(format!(
                "config key {k:?}: use a string, number, boolean or list"
            )),
        }
    }
    settings
}

/// `allow-hosts`; absent, a bundled plugin reaches any host and a file none.
fn allow_hosts(
    entries: Option<&[String]>,
    origin: &Origin,
    name: &str,
    errs: &mut Vec<String>,
) -> Vec<AllowHost> {
    let Some(entries) = entries else {
        return match origin {
            Origin::Bundled(_) => vec![AllowHost::ANY],
            Origin::File(_) => Vec::new(),
        };
    };
    entries
        .iter()
        .filter_map(|entry| {
            AllowHost::parse(entry)
                .map_err(|why| {
                    errs.push(format!(
                        "plugin {name:?}: allow-hosts entry {entry:?}: {why}; write {ACCEPTED}"
                    ))
                })
                .ok()
        })
        .collect()
}

/// `dirs`: existing absolute host folders, each shown at an absolute path inside the plugin.
fn dirs(entries: Vec<(PathBuf, String)>, errs: &mut Vec<String>) -> Vec<(PathBuf, String)> {
    let mut dirs = Vec::new();
    for (host_dir, guest) in entries {
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
    dirs
}

/// `env`: names of environment variables.
fn check_env(names: &[String], errs: &mut Vec<String>) {
    for name in names {
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            errs.push(format!(
                "env entry {name:?}: name an environment variable (letters, digits, _)"
            ));
        }
    }
}

/// A positive duration under `key`, or `default` when it is absent (or, with a problem, wrong).
fn duration(key: &str, v: Option<String>, default: Duration, errs: &mut Vec<String>) -> Duration {
    let Some(s) = v else {
        return default;
    };
    match duration::parse(&s) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            errs.push(format!(
                "{key} {s:?} is not a positive duration like 5s or 2m"
            ));
            default
        }
    }
}

/// `memory`: a size of at least 1 MiB, or the default when it is absent (or wrong).
fn memory(memory: Option<String>, errs: &mut Vec<String>) -> u64 {
    let Some(text) = memory else {
        return DEFAULT_MEMORY;
    };
    match parse_size(&text) {
        Some(m) if m >= 1 << 20 => m,
        _ => {
            errs.push(format!(
                "memory {text:?} is not a size of at least 1MiB like 64MiB"
            ));
            DEFAULT_MEMORY
        }
    }
}

/// `64MiB`, `512KiB`, `1GiB`, or a number of bytes.
pub(super) fn parse_size(s: &str) -> Option<u64> {
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
