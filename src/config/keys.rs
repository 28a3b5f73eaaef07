//! Every setting in one table: its name (the environment variable; lower-cased, the TOML key),
//! how it is read, how its effective value is shown by `config`, and what `init` writes for it.
//! Loading, the unknown-key check, `config` and `init` all walk this table.

use std::path::Path;

use super::loader::{Loader, RawValue};
use super::values::{Endpoint, GrpcAddress, HaltHeight, OnFailedUpgrade, WatchMode};
use super::{Config, DEFAULT_GRPC_ADDRESS, DEFAULT_POLL_INTERVAL, DEFAULT_RPC_ADDRESS};
use super::{DEFAULT_SHUTDOWN_GRACE, Draft};
use crate::duration;
use crate::logging::{LogFormat, TimeFormat};

pub(super) struct Key {
    pub name: &'static str,
    pub read: fn(&mut Loader<'_>, &mut Draft),
    pub show: fn(&Config) -> String,
    /// The value `init` writes to config.toml; `None` leaves the key out.
    pub pin: fn(&Config) -> Option<toml::Value>,
}

/// Why `name` cannot be the node binary's file name in every `bin/`, if it cannot: a single
/// path component a file system takes, without the characters and spaces that only a typo or
/// a pasted line puts there.
pub(super) fn plain_file_name(name: &str) -> Result<(), &'static str> {
    if name.contains('/') || name == "." || name == ".." {
        return Err("must be a plain file name (no '/', not '.' or '..')");
    }
    if name.len() > 255 {
        return Err("is longer than a file name can be (255 bytes)");
    }
    if name.chars().any(char::is_control) {
        return Err("holds a control character (a newline?)");
    }
    if name.trim() != name {
        return Err("begins or ends with a space");
    }
    Ok(())
}

fn text(s: String) -> Option<toml::Value> {
    (!s.is_empty()).then_some(toml::Value::String(s))
}

fn flag(b: bool) -> Option<toml::Value> {
    Some(toml::Value::Boolean(b))
}

pub(super) const KEYS: &[Key] = &[
    Key {
        name: "DAEMON_HOME",
        read: |l, d| {
            d.home = l.absolute_path("DAEMON_HOME");
            if let Some(home) = &d.home
                && let Ok(meta) = std::fs::metadata(home)
                && !meta.is_dir()
            {
                l.fail(
                    "DAEMON_HOME",
                    format!(
                        "{} is not a directory; set it to the node's home directory (the one holding config/ and data/)",
                        home.display()
                    ),
                );
            }
            if d.home.is_none() && l.raw("DAEMON_HOME").is_none() {
                l.problem(
                    "DAEMON_HOME",
                    super::Origin::Missing,
                    "is required: set it to the node's home directory (absolute path)",
                );
            }
        },
        show: |c| c.home.display().to_string(),
        pin: |c| text(c.home.display().to_string()),
    },
    Key {
        name: "DAEMON_NAME",
        read: |l, d| {
            d.name = l.string("DAEMON_NAME");
            match &d.name {
                None if l.raw("DAEMON_NAME").is_none() => l.problem(
                    "DAEMON_NAME",
                    super::Origin::Missing,
                    "is required: set it to the file name of the node binary (e.g. gaiad)",
                ),
                Some(n) => {
                    if let Err(why) = plain_file_name(n) {
                        l.fail("DAEMON_NAME", format!("{n:?} {why}"));
                    }
                }
                None => {}
            }
        },
        show: |c| c.name.clone(),
        pin: |c| text(c.name.clone()),
    },
    Key {
        name: "DAEMON_ALLOW_DOWNLOAD_BINARIES",
        read: |l, d| d.allow_download_binaries = l.boolean("DAEMON_ALLOW_DOWNLOAD_BINARIES", false),
        show: |c| c.allow_download_binaries.to_string(),
        pin: |c| flag(c.allow_download_binaries),
    },
    Key {
        name: "DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM",
        read: |l, d| {
            d.download_must_have_checksum = l.boolean("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM", false)
        },
        show: |c| c.download_must_have_checksum.to_string(),
        pin: |c| flag(c.download_must_have_checksum),
    },
    Key {
        name: "DAEMON_RESTART_AFTER_UPGRADE",
        read: |l, d| d.restart_after_upgrade = l.boolean("DAEMON_RESTART_AFTER_UPGRADE", true),
        show: |c| c.restart_after_upgrade.to_string(),
        pin: |c| flag(c.restart_after_upgrade),
    },
    Key {
        name: "DAEMON_RESTART_DELAY",
        read: |l, d| d.restart_delay = l.duration("DAEMON_RESTART_DELAY"),
        show: |c| c.restart_delay.map(duration::format).unwrap_or_default(),
        pin: |c| text(c.restart_delay.map(duration::format).unwrap_or_default()),
    },
    Key {
        name: "DAEMON_SHUTDOWN_GRACE",
        read: |l, d| {
            d.shutdown_grace = l
                .duration("DAEMON_SHUTDOWN_GRACE")
                .unwrap_or(DEFAULT_SHUTDOWN_GRACE)
        },
        show: |c| duration::format(c.shutdown_grace),
        pin: |c| text(duration::format(c.shutdown_grace)),
    },
    Key {
        name: "DAEMON_POLL_INTERVAL",
        read: |l, d| {
            d.poll_interval = l
                .duration("DAEMON_POLL_INTERVAL")
                .unwrap_or(DEFAULT_POLL_INTERVAL)
        },
        show: |c| duration::format(c.poll_interval),
        pin: |c| text(duration::format(c.poll_interval)),
    },
    Key {
        name: "UNSAFE_SKIP_BACKUP",
        read: |l, d| d.unsafe_skip_backup = l.boolean("UNSAFE_SKIP_BACKUP", false),
        show: |c| c.unsafe_skip_backup.to_string(),
        pin: |c| flag(c.unsafe_skip_backup),
    },
    Key {
        name: "DAEMON_DATA_BACKUP_DIR",
        read: |l, d| d.data_backup_dir = l.absolute_path("DAEMON_DATA_BACKUP_DIR"),
        show: |c| c.data_backup_dir.display().to_string(),
        pin: |c| text(c.data_backup_dir.display().to_string()),
    },
    Key {
        name: "DAEMON_PREUPGRADE_MAX_RETRIES",
        read: |l, d| d.preupgrade_max_retries = l.count("DAEMON_PREUPGRADE_MAX_RETRIES"),
        show: |c| c.preupgrade_max_retries.to_string(),
        pin: |c| Some(toml::Value::Integer(c.preupgrade_max_retries.into())),
    },
    Key {
        name: "DAEMON_GRPC_ADDRESS",
        read: |l, d| {
            d.grpc = l.parsed(
                "DAEMON_GRPC_ADDRESS",
                DEFAULT_GRPC_ADDRESS,
                GrpcAddress::parse,
            )
        },
        show: |c| c.grpc.to_string(),
        pin: |c| text(c.grpc.to_string()),
    },
    Key {
        name: "COSMOVISOR_DISABLE_LOGS",
        read: |l, d| d.disable_logs = l.boolean("COSMOVISOR_DISABLE_LOGS", false),
        show: |c| c.disable_logs.to_string(),
        pin: |c| flag(c.disable_logs),
    },
    Key {
        name: "COSMOVISOR_COLOR_LOGS",
        read: |l, d| d.color_logs = l.boolean("COSMOVISOR_COLOR_LOGS", true),
        show: |c| c.color_logs.to_string(),
        pin: |c| flag(c.color_logs),
    },
    Key {
        name: "COSMOVISOR_TIMEFORMAT_LOGS",
        read: |l, d| d.time_format = time_format(l),
        show: |c| c.time_format.map(TimeFormat::name).unwrap_or("").into(),
        // Set-but-empty is meaningful (no timestamp): it is written even when empty.
        pin: |c| {
            Some(toml::Value::String(
                c.time_format.map(TimeFormat::name).unwrap_or("").into(),
            ))
        },
    },
    Key {
        name: "COSMOVISOR_CUSTOM_PREUPGRADE",
        read: |l, d| {
            d.custom_preupgrade = l.string("COSMOVISOR_CUSTOM_PREUPGRADE");
            if let Some(script) = &d.custom_preupgrade {
                let p = Path::new(script);
                if p.is_absolute()
                    || p.components()
                        .any(|c| !matches!(c, std::path::Component::Normal(_)))
                {
                    l.fail(
                        "COSMOVISOR_CUSTOM_PREUPGRADE",
                        format!("{script:?} must name a script inside $DAEMON_HOME/cosmovisor (a relative path without '..')"),
                    );
                }
            }
        },
        show: |c| c.custom_preupgrade.clone().unwrap_or_default(),
        pin: |c| text(c.custom_preupgrade.clone().unwrap_or_default()),
    },
    Key {
        name: "COSMOVISOR_DISABLE_RECASE",
        read: |l, d| d.disable_recase = l.boolean("COSMOVISOR_DISABLE_RECASE", false),
        show: |c| c.disable_recase.to_string(),
        pin: |c| flag(c.disable_recase),
    },
    Key {
        name: "WASMVISOR_RPC_ADDRESS",
        read: |l, d| {
            d.rpc = l.parsed(
                "WASMVISOR_RPC_ADDRESS",
                DEFAULT_RPC_ADDRESS,
                Endpoint::parse,
            )
        },
        show: |c| c.rpc.to_string(),
        pin: |c| text(c.rpc.to_string()),
    },
    Key {
        name: "WASMVISOR_METRICS_ADDRESS",
        read: |l, d| {
            d.metrics = l
                .string("WASMVISOR_METRICS_ADDRESS")
                .filter(|s| !s.is_empty())
                .and_then(|s| match Endpoint::parse(&s) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        l.fail("WASMVISOR_METRICS_ADDRESS", e.to_string());
                        None
                    }
                })
        },
        show: |c| {
            c.metrics
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default()
        },
        pin: |c| c.metrics.as_ref().and_then(|m| text(m.to_string())),
    },
    Key {
        name: "WASMVISOR_LOG_FORMAT",
        read: |l, d| {
            d.log_format = l.choice(
                "WASMVISOR_LOG_FORMAT",
                LogFormat::Human,
                &[("human", LogFormat::Human), ("json", LogFormat::Json)],
            )
        },
        show: |c| c.log_format.name().into(),
        pin: |c| text(c.log_format.name().into()),
    },
    Key {
        name: "WASMVISOR_WATCH_MODE",
        read: |l, d| {
            d.watch_mode = l.choice("WASMVISOR_WATCH_MODE", WatchMode::Auto, WatchMode::CHOICES)
        },
        show: |c| c.watch_mode.name().into(),
        pin: |c| text(c.watch_mode.name().into()),
    },
    Key {
        name: "WASMVISOR_HALT_HEIGHT",
        read: |l, d| {
            d.halt_height = l.choice(
                "WASMVISOR_HALT_HEIGHT",
                HaltHeight::Before,
                HaltHeight::CHOICES,
            )
        },
        show: |c| c.halt_height.name().into(),
        pin: |c| text(c.halt_height.name().into()),
    },
    Key {
        name: "WASMVISOR_BACKUP_KEEP",
        read: |l, d| {
            d.backup_keep = l.count_or("WASMVISOR_BACKUP_KEEP", super::DEFAULT_BACKUP_KEEP, 1)
        },
        show: |c| c.backup_keep.to_string(),
        pin: |c| Some(toml::Value::Integer(c.backup_keep.into())),
    },
    Key {
        name: "WASMVISOR_ON_FAILED_UPGRADE",
        read: |l, d| {
            d.on_failed_upgrade = l.choice(
                "WASMVISOR_ON_FAILED_UPGRADE",
                OnFailedUpgrade::Exit,
                OnFailedUpgrade::CHOICES,
            )
        },
        show: |c| c.on_failed_upgrade.name().into(),
        pin: |c| text(c.on_failed_upgrade.name().into()),
    },
    Key {
        name: "WASMVISOR_UPGRADE_PROBATION",
        read: |l, d| {
            d.probation = l
                .duration("WASMVISOR_UPGRADE_PROBATION")
                .unwrap_or(super::DEFAULT_PROBATION)
        },
        show: |c| duration::format(c.probation),
        pin: |c| text(duration::format(c.probation)),
    },
    Key {
        name: "WASMVISOR_RESTART_ON_CRASH",
        read: |l, d| d.restart_on_crash = l.boolean("WASMVISOR_RESTART_ON_CRASH", false),
        show: |c| c.restart_on_crash.to_string(),
        pin: |c| flag(c.restart_on_crash),
    },
    Key {
        name: "WASMVISOR_MAX_RESTARTS",
        read: |l, d| d.max_restarts = l.count_or("WASMVISOR_MAX_RESTARTS", 5, 0),
        show: |c| c.max_restarts.to_string(),
        pin: |c| Some(toml::Value::Integer(c.max_restarts.into())),
    },
    Key {
        name: "WASMVISOR_PLUGINS",
        read: |l, d| {
            d.plugins_file = l.absolute_path("WASMVISOR_PLUGINS");
            if let Some(file) = &d.plugins_file {
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
                    l.fail("WASMVISOR_PLUGINS", problem);
                }
            }
        },
        show: |c| {
            c.plugins_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        },
        // The derived default is not pinned into the file.
        pin: |c| {
            c.plugins_file
                .as_ref()
                .and_then(|p| text(p.display().to_string()))
        },
    },
    Key {
        name: "WASMVISOR_PLUGIN_CACHE",
        read: |l, d| d.plugin_cache = l.absolute_path("WASMVISOR_PLUGIN_CACHE"),
        show: |c| c.plugin_cache_dir().display().to_string(),
        pin: |c| {
            c.plugin_cache
                .as_ref()
                .and_then(|p| text(p.display().to_string()))
        },
    },
    Key {
        name: "WASMVISOR_PLAN_POLL",
        read: |l, d| d.plan_poll = plan_poll(l),
        show: |c| c.plan_poll.map_or("off".into(), duration::format),
        pin: |c| text(c.plan_poll.map_or("off".into(), duration::format)),
    },
    Key {
        name: "WASMVISOR_PREFLIGHT_ARGS",
        read: |l, d| {
            if let Some(s) = l.string("WASMVISOR_PREFLIGHT_ARGS") {
                d.preflight_args = preflight_args(&s);
            }
        },
        show: |c| show_preflight_args(&c.preflight_args),
        pin: |c| Some(toml::Value::String(show_preflight_args(&c.preflight_args))),
    },
    Key {
        name: "WASMVISOR_PREPARE_PROPOSED",
        read: |l, d| d.prepare_proposed = l.boolean("WASMVISOR_PREPARE_PROPOSED", false),
        show: |c| c.prepare_proposed.to_string(),
        pin: |c| flag(c.prepare_proposed),
    },
];

/// The shortest `WASMVISOR_PLAN_POLL`: the node's RPC serves the validator first.
const MIN_PLAN_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// `WASMVISOR_PLAN_POLL`: a duration, or `off`.
fn plan_poll(l: &mut Loader<'_>) -> Option<std::time::Duration> {
    const KEY: &str = "WASMVISOR_PLAN_POLL";
    match l.raw(KEY).map(|r| r.value) {
        None => return Some(super::DEFAULT_PLAN_POLL),
        Some(RawValue::Str(s)) if s.eq_ignore_ascii_case("off") => return None,
        Some(_) => {}
    }
    let every = l.duration(KEY)?;
    if every < MIN_PLAN_POLL {
        l.fail(
            KEY,
            format!(
                "{} is too often to ask the node (at least {}); give a longer duration such as 1m, or `off`",
                duration::format(every),
                duration::format(MIN_PLAN_POLL)
            ),
        );
    }
    Some(every)
}

/// `WASMVISOR_PREFLIGHT_ARGS`: the arguments, split at white space; `off` (or nothing) runs
/// no check.
fn preflight_args(s: &str) -> Vec<String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Vec::new();
    }
    s.split_whitespace().map(str::to_string).collect()
}

fn show_preflight_args(args: &[String]) -> String {
    match args.is_empty() {
        true => "off".into(),
        false => args.join(" "),
    }
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
            let names: Vec<&str> = TimeFormat::ALL.iter().map(|f| f.name()).collect();
            loader.fail(
                KEY,
                format!(
                    "{text:?} is not accepted; accepted values: {}",
                    names.join(", ")
                ),
            );
            Some(TimeFormat::Kitchen)
        }
    }
}
