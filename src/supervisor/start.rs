//! Starting a supervisor: the home opened and locked, the journal, signals, reaper, watcher,
//! observer and planner started, the plugins checked (and compiled in the background), then
//! the loop of `mod.rs`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::manual::Manual;
use super::watch::Watcher;
use super::{RunError, StatusSource, Supervisor};
use crate::cancel::Cancel;
use crate::config::Config;
use crate::node::signals::Signals;
use crate::node::{self, Reaper};
use crate::observe::Observer;
use crate::plugin::{Compile, HostConfig, PluginSet};
use crate::tree::{Layout, lock};
use crate::upgrade::journal::Journal;
use crate::upgrade::preflight::Checks;

/// Checks the configured plugins, so a broken configuration or plugin stops wasmvisor before it
/// launches anything, and compiles them in the background: the node's launch does not wait for
/// code only an upgrade runs, and the upgrade's hot path finds them compiled (or waits for it).
fn load_plugins(
    cfg: &Config,
    host: HostConfig,
    cancel: Cancel,
) -> Result<Arc<PluginSet>, RunError> {
    let started = Instant::now();
    let plugins = crate::upgrade::plugins::configured(cfg, None)?;
    let set = crate::upgrade::plugins::load(host, &plugins, cancel, Compile::Background)?;
    let names = |list: Vec<&str>| list.join(",");
    tracing::info!(
        resolvers = names(set.resolvers.iter().map(|p| p.spec.name.as_str()).collect()),
        sources = names(set.sources.iter().map(|p| p.spec.name.as_str()).collect()),
        health = names(set.health.iter().map(|p| p.spec.name.as_str()).collect()),
        notifiers = names(set.notifiers.iter().map(|p| p.spec.name.as_str()).collect()),
        took = %crate::duration::format(started.elapsed()),
        "plugins checked; compiling in the background"
    );
    Ok(Arc::new(set))
}

/// Runs the supervisor until the node exits on its own, a stop signal ends it, or an upgrade
/// completes with `DAEMON_RESTART_AFTER_UPGRADE=false`. Returns the exit status.
pub fn run(cfg: Config, args: Vec<String>, status: Option<StatusSource>) -> Result<i32, RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| RunError::Io {
            what: "cannot start the runtime".into(),
            source,
        })?;
    let result = runtime.block_on(start(cfg, args, status));
    // Blocking work a stop request abandoned (a cancelled copy finishing its chunk) must not
    // hold the exit.
    runtime.shutdown_background();
    result
}

/// Opens the home (locked for this supervisor), starts what watches and serves it, loads the
/// plugins, and supervises.
async fn start(
    cfg: Config,
    args: Vec<String>,
    status: Option<StatusSource>,
) -> Result<i32, RunError> {
    let layout = Layout::open(&cfg)?;
    let _lock = lock::acquire(&cfg.home, &layout.root, &layout.root_path)?;
    if let Some(why) = crate::tree::backup::left_aside(&cfg.home.join("data")) {
        return Err(RunError::DataLeftAside(why));
    }
    let journal = open_journal(&layout)?;
    let observer = observe(&cfg, status).await?;
    let host = host(&cfg, &observer);
    let cancel = Cancel::new();
    let mut signals = Signals::install(cancel.clone()).map_err(|source| RunError::Io {
        what: "cannot handle signals".into(),
        source,
    })?;
    let reaper = Reaper::start().map_err(|source| RunError::Io {
        what: "cannot watch child processes".into(),
        source,
    })?;
    node::adopt_orphans();
    let watcher = Watcher::start(
        &cfg.home.join("data"),
        &layout.data,
        cfg.watch_mode,
        cfg.poll_interval,
    )
    .await;
    let loading = {
        let cfg = cfg.clone();
        crate::plugin::off_runtime(move || load_plugins(&cfg, host, cancel))
    };
    let Some(loaded) = signals.until_stop(loading).await else {
        tracing::info!("stop requested while the plugins load: exiting");
        return Ok(signals.stop_status());
    };
    let plugins = loaded??;
    let notifiers = crate::notifier::start(&plugins, &observer, &cfg.name, &cfg.rpc);
    let seen = journal.state.seen.clone();
    let checks = Arc::new(Checks::default());
    let skip_heights = node::args::skip_heights(&args);
    let ahead = plan_ahead(
        &cfg,
        &layout,
        &plugins,
        &observer,
        &checks,
        &reaper,
        &skip_heights,
    )?;
    on_stop(&mut signals, &ahead, &observer);
    let mut supervisor = Supervisor {
        observer: observer.clone(),
        manual: Manual::new(&cfg, seen),
        plugins,
        skip_heights,
        node_args: args,
        cfg,
        layout,
        journal,
        reaper,
        signals,
        watcher,
        last_complaint: None,
        after_upgrade: None,
        deaths: VecDeque::new(),
        ahead,
        checks,
        held: None,
    };
    let status = supervisor.supervise().await;
    wind_down(&observer, notifiers).await;
    status
}

/// Supervision is over, asked to or not: the notifiers are told, with a grace to deliver.
async fn wind_down(observer: &Observer, notifiers: Option<crate::notifier::Notifiers>) {
    observer.stopping();
    if let Some(notifiers) = notifiers {
        notifiers.stop().await;
    }
    observer.finished();
}

/// A stop request stops the planner and tells the observer at once (from the signal's thread).
fn on_stop(signals: &mut Signals, ahead: &crate::ahead::Handle, observer: &Observer) {
    let observer = observer.clone();
    let stop_planner = ahead.stopper();
    signals.on_stop(Box::new(move || {
        stop_planner();
        observer.stopping();
    }));
}

/// The home's journal; one that cannot be read is said, and a new one begins.
fn open_journal(layout: &Layout) -> Result<Journal, RunError> {
    let root = layout.root.try_clone().map_err(|source| RunError::Io {
        what: "cosmovisor folder".into(),
        source,
    })?;
    let (journal, warning) = Journal::open(root);
    if let Some(w) = warning {
        tracing::warn!(
            "{w}; starting a new journal (the decision from the upgrade files still applies)"
        );
    }
    Ok(journal)
}

/// The run's plugin host, which tells the observer of every call and failed compilation.
fn host(cfg: &Config, observer: &Observer) -> HostConfig {
    let (calls, compiles) = (observer.clone(), observer.clone());
    HostConfig {
        on_call: Some(Box::new(move |plugin, world, result, took| {
            calls.plugin_call(plugin, world.as_str(), result, took)
        })),
        on_compile_failure: Some(Box::new(move |_| compiles.plugin_unusable())),
        ..crate::upgrade::plugins::host_config(cfg)
    }
}

/// Starts the planner: the upcoming upgrades, prepared and checked ahead of their halts.
fn plan_ahead(
    cfg: &Config,
    layout: &Layout,
    plugins: &Arc<PluginSet>,
    observer: &Observer,
    checks: &Arc<Checks>,
    reaper: &Reaper,
    skip_heights: &[u64],
) -> Result<crate::ahead::Handle, RunError> {
    Ok(crate::ahead::spawn(crate::ahead::Context {
        cfg: cfg.clone(),
        plugins: plugins.clone(),
        observer: observer.clone(),
        checks: checks.clone(),
        layout: Arc::new(layout.try_clone().map_err(|source| RunError::Io {
            what: "cosmovisor folder".into(),
            source,
        })?),
        skip_heights: skip_heights.to_vec(),
        reaper: reaper.clone(),
    }))
}

/// The observer of this run: serving `/metrics`, the probes and `/status` (the document
/// `status` gives) when `WASMVISOR_METRICS_ADDRESS` asks for it, keeping systemd's watchdog fed.
async fn observe(cfg: &Config, status: Option<StatusSource>) -> Result<Observer, RunError> {
    let observer = Observer::new();
    if let Some(status) = status {
        observer.set_status_source(status);
    }
    if let Some(address) = &cfg.metrics {
        let listener = tokio::net::TcpListener::bind((address.host.as_str(), address.port))
            .await
            .map_err(|source| RunError::Io {
                what: format!(
                    "cannot serve metrics and probes on {address} (WASMVISOR_METRICS_ADDRESS)"
                ),
                source,
            })?;
        tracing::info!(address = %address, "serving /metrics, /readyz and /livez");
        tokio::spawn(crate::observe::serve(listener, observer.clone()));
    }
    tokio::spawn(observer.clone().keepalive());
    Ok(observer)
}
