//! Configuration: Cosmovisor's environment variables and `config.toml` keys, plus wasmvisor's own.
//!
//! Every value is read from the environment first, then from the TOML file given with
//! `--cosmovisor-config`, then the default. All problems are collected and reported together.
//! `keys.rs` is the one table of settings; `values.rs` the parsed forms of the richer ones.

mod keys;
mod loader;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::logging::{LogFormat, TimeFormat};
pub use crate::output::toml_value;
use keys::KEYS;
use loader::Loader;
pub use values::{Endpoint, GrpcAddress, HaltHeight, OnFailedUpgrade, WatchMode};

/// Shutdown grace used when `DAEMON_SHUTDOWN_GRACE` is not set: long enough for a node to flush
/// its stores, never an immediate SIGKILL.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(300);
pub const DEFAULT_RPC_ADDRESS: &str = "http://127.0.0.1:26657";
pub const DEFAULT_GRPC_ADDRESS: &str = "localhost:9090";
/// The compile cache's folder under the cosmovisor root, unless `WASMVISOR_PLUGIN_CACHE` says
/// otherwise.
pub const PLUGIN_CACHE_DIR: &str = ".wasmvisor-cache";
/// Snapshot backups kept when `WASMVISOR_BACKUP_KEEP` is not set.
pub const DEFAULT_BACKUP_KEEP: u32 = 3;
/// How long an upgraded node must run, with no health check configured, before its upgrade is
/// considered good.
pub const DEFAULT_PROBATION: Duration = Duration::from_secs(60);
/// How often the chain is asked for its next upgrades when `WASMVISOR_PLAN_POLL` is not set.
pub const DEFAULT_PLAN_POLL: Duration = Duration::from_secs(60);
/// What a staged binary is run with to check that it runs, when `WASMVISOR_PREFLIGHT_ARGS` is
/// not set.
pub const DEFAULT_PREFLIGHT_ARGS: &str = "version";
/// Crash restarts within this window count towards `WASMVISOR_MAX_RESTARTS`.
pub const RESTART_WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct Config {
    pub home: PathBuf,
    pub name: String,
    pub allow_download_binaries: bool,
    pub download_must_have_checksum: bool,
    pub restart_after_upgrade: bool,
    pub restart_delay: Option<Duration>,
    pub shutdown_grace: Duration,
    pub poll_interval: Duration,
    pub unsafe_skip_backup: bool,
    pub data_backup_dir: PathBuf,
    pub preupgrade_max_retries: u32,
    pub grpc: GrpcAddress,
    pub disable_logs: bool,
    pub color_logs: bool,
    pub time_format: Option<TimeFormat>,
    pub custom_preupgrade: Option<String>,
    pub disable_recase: bool,
    pub rpc: Endpoint,
    pub log_format: LogFormat,
    pub watch_mode: WatchMode,
    pub halt_height: HaltHeight,
    pub backup_keep: u32,
    pub on_failed_upgrade: OnFailedUpgrade,
    pub probation: Duration,
    pub restart_on_crash: bool,
    pub max_restarts: u32,
    /// `WASMVISOR_METRICS_ADDRESS`: where metrics and probes are served (none: nowhere).
    pub metrics: Option<Endpoint>,
    /// `WASMVISOR_PLUGINS`: the plugin configuration, when set explicitly.
    pub plugins_file: Option<PathBuf>,
    /// `WASMVISOR_PLAN_POLL`: how often the chain is asked for its next upgrades (`None`: off).
    pub plan_poll: Option<Duration>,
    /// `WASMVISOR_PREFLIGHT_ARGS`: what a staged binary is run with to check it runs (empty:
    /// the run is not checked).
    pub preflight_args: Vec<String>,
    /// `WASMVISOR_PREPARE_PROPOSED`: also prepare the upgrades of proposals still in voting.
    pub prepare_proposed: bool,
    /// `WASMVISOR_PLUGIN_CACHE`: where compiled plugins are kept, when set explicitly.
    pub plugin_cache: Option<PathBuf>,
    /// Where the values came from, for `config`.
    pub file: Option<PathBuf>,
}

/// A configuration being read: what has no default is still optional.
pub(super) struct Draft {
    home: Option<PathBuf>,
    name: Option<String>,
    allow_download_binaries: bool,
    download_must_have_checksum: bool,
    restart_after_upgrade: bool,
    restart_delay: Option<Duration>,
    shutdown_grace: Duration,
    poll_interval: Duration,
    unsafe_skip_backup: bool,
    data_backup_dir: Option<PathBuf>,
    preupgrade_max_retries: u32,
    grpc: Option<GrpcAddress>,
    disable_logs: bool,
    color_logs: bool,
    time_format: Option<TimeFormat>,
    custom_preupgrade: Option<String>,
    disable_recase: bool,
    rpc: Option<Endpoint>,
    log_format: LogFormat,
    watch_mode: WatchMode,
    halt_height: HaltHeight,
    backup_keep: u32,
    on_failed_upgrade: OnFailedUpgrade,
    probation: Duration,
    restart_on_crash: bool,
    max_restarts: u32,
    metrics: Option<Endpoint>,
    plugins_file: Option<PathBuf>,
    plugin_cache: Option<PathBuf>,
    plan_poll: Option<Duration>,
    preflight_args: Vec<String>,
    prepare_proposed: bool,
}

/// The values a configuration cannot do without, once read.
struct Required {
    home: PathBuf,
    name: String,
    grpc: GrpcAddress,
    rpc: Endpoint,
}

impl Draft {
    /// Every default, before a key is read.
    fn new() -> Draft {
        Draft {
            home: None,
            name: None,
            allow_download_binaries: false,
            download_must_have_checksum: false,
            restart_after_upgrade: true,
            restart_delay: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            unsafe_skip_backup: false,
            data_backup_dir: None,
            preupgrade_max_retries: 0,
            grpc: None,
            disable_logs: false,
            color_logs: true,
            time_format: None,
            custom_preupgrade: None,
            disable_recase: false,
            rpc: None,
            log_format: LogFormat::Human,
            watch_mode: WatchMode::Auto,
            halt_height: HaltHeight::Before,
            backup_keep: DEFAULT_BACKUP_KEEP,
            on_failed_upgrade: OnFailedUpgrade::Exit,
            probation: DEFAULT_PROBATION,
            restart_on_crash: false,
            max_restarts: 5,
            metrics: None,
            plugins_file: None,
            plugin_cache: None,
            plan_poll: Some(DEFAULT_PLAN_POLL),
            preflight_args: vec![DEFAULT_PREFLIGHT_ARGS.into()],
            prepare_proposed: false,
        }
    }

    /// The configuration, once every key was read without a problem.
    fn finish(self, r: Required, file: Option<&Path>) -> Config {
        Config {
            data_backup_dir: self.data_backup_dir.unwrap_or_else(|| r.home.clone()),
            home: r.home,
            name: r.name,
            allow_download_binaries: self.allow_download_binaries,
            download_must_have_checksum: self.download_must_have_checksum,
            restart_after_upgrade: self.restart_after_upgrade,
            restart_delay: self.restart_delay,
            shutdown_grace: self.shutdown_grace,
            poll_interval: self.poll_interval,
            unsafe_skip_backup: self.unsafe_skip_backup,
            preupgrade_max_retries: self.preupgrade_max_retries,
            grpc: r.grpc,
            disable_logs: self.disable_logs,
            color_logs: self.color_logs,
            time_format: self.time_format,
            custom_preupgrade: self.custom_preupgrade,
            disable_recase: self.disable_recase,
            rpc: r.rpc,
            log_format: self.log_format,
            watch_mode: self.watch_mode,
            halt_height: self.halt_height,
            backup_keep: self.backup_keep,
            on_failed_upgrade: self.on_failed_upgrade,
            probation: self.probation,
            restart_on_crash: self.restart_on_crash,
            max_restarts: self.max_restarts,
            metrics: self.metrics,
            plugins_file: self.plugins_file,
            plugin_cache: self.plugin_cache,
            plan_poll: self.plan_poll,
            preflight_args: self.preflight_args,
            prepare_proposed: self.prepare_proposed,
            file: file.map(Path::to_path_buf),
        }
    }
}

/// One problem with one variable or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The variable name (env) or key (file) the problem is about.
    pub key: String,
    pub origin: Origin,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Env,
    File(PathBuf),
    Missing,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Env => write!(f, "environment variable {}: {}", self.key, self.message),
            Origin::File(path) => write!(
                f,
                "{}: key {}: {}",
                path.display(),
                self.key.to_ascii_lowercase(),
                self.message
            ),
            Origin::Missing => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Every problem found while loading, reported at once.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the configuration has {} problem(s):",
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Loads the configuration from the process environment and the optional file.
    pub fn from_process(file: Option<&Path>) -> Result<(Config, Vec<String>), ConfigError> {
        Self::load(file, &|key| std::env::var(key).ok())
    }

    /// Loads the configuration from `env` and the optional TOML `file`. Returns the configuration
    /// and warnings (such as unknown keys in the file) to log once logging is up.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut loader = Loader {
            env,
            file: BTreeMap::new(),
            file_path: None,
            problems: Vec::new(),
        };
        let mut unknown = Vec::new();
        if let Some(path) = file {
            loader::read_file(&mut loader, path, &mut unknown);
        }
        let mut draft = Draft::new();
        for key in KEYS {
            (key.read)(&mut loader, &mut draft);
        }
        check_together(&mut loader, &draft);
        // An unknown key is only a warning, unless the configuration fails: then it is likely
        // why (a misspelt required key), and said with the rest.
        let (Some(home), Some(name), Some(grpc), Some(rpc)) = (
            draft.home.take(),
            draft.name.take(),
            draft.grpc.take(),
            draft.rpc.take(),
        ) else {
            loader.problems.extend(unknown);
            return Err(ConfigError {
                problems: loader.problems,
            });
        };
        if !loader.problems.is_empty() {
            loader.problems.extend(unknown);
            return Err(ConfigError {
                problems: loader.problems,
            });
        }
        let mut warnings: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        if draft.on_failed_upgrade == OnFailedUpgrade::Rollback && draft.unsafe_skip_backup {
            warnings.push(
                "WASMVISOR_ON_FAILED_UPGRADE=rollback with UNSAFE_SKIP_BACKUP=true: a rollback can point `current` back but has no backup to restore data/ from; set UNSAFE_SKIP_BACKUP=false (snapshot backups cost seconds, not a copy of the data)".into(),
            );
        }
        let required = Required {
            home,
            name,
            grpc,
            rpc,
        };
        Ok((draft.finish(required, file), warnings))
    }

    pub fn root(&self) -> PathBuf {
        self.home.join("cosmovisor")
    }

    /// Every effective value as (variable, value), in the order of the key table.
    pub fn values(&self) -> Vec<(&'static str, String)> {
        KEYS.iter().map(|k| (k.name, (k.show)(self))).collect()
    }

    /// The plugin configuration in use: `WASMVISOR_PLUGINS`, else `cosmovisor/plugins.toml` if
    /// it exists, else none (the bundled plugins).
    pub fn plugins_path(&self) -> Option<PathBuf> {
        self.plugins_file.clone().or_else(|| {
            let default = self.root().join("plugins.toml");
            default.is_file().then_some(default)
        })
    }

    /// Where compiled plugins are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.plugin_cache
            .clone()
            .unwrap_or_else(|| self.root().join(PLUGIN_CACHE_DIR))
    }

    /// The TOML document `init` writes: every key, lower-cased, with its effective value.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# wasmvisor / Cosmovisor configuration. Environment variables override these values.\n",
        );
        for key in KEYS {
            if let Some(value) = (key.pin)(self) {
                let value = toml_value(&value);
                out.push_str(&format!("{} = {value}\n", key.name.to_ascii_lowercase()));
            }
        }
        out
    }
}

/// The checks that need more than one key: the pre-upgrade script inside the home, and the
/// backup folder unless backups are off.
fn check_together(loader: &mut Loader<'_>, draft: &Draft) {
    if let (Some(home), Some(script)) = (&draft.home, &draft.custom_preupgrade)
        && !loader
            .problems
            .iter()
            .any(|p| p.key == "COSMOVISOR_CUSTOM_PREUPGRADE")
    {
        check_custom_preupgrade(loader, &home.join("cosmovisor"), script);
    }
    if !draft.unsafe_skip_backup
        && let Some(dir) = &draft.data_backup_dir
        && !dir.is_dir()
    {
        loader.fail(
            "DAEMON_DATA_BACKUP_DIR",
            format!(
                "{} does not exist or is not a directory; create it or set UNSAFE_SKIP_BACKUP=true",
                dir.display()
            ),
        );
    }
}

/// The custom pre-upgrade script must be usable when the supervisor starts, not found missing
/// at the upgrade height, after the node was stopped: a regular file inside the tree (a link
/// may lead to one, inside the tree; the upgrade opens it the same way). A tree that does not
/// exist yet is not checked here (nothing can run without it).
fn check_custom_preupgrade(loader: &mut Loader<'_>, root: &Path, script: &str) {
    let Ok(dir) = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority()) else {
        return;
    };
    let script_path = root.join(script);
    let problem = match dir.metadata(script) {
        Ok(meta) if meta.is_file() => return,
        Ok(meta) => format!(
            "{} is not a regular file ({}); name the script to run, inside {}",
            script_path.display(),
            if meta.is_dir() {
                "a directory"
            } else {
                "a FIFO, socket or device"
            },
            root.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
            "{} does not exist; put the script there, or unset the variable",
            script_path.display()
        ),
        Err(e) => format!("{} cannot be used: {e}", script_path.display()),
    };
    loader.fail("COSMOVISOR_CUSTOM_PREUPGRADE", problem);
}

#[cfg(test)]
mod tests;
