//! The plugins an upgrade runs, as the configuration names them: `plugins.toml` (or the bundled
//! defaults), compiled into (or loaded from) the compile cache.

use std::path::Path;
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::cancel::Cancel;
use crate::config::{Config, OnFailedUpgrade, PLUGIN_CACHE_DIR};
use crate::plugin::spec::PluginsConfigError;
use crate::plugin::{
    Compile, Host, HostConfig, HostError, OnUnhealthy, PluginError, PluginSet, PluginSpec, Plugins,
};

/// The plugin configuration in effect (`over`, from `--plugins`, replaces the configuration's).
/// A health check told to `exit` while `WASMVISOR_ON_FAILED_UPGRADE=rollback` is a contradiction,
/// refused here rather than settled silently one way.
pub fn configured(cfg: &Config, over: Option<&Path>) -> Result<Plugins, ConfigError> {
    let path = over.map(Path::to_path_buf).or_else(|| cfg.plugins_path());
    let plugins = Plugins::load(path.as_deref())?;
    if cfg.on_failed_upgrade == OnFailedUpgrade::Rollback {
        let checks: Vec<String> = plugins
            .health
            .iter()
            .filter(|h| h.on_unhealthy == Some(OnUnhealthy::Exit))
            .map(|h| h.name.clone())
            .collect();
        if !checks.is_empty() {
            return Err(ConfigError::ExitOnRollback {
                file: path
                    .as_deref()
                    .map_or("plugins.toml".into(), |p| p.display().to_string()),
                checks,
            });
        }
    }
    Ok(plugins)
}

/// What an unhealthy verdict of `spec` does: its `on-unhealthy`; unset, the plugin's own default
/// (the bundled `signing` check warns: a rollback does not bring a remote signer back), else a
/// rollback when `WASMVISOR_ON_FAILED_UPGRADE=rollback` and a warning otherwise.
pub fn on_unhealthy(spec: &PluginSpec, cfg: &Config) -> OnUnhealthy {
    spec.on_unhealthy
        .or(spec.default_on_unhealthy())
        .unwrap_or(match cfg.on_failed_upgrade {
            OnFailedUpgrade::Rollback => OnUnhealthy::Rollback,
            OnFailedUpgrade::Exit => OnUnhealthy::Warn,
        })
}

/// The compile cache folder: `WASMVISOR_PLUGIN_CACHE` where the operator put it, else
/// wasmvisor's own `cosmovisor/.wasmvisor-cache` (never through a symlink). A cache that cannot
/// be used costs only compile time: plugins are then compiled in memory.
pub fn cache_dir(cfg: &Config) -> Option<Dir> {
    let opened = match &cfg.plugin_cache {
        Some(path) => std::fs::create_dir_all(path)
            .and_then(|()| Dir::open_ambient_dir(path, ambient_authority())),
        None => Dir::open_ambient_dir(cfg.root(), ambient_authority())
            .and_then(|root| crate::fs::own_dir(&root, PLUGIN_CACHE_DIR)),
    };
    match opened {
        Ok(dir) => Some(dir),
        Err(e) => {
            tracing::warn!(
                cache = %cfg.plugin_cache_dir().display(),
                "cannot use the plugin compile cache ({e}); compiling in memory"
            );
            None
        }
    }
}

/// What a host for `cfg` is built with: its compile cache (`cache_dir`), and no hooks — the
/// caller adds its own.
pub fn host_config(cfg: &Config) -> HostConfig {
    HostConfig {
        cache: cache_dir(cfg),
        ..HostConfig::default()
    }
}

/// Builds the host from `host` and loads every plugin into it, whose calls `cancel` ends; all
/// failures at once (with `Compile::Background`, those found before compiling: a compilation
/// that fails later is logged, and fails the first call that needs that plugin).
pub fn load(
    host: HostConfig,
    plugins: &Plugins,
    cancel: Cancel,
    compile: Compile,
) -> Result<PluginSet, LoadError> {
    let host = Host::new(host)?;
    PluginSet::load(Arc::new(host), plugins, cancel, compile).map_err(LoadError::Plugins)
}

/// Why the configured plugins are not what an upgrade can run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] PluginsConfigError),
    #[error(
        "{file}: the health check(s) {} say on-unhealthy = \"exit\" but WASMVISOR_ON_FAILED_UPGRADE=rollback; remove on-unhealthy (it then follows WASMVISOR_ON_FAILED_UPGRADE), or set it to \"rollback\" or \"warn\", or set WASMVISOR_ON_FAILED_UPGRADE=exit",
        checks.join(", ")
    )]
    ExitOnRollback {
        /// plugins.toml as the operator named it.
        file: String,
        checks: Vec<String>,
    },
}

/// Why the plugins could not be loaded: every plugin that cannot be used, or the engine itself
/// (said as a plugin `(engine)` that cannot load, as the list would say it).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("1 plugin(s) cannot be used:\n  - plugin (engine) (resolver): cannot load: {0}")]
    Host(#[from] HostError),
    #[error("{} plugin(s) cannot be used:\n{}", .0.len(), list(.0))]
    Plugins(Vec<PluginError>),
}

fn list(errors: &[PluginError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{ErrorKind, World};

    #[test]
    fn plugins_that_cannot_be_used_are_listed_one_a_line() {
        let spec = PluginSpec::bundled(World::Resolver, "cosmovisor");
        let e = LoadError::Plugins(vec![
            PluginError::new(&spec, ErrorKind::Cancelled),
            PluginError::new(&spec, ErrorKind::Memory(5)),
        ]);
        assert_eq!(
            e.to_string(),
            "2 plugin(s) cannot be used:\n  - plugin cosmovisor (resolver): was stopped: wasmvisor is shutting down\n  - plugin cosmovisor (resolver): exceeded its memory limit of 5 bytes and was stopped"
        );
        assert!(matches!(e, LoadError::Plugins(list) if list.len() == 2));
    }
}
