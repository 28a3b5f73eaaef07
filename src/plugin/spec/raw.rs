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
    pub(super) fn into_spec(self, world: World, base: &Path) -> Result<PluginSpec, Vec<String>> {
        let mut errs = Vec::new();
        let origin = match self.path.strip_prefix("bundled:") {
            // Only the name is checked here: the component is inflated when it is loaded.
            Some(name) => match crate::plugin::bundled_name(name) {
                Some(name) => Origin::Bundled(name),
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
        let allow_hosts = match &self.allow_hosts {
            None if matches!(origin, Origin::Bundled(_)) => vec![AllowHost::ANY],
            None => Vec::new(),
            Some(entries) => entries
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
                .collect(),
        };
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
        for name in &self.env {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                errs.push(format!(
                    "env entry {name:?}: name an environment variable (letters, digits, _)"
                ));
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
