//! Command-line interface: Cosmovisor's commands and flags, plus `status`, `plugin` and `demo`.
//! This file holds the clap types and the dispatch; each command group has its file.

mod backup;
pub mod demo;
mod info;
mod init;
pub(crate) mod plugin;
mod prepare;
mod scaffold;
pub mod status;
mod upgrades;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::logging::{self, LogFormat, LogSettings};

#[derive(Parser, Debug)]
#[command(
    name = "wasmvisor",
    version,
    about = "Supervises a Cosmos SDK node and upgrades it at exactly the right height (a drop-in Cosmovisor replacement)",
    long_about = None,
)]
struct Cli {
    /// Load configuration from this TOML file (environment variables override it).
    #[arg(
        long = "cosmovisor-config",
        short = 'c',
        global = true,
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    /// Format of wasmvisor's own log lines (also WASMVISOR_LOG_FORMAT).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormatArg {
    Human,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// The command line, as clap knows it: for completions and the man page.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create the cosmovisor tree: copy the binary to genesis, point `current` at it, write config.toml.
    Init {
        /// The node binary to install as genesis.
        path: PathBuf,
    },
    /// Run the node with these arguments and upgrade it when it halts for an upgrade.
    #[command(disable_help_flag = true)]
    Run {
        /// Arguments passed to the node unchanged (`--cosmovisor-config FILE` is taken out).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Print every effective configuration value and the derived paths.
    Config,
    /// Print wasmvisor's version and the node's.
    Version {
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
        /// Do not ask the node for its version.
        #[arg(long)]
        cosmovisor_only: bool,
    },
    /// Stage a binary for an upgrade (and, with --upgrade-height, schedule a manual upgrade).
    AddUpgrade {
        /// The upgrade (plan) name.
        name: String,
        /// The binary to stage.
        path: PathBuf,
        /// Replace a binary already staged for this upgrade.
        #[arg(long)]
        force: bool,
        /// Halt the node at this height and upgrade there (a manual upgrade).
        #[arg(long, value_name = "HEIGHT")]
        upgrade_height: Option<u64>,
    },
    /// Stage several binaries and schedule them as manual upgrades.
    AddBatchUpgrade {
        /// A CSV file of `name,path,height` lines.
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "upgrade_list",
            required_unless_present = "upgrade_list"
        )]
        upgrade_file: Option<PathBuf>,
        /// A list of `name:path:height` items separated by commas.
        #[arg(long, value_name = "LIST")]
        upgrade_list: Option<String>,
    },
    /// Print data/upgrade-info.json, or say there is none.
    ShowUpgradeInfo,
    /// Show the current binary, applied and pending upgrades, staged binaries and the last upgrade's timings.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Draw the last upgrade's timeline (the halt, each phase, the chain's first block and
        /// this validator's first vote after it) as an SVG picture into FILE.
        #[arg(long, value_name = "FILE", conflicts_with = "json")]
        timeline: Option<PathBuf>,
    },
    /// Stage the pending upgrade's binary ahead of the halt, with the configured resolvers and sources.
    PrepareUpgrade {
        /// The plan (upgrade-info.json format); default: the pending governance or manual plan.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
    },
    /// List the snapshot backups of data/, or restore one.
    Backup {
        #[command(subcommand)]
        action: BackupCmd,
    },
    /// Inspect, validate, precompile and try the WebAssembly plugins.
    Plugin {
        /// Use this plugin configuration instead of WASMVISOR_PLUGINS / cosmovisor/plugins.toml.
        #[arg(long, value_name = "FILE", global = true)]
        plugins: Option<PathBuf>,
        #[command(subcommand)]
        action: PluginCmd,
    },
    /// Print the completion script for a shell (e.g. `wasmvisor completions bash > /etc/bash_completion.d/wasmvisor`).
    Completions {
        /// bash, zsh or fish.
        shell: CompletionShell,
    },
    /// Run a self-contained demo: a simulated node upgraded twice, genesis → v2 → v3.
    Demo {
        /// Keep the demo's home folder instead of removing it.
        #[arg(long)]
        keep: bool,
        /// Block time of the simulated node, in milliseconds.
        #[arg(long, default_value_t = 250)]
        block_ms: u64,
    },
}

#[derive(Subcommand, Debug)]
enum BackupCmd {
    /// The backups in DAEMON_DATA_BACKUP_DIR: name, upgrade, height, size, age.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Replace data/ by a backup (refused while a supervisor runs on the home).
    Restore {
        /// The backup's name, as `backup list` shows it.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum PluginCmd {
    /// List the configured plugins of every world, with their grants and limits.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Load every plugin: read, check pins, worlds and versions, compile (or load from the cache).
    Check,
    /// Precompile every plugin into the cache (what `check` does, named for scripts).
    Compile,
    /// Call one plugin once and print its answer as JSON (exit 0; 3 when it says no).
    Call(plugin::CallArgs),
    /// Start a plugin project in a new folder NAME: sources, its own copy of the contract,
    /// pinned toolchains, a plugins.toml and a plan to try it with (no home needed).
    New {
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: scaffold::Lang,
        #[arg(long, value_enum, default_value = "resolver")]
        world: scaffold::ScaffoldWorld,
    },
}

/// Takes `--cosmovisor-config FILE` / `--cosmovisor-config=FILE` out of the node's arguments.
pub fn take_config_flag(args: &mut Vec<String>) -> Option<PathBuf> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--cosmovisor-config" && i + 1 < args.len() {
            found = Some(PathBuf::from(args.remove(i + 1)));
            args.remove(i);
        } else if let Some(v) = args[i].strip_prefix("--cosmovisor-config=") {
            found = Some(PathBuf::from(v));
            args.remove(i);
        } else {
            i += 1;
        }
    }
    found
}

/// Entry point of the binary; returns the process exit status.
pub fn main(argv: Vec<OsString>) -> i32 {
    // Before anything else: a stop signal now must wait for `run`'s handlers, not kill us, and
    // no descriptor opened later may land on a closed 0, 1 or 2.
    crate::node::signals::block_forwarded_signals();
    crate::output::ensure_standard_fds();
    let cli = Cli::try_parse_from(argv);
    if !matches!(
        &cli,
        Ok(Cli {
            command: Cmd::Run { .. },
            ..
        })
    ) {
        // Only `run` handles signals; every other command dies by them as usual.
        crate::node::signals::unblock_forwarded_signals();
    }
    match cli {
        Ok(cli) => dispatch(cli),
        Err(e) => {
            let _ = e.print();
            e.exit_code()
        }
    }
}

/// How a command that works on a node's home gets its configuration: from `--cosmovisor-config`
/// and the environment, then with wasmvisor's logging set up as it says.
struct Setup {
    config_file: Option<PathBuf>,
    log_format: Option<LogFormatArg>,
}

impl Setup {
    /// Loads the configuration (`detached`: the one for `plugin --plugins FILE` without a home),
    /// sets up logging, logs the configuration's warnings and runs `command` with it. A
    /// configuration that cannot be loaded is reported, and the exit status is 1.
    fn with_config(self, detached: bool, command: impl FnOnce(Config) -> i32) -> i32 {
        let loaded = if detached {
            plugin::detached_config(self.config_file.as_deref())
        } else {
            Config::from_process(self.config_file.as_deref())
        };
        let (cfg, warnings) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                crate::output::error(format!("wasmvisor: {}", e.to_string().trim_end()));
                return 1;
            }
        };
        let mut settings = LogSettings {
            disabled: cfg.disable_logs,
            color: cfg.color_logs,
            time_format: cfg.time_format,
            format: cfg.log_format,
        };
        if let Some(f) = self.log_format {
            settings.format = match f {
                LogFormatArg::Human => LogFormat::Human,
                LogFormatArg::Json => LogFormat::Json,
            };
        }
        logging::init(settings);
        for w in warnings {
            tracing::warn!("{w}");
        }
        command(cfg)
    }

    /// [`with_config`](Self::with_config) for a command that prints or fails.
    fn report(self, command: impl FnOnce(&Config) -> Result<(), String>) -> i32 {
        self.with_config(false, |cfg| report(command(&cfg)))
    }
}

/// Runs the command line's command; returns the exit status. The commands that need no node's
/// home (`version --cosmovisor-only`, `completions`, `plugin new`, `demo`) read no configuration.
fn dispatch(cli: Cli) -> i32 {
    let mut setup = Setup {
        config_file: cli.config,
        log_format: cli.log_format,
    };
    match cli.command {
        Cmd::Run { mut args } => {
            if let Some(f) = take_config_flag(&mut args) {
                setup.config_file = Some(f);
            }
            setup.with_config(false, |cfg| run(cfg, args))
        }
        Cmd::Version {
            output,
            cosmovisor_only: true,
        } => report(info::print_version(output, None)),
        Cmd::Version { output, .. } => setup.report(|cfg| info::version(cfg, output)),
        Cmd::Completions { shell } => report(completions(shell)),
        Cmd::Demo { keep, block_ms } => {
            logging::init(LogSettings::default());
            report(demo::run(keep, block_ms))
        }
        Cmd::Init { path } => setup.report(|cfg| init::init(cfg, &path)),
        Cmd::Config => setup.report(info::print_config),
        Cmd::AddUpgrade {
            name,
            path,
            force,
            upgrade_height,
        } => setup.report(|cfg| upgrades::add_upgrade(cfg, &name, &path, force, upgrade_height)),
        Cmd::AddBatchUpgrade {
            upgrade_file,
            upgrade_list,
        } => setup.report(|cfg| {
            upgrades::add_batch_upgrade(cfg, upgrade_file.as_deref(), upgrade_list.as_deref())
        }),
        Cmd::ShowUpgradeInfo => setup.report(info::show_upgrade_info),
        Cmd::Status { json, timeline } => setup.report(|cfg| match &timeline {
            Some(out) => status::draw_timeline(cfg, out),
            None => status::print(cfg, json),
        }),
        Cmd::Backup { action } => setup.report(|cfg| match action {
            BackupCmd::List { json } => backup::list(cfg, json),
            BackupCmd::Restore { name } => backup::restore(cfg, &name),
        }),
        Cmd::PrepareUpgrade { plan } => {
            setup.report(|cfg| prepare::prepare_upgrade(cfg, plan.as_deref()))
        }
        Cmd::Plugin { plugins, action } => plugin_command(setup, plugins, action),
    }
}

/// `plugin …`: `new` needs nothing; the others a configuration, which with `--plugins FILE` and
/// no `DAEMON_HOME` is a plugin author's, without a node's home.
fn plugin_command(setup: Setup, plugins: Option<PathBuf>, action: PluginCmd) -> i32 {
    let detached =
        plugins.is_some() && std::env::var_os("DAEMON_HOME").is_none_or(|h| h.is_empty());
    let over = plugins.as_deref();
    match action {
        PluginCmd::New { name, lang, world } => report(scaffold::new(&name, lang, world)),
        PluginCmd::List { json } => {
            setup.with_config(detached, |cfg| report(plugin::list(&cfg, over, json)))
        }
        PluginCmd::Check | PluginCmd::Compile => {
            setup.with_config(detached, |cfg| report(plugin::check(&cfg, over)))
        }
        PluginCmd::Call(args) => setup.with_config(detached, |cfg| {
            plugin::call(&cfg, over, args).unwrap_or_else(|e| report(Err(e)))
        }),
    }
}

/// `run`: the supervisor, whose error is logged as well as printed.
fn run(cfg: Config, args: Vec<String>) -> i32 {
    let status = {
        let cfg = cfg.clone();
        Box::new(move || status::document(&cfg)) as crate::supervisor::StatusSource
    };
    match crate::supervisor::run(cfg, args, Some(status)) {
        Ok(status) => status,
        Err(e) => {
            tracing::error!("{e}");
            crate::output::error(format!("wasmvisor: {e}"));
            1
        }
    }
}

/// `completions SHELL`: the script clap writes. Each shell's generator is named directly:
/// through `clap_complete::Shell` every shell clap knows (Elvish, PowerShell) would be linked.
fn completions(shell: CompletionShell) -> Result<(), String> {
    use clap_complete::shells::{Bash, Fish, Zsh};
    let mut script = Vec::new();
    let (cmd, name) = (&mut command(), "wasmvisor");
    match shell {
        CompletionShell::Bash => clap_complete::generate(Bash, cmd, name, &mut script),
        CompletionShell::Zsh => clap_complete::generate(Zsh, cmd, name, &mut script),
        CompletionShell::Fish => clap_complete::generate(Fish, cmd, name, &mut script),
    }
    crate::output::text(String::from_utf8_lossy(&script).into_owned())
}

fn report(result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            crate::output::error(format!("wasmvisor: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_flag_is_taken_out_of_node_args() {
        let mut args: Vec<String> = ["start", "--cosmovisor-config", "/c.toml", "--home", "/h"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(take_config_flag(&mut args), Some(PathBuf::from("/c.toml")));
        assert_eq!(args, vec!["start", "--home", "/h"]);
        let mut args: Vec<String> = ["start", "--cosmovisor-config=/d.toml"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(take_config_flag(&mut args), Some(PathBuf::from("/d.toml")));
        assert_eq!(args, vec!["start"]);
    }
}
