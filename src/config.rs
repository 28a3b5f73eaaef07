//! Configuration: Cosmovisor's environment variables and `config.toml` keys, plus wasmvisor's own.
//!
//! Every value is read from the environment first, then from the TOML file given with
//! `--cosmovisor-config`, then the default. All problems are collected and reported together.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::duration;
use crate::logging::{LogFormat, TimeFormat};

/// Shutdown grace used when `DAEMON_SHUTDOWN_GRACE` is not set: long enough for a node to flush
/// its stores, never an immediate SIGKILL.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(300);
pub const DEFAULT_RPC_ADDRESS: &str = "http://127.0.0.1:26657";
pub const DEFAULT_GRPC_ADDRESS: &str = "localhost:9090";
/// A configuration file is a few KiB.
const MAX_CONFIG_FILE: u64 = 1 << 20;

/// How changes of `data/upgrade-info.json` are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// inotify, falling back to polling when a probe shows inotify is silent on this filesystem.
    Auto,
    Inotify,
    Poll,
}

/// How the node treats `--halt-height X`, which decides the X wasmvisor passes for a manual
/// upgrade at H so that the old binary's last block is H - 1 and the new binary executes H.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltHeight {
    /// The node stops before executing block X (Cosmos SDK v0.50.10 and later): X = H.
    Before,
    /// The node executes block X, then stops (Cosmos SDK v0.47 and earlier exit, v0.50.0 to
    /// v0.50.9 stay up): X = H - 1.
    At,
}

impl HaltHeight {
    pub fn name(self) -> &'static str {
        match self {
            HaltHeight::Before => "before",
            HaltHeight::At => "at",
        }
    }

    /// The `--halt-height` to pass for a manual upgrade whose new binary executes `height`.
    pub fn flag_for(self, height: u64) -> u64 {
        match self {
            HaltHeight::Before => height,
            HaltHeight::At => height.saturating_sub(1).max(1),
        }
    }
}

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
    pub grpc_address: String,
    pub disable_logs: bool,
    pub color_logs: bool,
    pub time_format: Option<TimeFormat>,
    pub custom_preupgrade: Option<String>,
    pub disable_recase: bool,
    pub rpc_address: String,
    pub log_format: LogFormat,
    pub watch_mode: WatchMode,
    pub halt_height: HaltHeight,
    /// `WASMVISOR_PLUGINS`: the plugin configuration, when set explicitly.
    pub plugins_file: Option<PathBuf>,
    /// `WASMVISOR_PLUGIN_CACHE`: where compiled plugins are kept.
    pub plugin_cache: Option<PathBuf>,
    /// Where the values came from, for `config`.
    pub file: Option<PathBuf>,
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

/// A raw value before parsing, with its origin.
struct Raw {
    text: RawValue,
    origin: Origin,
}

enum RawValue {
    Str(String),
    Bool(bool),
    Int(i64),
    /// A TOML value no key accepts (a float, date, array or table): named, never stringified.
    Other(&'static str),
}

impl RawValue {
    fn describe(&self) -> String {
        match self {
            RawValue::Str(s) => format!("{s:?}"),
            RawValue::Bool(b) => b.to_string(),
            RawValue::Int(i) => i.to_string(),
            RawValue::Other(kind) => format!("a TOML {kind}"),
        }
    }
}

/// The keys Cosmovisor and wasmvisor read. The file's keys are these names lower-cased.
pub const KEYS: &[&str] = &[
    "DAEMON_HOME",
    "DAEMON_NAME",
    "DAEMON_ALLOW_DOWNLOAD_BINARIES",
    "DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM",
    "DAEMON_RESTART_AFTER_UPGRADE",
    "DAEMON_RESTART_DELAY",
    "DAEMON_SHUTDOWN_GRACE",
    "DAEMON_POLL_INTERVAL",
    "UNSAFE_SKIP_BACKUP",
    "DAEMON_DATA_BACKUP_DIR",
    "DAEMON_PREUPGRADE_MAX_RETRIES",
    "DAEMON_GRPC_ADDRESS",
    "COSMOVISOR_DISABLE_LOGS",
    "COSMOVISOR_COLOR_LOGS",
    "COSMOVISOR_TIMEFORMAT_LOGS",
    "COSMOVISOR_CUSTOM_PREUPGRADE",
    "COSMOVISOR_DISABLE_RECASE",
    "WASMVISOR_RPC_ADDRESS",
    "WASMVISOR_LOG_FORMAT",
    "WASMVISOR_WATCH_MODE",
    "WASMVISOR_HALT_HEIGHT",
    "WASMVISOR_PLUGINS",
    "WASMVISOR_PLUGIN_CACHE",
];

struct Loader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: BTreeMap<String, toml::Value>,
    file_path: Option<PathBuf>,
    problems: Vec<ConfigProblem>,
}

impl Loader<'_> {
    fn raw(&self, key: &str) -> Option<Raw> {
        if let Some(v) = (self.env)(key).filter(|v| !v.is_empty()) {
            return Some(Raw {
                text: RawValue::Str(v),
                origin: Origin::Env,
            });
        }
        let value = self.file.get(&key.to_ascii_lowercase())?;
        let origin = Origin::File(self.file_path.clone().unwrap_or_default());
        let text = match value {
            toml::Value::String(s) if s.is_empty() => return None,
            toml::Value::String(s) => RawValue::Str(s.clone()),
            toml::Value::Boolean(b) => RawValue::Bool(*b),
            toml::Value::Integer(i) => RawValue::Int(*i),
            toml::Value::Float(_) => RawValue::Other("float"),
            toml::Value::Datetime(_) => RawValue::Other("date-time"),
            toml::Value::Array(_) => RawValue::Other("array"),
            toml::Value::Table(_) => RawValue::Other("table"),
        };
        Some(Raw { text, origin })
    }

    fn problem(&mut self, key: &str, origin: Origin, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            origin,
            message: message.into(),
        });
    }

    fn string(&mut self, key: &str) -> Option<String> {
        let raw = self.raw(key)?;
        match raw.text {
            RawValue::Str(s) => Some(s),
            other => {
                self.problem(
                    key,
                    raw.origin,
                    format!("expected a string, got {}", other.describe()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, default: bool) -> bool {
        let Some(raw) = self.raw(key) else {
            return default;
        };
        match raw.text {
            RawValue::Bool(b) => b,
            RawValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
            RawValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
            other => {
                self.problem(
                    key,
                    raw.origin,
                    format!(
                        "{} is not a boolean; accepted values: true, false",
                        other.describe()
                    ),
                );
                default
            }
        }
    }

    fn duration(&mut self, key: &str) -> Option<Duration> {
        let raw = self.raw(key)?;
        let parsed = match (&raw.text, &raw.origin) {
            (RawValue::Str(s), _) => duration::parse(s),
            // A Go TOML encoder writes time.Duration as integer nanoseconds.
            (RawValue::Int(n), Origin::File(_)) if *n > 0 => Ok(Duration::from_nanos(*n as u64)),
            (other, _) => Err(format!("{} is not a positive duration", other.describe())),
        };
        match parsed {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    key,
                    raw.origin,
                    format!("{e}; accepted: a duration such as 300ms, 30s, 2m"),
                );
                None
            }
        }
    }

    fn count(&mut self, key: &str) -> u32 {
        let Some(raw) = self.raw(key) else { return 0 };
        let parsed = match &raw.text {
            RawValue::Str(s) => s.trim().parse::<u32>().ok(),
            RawValue::Int(n) => u32::try_from(*n).ok(),
            RawValue::Bool(_) | RawValue::Other(_) => None,
        };
        parsed.unwrap_or_else(|| {
            self.problem(
                key,
                raw.origin,
                format!(
                    "{} is not a whole number of retries (0 or more)",
                    raw.text.describe()
                ),
            );
            0
        })
    }

    fn choice<T: Copy>(&mut self, key: &str, default: T, choices: &[(&str, T)]) -> T {
        let Some(text) = self.string(key) else {
            return default;
        };
        let lower = text.to_ascii_lowercase();
        if let Some((_, value)) = choices.iter().find(|(name, _)| *name == lower) {
            return *value;
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let origin = self.raw(key).map_or(Origin::Env, |r| r.origin);
        self.problem(
            key,
            origin,
            format!(
                "{text:?} is not accepted; accepted values: {}",
                names.join(", ")
            ),
        );
        default
    }

    fn absolute_path(&mut self, key: &str) -> Option<PathBuf> {
        let text = self.string(key)?;
        let path = PathBuf::from(&text);
        if path.is_absolute() {
            Some(path)
        } else {
            let origin = self.raw(key).map_or(Origin::Env, |r| r.origin);
            self.problem(key, origin, format!("{text:?} must be an absolute path"));
            None
        }
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
        let mut warnings = Vec::new();
        let mut loader = Loader {
            env,
            file: BTreeMap::new(),
            file_path: None,
            problems: Vec::new(),
        };
        if let Some(path) = file {
            let text = crate::fsutil::read_regular_path(path, MAX_CONFIG_FILE)
                .map_err(|e| e.to_string())
                .and_then(|b| String::from_utf8(b).map_err(|_| "is not UTF-8 text".to_string()));
            match text {
                Ok(text) => match text.parse::<toml::Table>() {
                    Ok(table) => {
                        for key in table.keys() {
                            if !KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                                warnings.push(format!(
                                    "{}: unknown key {key:?} is ignored",
                                    path.display()
                                ));
                            }
                        }
                        loader.file = table.into_iter().collect();
                        loader.file_path = Some(path.to_path_buf());
                    }
                    Err(e) => loader.problem(
                        "--cosmovisor-config",
                        Origin::File(path.to_path_buf()),
                        format!("not valid TOML: {}", e.message()),
                    ),
                },
                Err(e) => loader.problem(
                    "--cosmovisor-config",
                    Origin::Missing,
                    format!("cannot read {}: {e}", path.display()),
                ),
            }
        }

        let home = loader.absolute_path("DAEMON_HOME");
        if home.is_none() && loader.raw("DAEMON_HOME").is_none() {
            loader.problem(
                "DAEMON_HOME",
                Origin::Missing,
                "is required: set it to the node's home directory (absolute path)",
            );
        }
        let name = loader.string("DAEMON_NAME");
        match &name {
            None if loader.raw("DAEMON_NAME").is_none() => loader.problem(
                "DAEMON_NAME",
                Origin::Missing,
                "is required: set it to the file name of the node binary (e.g. gaiad)",
            ),
            Some(n) if n.contains('/') || n == "." || n == ".." => {
                let origin = loader.raw("DAEMON_NAME").map_or(Origin::Env, |r| r.origin);
                loader.problem(
                    "DAEMON_NAME",
                    origin,
                    format!("{n:?} must be a plain file name"),
                );
            }
            _ => {}
        }
        let allow_download_binaries = loader.boolean("DAEMON_ALLOW_DOWNLOAD_BINARIES", false);
        let download_must_have_checksum =
            loader.boolean("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM", false);
        let restart_after_upgrade = loader.boolean("DAEMON_RESTART_AFTER_UPGRADE", true);
        let restart_delay = loader.duration("DAEMON_RESTART_DELAY");
        let shutdown_grace = loader
            .duration("DAEMON_SHUTDOWN_GRACE")
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE);
        let poll_interval = loader
            .duration("DAEMON_POLL_INTERVAL")
            .unwrap_or(DEFAULT_POLL_INTERVAL);
        let unsafe_skip_backup = loader.boolean("UNSAFE_SKIP_BACKUP", false);
        let data_backup_dir = loader.absolute_path("DAEMON_DATA_BACKUP_DIR");
        let preupgrade_max_retries = loader.count("DAEMON_PREUPGRADE_MAX_RETRIES");
        let grpc_address = loader
            .string("DAEMON_GRPC_ADDRESS")
            .unwrap_or_else(|| DEFAULT_GRPC_ADDRESS.into());
        if let Err(e) = grpc_endpoint(&grpc_address) {
            let origin = loader
                .raw("DAEMON_GRPC_ADDRESS")
                .map_or(Origin::Env, |r| r.origin);
            loader.problem("DAEMON_GRPC_ADDRESS", origin, e);
        }
        let disable_logs = loader.boolean("COSMOVISOR_DISABLE_LOGS", false);
        let color_logs = loader.boolean("COSMOVISOR_COLOR_LOGS", true);
        let time_format = time_format(&mut loader);
        let custom_preupgrade = loader.string("COSMOVISOR_CUSTOM_PREUPGRADE");
        if let Some(script) = &custom_preupgrade {
            let p = Path::new(script);
            if p.is_absolute()
                || p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                let origin = loader
                    .raw("COSMOVISOR_CUSTOM_PREUPGRADE")
                    .map_or(Origin::Env, |r| r.origin);
                loader.problem(
                    "COSMOVISOR_CUSTOM_PREUPGRADE",
                    origin,
                    format!("{script:?} must name a script inside $DAEMON_HOME/cosmovisor (a relative path without '..')"),
                );
            }
        }
        let disable_recase = loader.boolean("COSMOVISOR_DISABLE_RECASE", false);
        let rpc_address = loader
            .string("WASMVISOR_RPC_ADDRESS")
            .unwrap_or_else(|| DEFAULT_RPC_ADDRESS.into());
        if let Err(e) = crate::rpc::Endpoint::parse(&rpc_address) {
            let origin = loader
                .raw("WASMVISOR_RPC_ADDRESS")
                .map_or(Origin::Env, |r| r.origin);
            loader.problem("WASMVISOR_RPC_ADDRESS", origin, e);
        }
        let log_format = loader.choice(
            "WASMVISOR_LOG_FORMAT",
            LogFormat::Human,
            &[("human", LogFormat::Human), ("json", LogFormat::Json)],
        );
        let watch_mode = loader.choice(
            "WASMVISOR_WATCH_MODE",
            WatchMode::Auto,
            &[
                ("auto", WatchMode::Auto),
                ("inotify", WatchMode::Inotify),
                ("poll", WatchMode::Poll),
            ],
        );
        let halt_height = loader.choice(
            "WASMVISOR_HALT_HEIGHT",
            HaltHeight::Before,
            &[("before", HaltHeight::Before), ("at", HaltHeight::At)],
        );
        let plugins_file = loader.absolute_path("WASMVISOR_PLUGINS");
        if let Some(file) = &plugins_file {
            let problem = match std::fs::metadata(file) {
                Ok(m) if m.is_file() => None,
                Ok(m) if m.is_dir() => Some(format!(
                    "{} is a directory; name the plugins.toml file itself",
                    file.display()
                )),
                Ok(_) => Some(format!("{} is not a regular file", file.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                    "{} does not exist; create it or unset the variable (the bundled plugins need no file)",
                    file.display()
                )),
                Err(e) => Some(format!("{}: {e}", file.display())),
            };
            if let Some(problem) = problem {
                let origin = loader
                    .raw("WASMVISOR_PLUGINS")
                    .map_or(Origin::Env, |r| r.origin);
                loader.problem("WASMVISOR_PLUGINS", origin, problem);
            }
        }
        let plugin_cache = loader.absolute_path("WASMVISOR_PLUGIN_CACHE");

        if !unsafe_skip_backup
            && let Some(dir) = &data_backup_dir
            && !dir.is_dir()
        {
            let origin = loader
                .raw("DAEMON_DATA_BACKUP_DIR")
                .map_or(Origin::Env, |r| r.origin);
            loader.problem(
                "DAEMON_DATA_BACKUP_DIR",
                origin,
                format!("{} does not exist or is not a directory; create it or set UNSAFE_SKIP_BACKUP=true", dir.display()),
            );
        }

        if !loader.problems.is_empty() {
            return Err(ConfigError {
                problems: loader.problems,
            });
        }
        let home = home.expect("checked above");
        Ok((
            Config {
                data_backup_dir: data_backup_dir.unwrap_or_else(|| home.clone()),
                home,
                name: name.expect("checked above"),
                allow_download_binaries,
                download_must_have_checksum,
                restart_after_upgrade,
                restart_delay,
                shutdown_grace,
                poll_interval,
                unsafe_skip_backup,
                preupgrade_max_retries,
                grpc_address,
                disable_logs,
                color_logs,
                time_format,
                custom_preupgrade,
                disable_recase,
                rpc_address,
                log_format,
                watch_mode,
                halt_height,
                plugins_file,
                plugin_cache,
                file: file.map(Path::to_path_buf),
            },
            warnings,
        ))
    }

    pub fn root(&self) -> PathBuf {
        self.home.join("cosmovisor")
    }

    pub fn upgrade_info_path(&self) -> PathBuf {
        self.home.join("data").join(crate::plan::UPGRADE_INFO_FILE)
    }

    /// Every effective value as (variable, value), in the order of [`KEYS`].
    pub fn values(&self) -> Vec<(&'static str, String)> {
        let opt = |d: Option<Duration>| d.map(duration::format).unwrap_or_default();
        vec![
            ("DAEMON_HOME", self.home.display().to_string()),
            ("DAEMON_NAME", self.name.clone()),
            (
                "DAEMON_ALLOW_DOWNLOAD_BINARIES",
                self.allow_download_binaries.to_string(),
            ),
            (
                "DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM",
                self.download_must_have_checksum.to_string(),
            ),
            (
                "DAEMON_RESTART_AFTER_UPGRADE",
                self.restart_after_upgrade.to_string(),
            ),
            ("DAEMON_RESTART_DELAY", opt(self.restart_delay)),
            (
                "DAEMON_SHUTDOWN_GRACE",
                duration::format(self.shutdown_grace),
            ),
            ("DAEMON_POLL_INTERVAL", duration::format(self.poll_interval)),
            ("UNSAFE_SKIP_BACKUP", self.unsafe_skip_backup.to_string()),
            (
                "DAEMON_DATA_BACKUP_DIR",
                self.data_backup_dir.display().to_string(),
            ),
            (
                "DAEMON_PREUPGRADE_MAX_RETRIES",
                self.preupgrade_max_retries.to_string(),
            ),
            ("DAEMON_GRPC_ADDRESS", self.grpc_address.clone()),
            ("COSMOVISOR_DISABLE_LOGS", self.disable_logs.to_string()),
            ("COSMOVISOR_COLOR_LOGS", self.color_logs.to_string()),
            (
                "COSMOVISOR_TIMEFORMAT_LOGS",
                self.time_format.map(TimeFormat::name).unwrap_or("").into(),
            ),
            (
                "COSMOVISOR_CUSTOM_PREUPGRADE",
                self.custom_preupgrade.clone().unwrap_or_default(),
            ),
            ("COSMOVISOR_DISABLE_RECASE", self.disable_recase.to_string()),
            ("WASMVISOR_RPC_ADDRESS", self.rpc_address.clone()),
            ("WASMVISOR_LOG_FORMAT", self.log_format.name().into()),
            (
                "WASMVISOR_WATCH_MODE",
                match self.watch_mode {
                    WatchMode::Auto => "auto",
                    WatchMode::Inotify => "inotify",
                    WatchMode::Poll => "poll",
                }
                .into(),
            ),
            ("WASMVISOR_HALT_HEIGHT", self.halt_height.name().into()),
            (
                "WASMVISOR_PLUGINS",
                self.plugins_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "WASMVISOR_PLUGIN_CACHE",
                self.plugin_cache_dir().display().to_string(),
            ),
        ]
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
            .unwrap_or_else(|| crate::plugin::cache_dir(&self.root()))
    }

    /// The TOML document `init` writes: every key, lower-cased, with its effective value.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# wasmvisor / Cosmovisor configuration. Environment variables override these values.\n",
        );
        for (key, value) in self.values() {
            let key = key.to_ascii_lowercase();
            let rendered = match value.as_str() {
                "true" | "false" => value.clone(),
                _ if key == "daemon_preupgrade_max_retries" => value.clone(),
                _ => toml::Value::String(value.clone()).to_string(),
            };
            if value.is_empty() && key != "cosmovisor_timeformat_logs" {
                continue;
            }
            // Derived defaults are not pinned into the file.
            if (key == "wasmvisor_plugins" && self.plugins_file.is_none())
                || (key == "wasmvisor_plugin_cache" && self.plugin_cache.is_none())
            {
                continue;
            }
            out.push_str(&format!("{key} = {rendered}\n"));
        }
        out
    }
}

/// Checks `DAEMON_GRPC_ADDRESS`: `host:port`, optionally after `http://` or `https://` (the
/// forms Cosmovisor passes to its gRPC client).
pub fn grpc_endpoint(address: &str) -> Result<(bool, String, u16), String> {
    let example = "write it like localhost:9090";
    let (tls, rest) = if let Some(rest) = address.strip_prefix("https://") {
        (true, rest)
    } else {
        (false, address.strip_prefix("http://").unwrap_or(address))
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = crate::rpc::split_host_port(rest)
        .ok_or_else(|| format!("{address:?} is not a host:port address; {example}"))?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{address:?} has no valid port (1-65535); {example}"))?;
    Ok((tls, host.to_string(), port))
}

/// `COSMOVISOR_TIMEFORMAT_LOGS`: set-but-empty in the environment means "no timestamp".
fn time_format(loader: &mut Loader<'_>) -> Option<TimeFormat> {
    const KEY: &str = "COSMOVISOR_TIMEFORMAT_LOGS";
    if (loader.env)(KEY).is_some_and(|v| v.is_empty()) {
        return None;
    }
    if let Some(toml::Value::String(s)) = loader.file.get(&KEY.to_ascii_lowercase())
        && s.is_empty()
        && (loader.env)(KEY).is_none()
    {
        return None;
    }
    let Some(text) = loader.string(KEY) else {
        return Some(TimeFormat::Kitchen);
    };
    match TimeFormat::from_name(&text) {
        Some(f) => Some(f),
        None => {
            let origin = loader.raw(KEY).map_or(Origin::Env, |r| r.origin);
            let names: Vec<&str> = TimeFormat::ALL.iter().map(|f| f.name()).collect();
            loader.problem(
                KEY,
                origin,
                format!(
                    "{text:?} is not accepted; accepted values: {}",
                    names.join(", ")
                ),
            );
            Some(TimeFormat::Kitchen)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(None, &move |k| map.get(k).cloned()).map(|(c, _)| c)
    }

    #[test]
    fn defaults_apply() {
        let c = load_env(&[
            ("DAEMON_HOME", "/home/node"),
            ("DAEMON_NAME", "gaiad"),
            ("UNSAFE_SKIP_BACKUP", "true"),
        ])
        .unwrap();
        assert!(c.restart_after_upgrade);
        assert!(!c.allow_download_binaries);
        assert_eq!(c.poll_interval, Duration::from_millis(300));
        assert_eq!(c.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        assert_eq!(c.restart_delay, None);
        assert_eq!(c.data_backup_dir, PathBuf::from("/home/node"));
        assert_eq!(c.time_format, Some(TimeFormat::Kitchen));
    }

    #[test]
    fn booleans_accept_any_case_and_nothing_else() {
        let c = load_env(&[
            ("DAEMON_HOME", "/h"),
            ("DAEMON_NAME", "n"),
            ("UNSAFE_SKIP_BACKUP", "TRUE"),
            ("DAEMON_RESTART_AFTER_UPGRADE", "False"),
        ])
        .unwrap();
        assert!(c.unsafe_skip_backup);
        assert!(!c.restart_after_upgrade);
        let err = load_env(&[
            ("DAEMON_HOME", "/h"),
            ("DAEMON_NAME", "n"),
            ("UNSAFE_SKIP_BACKUP", "yes"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].key, "UNSAFE_SKIP_BACKUP");
        assert!(err.problems[0].message.contains("true, false"));
    }

    #[test]
    fn all_problems_are_reported_together() {
        let err = load_env(&[
            ("DAEMON_HOME", "relative/home"),
            ("DAEMON_POLL_INTERVAL", "300"),
            ("DAEMON_SHUTDOWN_GRACE", "-1s"),
            ("COSMOVISOR_TIMEFORMAT_LOGS", "iso"),
            ("DAEMON_PREUPGRADE_MAX_RETRIES", "many"),
        ])
        .unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "DAEMON_HOME",
            "DAEMON_NAME",
            "DAEMON_POLL_INTERVAL",
            "DAEMON_SHUTDOWN_GRACE",
            "COSMOVISOR_TIMEFORMAT_LOGS",
            "DAEMON_PREUPGRADE_MAX_RETRIES",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn empty_time_format_means_no_timestamp() {
        let c = load_env(&[
            ("DAEMON_HOME", "/h"),
            ("DAEMON_NAME", "n"),
            ("UNSAFE_SKIP_BACKUP", "true"),
            ("COSMOVISOR_TIMEFORMAT_LOGS", ""),
        ])
        .unwrap();
        assert_eq!(c.time_format, None);
    }

    #[test]
    fn addresses_and_file_values_of_the_wrong_type_are_refused() {
        for (key, value) in [
            ("DAEMON_GRPC_ADDRESS", "not an address"),
            ("DAEMON_GRPC_ADDRESS", "localhost"),
            ("DAEMON_GRPC_ADDRESS", "localhost:99999"),
            ("WASMVISOR_RPC_ADDRESS", "http://[::1"),
            ("WASMVISOR_HALT_HEIGHT", "after"),
        ] {
            let err = load_env(&[
                ("DAEMON_HOME", "/h"),
                ("DAEMON_NAME", "n"),
                ("UNSAFE_SKIP_BACKUP", "true"),
                (key, value),
            ])
            .unwrap_err();
            assert_eq!(err.problems[0].key, key, "{value}");
        }
        for good in [
            "localhost:9090",
            "https://grpc.example.com:443",
            "[::1]:9090",
        ] {
            assert!(grpc_endpoint(good).is_ok(), "{good}");
        }
        let file = std::env::temp_dir().join(format!("wv-config-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "daemon_home = \"/h\"\ndaemon_name = [\"a\", \"b\"]\nunsafe_skip_backup = true\n",
        )
        .unwrap();
        let err = Config::load(Some(&file), &|_| None).unwrap_err();
        let _ = std::fs::remove_file(&file);
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(
            err.problems[0].message.contains("a TOML array"),
            "{}",
            err.problems[0].message
        );
    }

    #[test]
    fn custom_preupgrade_cannot_leave_the_tree() {
        for bad in ["../x.sh", "/etc/x.sh", "a/../../b"] {
            let err = load_env(&[
                ("DAEMON_HOME", "/h"),
                ("DAEMON_NAME", "n"),
                ("UNSAFE_SKIP_BACKUP", "true"),
                ("COSMOVISOR_CUSTOM_PREUPGRADE", bad),
            ])
            .unwrap_err();
            assert_eq!(err.problems[0].key, "COSMOVISOR_CUSTOM_PREUPGRADE");
        }
    }
}
