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
    let cli = match cli {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let mut config_file = cli.config.clone();
    let cmd = match cli.command {
        Cmd::Run { mut args } => {
            if let Some(f) = take_config_flag(&mut args) {
                config_file = Some(f);
            }
            Cmd::Run { args }
        }
        other => other,
    };
    if let Cmd::Version {
        output,
        cosmovisor_only: true,
    } = cmd
    {
        return report(info::print_version(output, None));
    }
    if let Cmd::Completions { shell } = cmd {
        let shell = match shell {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        };
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command(), "wasmvisor", &mut script);
        return report(crate::output::text(
            String::from_utf8_lossy(&script).into_owned(),
        ));
    }
    if let Cmd::Plugin {
        action: PluginCmd::New { name, lang, world },
        ..
    } = &cmd
    {
        return report(scaffold::new(name, *lang, *world));
    }
    if let Cmd::Demo { keep, block_ms } = cmd {
        logging::init(LogSettings::default());
        return report(demo::run(keep, block_ms));
    }
    // A plugin author's `plugin ... --plugins FILE` needs no node's home.
    let detached = matches!(
        &cmd,
        Cmd::Plugin {
            plugins: Some(_),
            ..
        }
    ) && std::env::var_os("DAEMON_HOME").is_none_or(|h| h.is_empty());
    let loaded = if detached {
        plugin::detached_config(config_file.as_deref())
    } else {
        Config::from_process(config_file.as_deref())
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
    if let Some(f) = cli.log_format {
        settings.format = match f {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    logging::init(settings);
    for w in warnings {
        tracing::warn!("{w}");
    }
    match cmd {
        Cmd::Run { args } => match crate::supervisor::run(cfg, args) {
            Ok(status) => status,
            Err(e) => {
                tracing::error!("{e}");
                crate::output::error(format!("wasmvisor: {e}"));
                1
            }
        },
        Cmd::Init { path } => report(init::init(&cfg, &path)),
        Cmd::Config => report(info::print_config(&cfg)),
        Cmd::Version { output, .. } => report(info::version(&cfg, output)),
        Cmd::AddUpgrade {
            name,
            path,
            force,
            upgrade_height,
        } => report(upgrades::add_upgrade(
            &cfg,
            &name,
            &path,
            force,
            upgrade_height,
        )),
        Cmd::AddBatchUpgrade {
            upgrade_file,
            upgrade_list,
        } => report(upgrades::add_batch_upgrade(
            &cfg,
            upgrade_file.as_deref(),
            upgrade_list.as_deref(),
        )),
        Cmd::ShowUpgradeInfo => report(info::show_upgrade_info(&cfg)),
        Cmd::Status { json } => report(status::print(&cfg, json)),
        Cmd::Backup { action } => report(match action {
            BackupCmd::List { json } => backup::list(&cfg, json),
            BackupCmd::Restore { name } => backup::restore(&cfg, &name),
        }),
        Cmd::PrepareUpgrade { plan } => report(prepare::prepare_upgrade(&cfg, plan.as_deref())),
        Cmd::Plugin { plugins, action } => {
            let over = plugins.as_deref();
            report(match action {
                PluginCmd::List { json } => plugin::list(&cfg, over, json),
                PluginCmd::Check | PluginCmd::Compile => plugin::check(&cfg, over),
                PluginCmd::Call(args) => match plugin::call(&cfg, over, args) {
                    Ok(status) => return status,
                    Err(e) => Err(e),
                },
                PluginCmd::New { .. } => unreachable!("handled above"),
            })
        }
        Cmd::Demo { .. } | Cmd::Completions { .. } => unreachable!("handled above"),
    }
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
