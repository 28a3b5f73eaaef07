//! `wasmvisor run`: launch the node, watch for its halt, upgrade, relaunch.
//!
//! The loop asks [`decide`](crate::decide) before every launch, so a supervisor started (or
//! restarted) at any moment first applies a pending upgrade, never runs a binary past its plan,
//! and never applies a plan twice.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::decide::{Decision, Files, Settled};
use crate::journal::{Journal, Refusal, SeenHeight};
use crate::layout::{Current, Layout, LayoutError};
use crate::lock;
use crate::node_record::{self, Leftover, NodeRecord};
use crate::plan::{Plan, Read};
use crate::plugin::PluginSet;
use crate::process::{self, Child, Exit, Reaper};
use crate::rpc::Endpoint;
use crate::upgrade::UpgradeError;
use crate::watch::Watcher;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Plugins(String),
    #[error("upgrade {name:?} at height {height} cannot be applied: {reason}")]
    Refused {
        name: String,
        height: u64,
        reason: String,
    },
    #[error(
        "upgrade {name:?} at height {height} was refused {ago} and nothing it depends on has changed since (the configuration, plugins.toml, the binary in upgrades/{dir}/bin): {reason}"
    )]
    StillRefused {
        name: String,
        height: u64,
        dir: String,
        ago: String,
        reason: String,
    },
    #[error(
        "the node left running by a previous supervisor (pid {pid}, recorded in {file}) did not stop, even on SIGKILL; stop it by hand, then start wasmvisor again"
    )]
    LeftoverAlive { pid: i32, file: String },
    #[error(
        "the node exited ({status}) while a manual upgrade to {name:?} was pending, before its application reported height {last}, the last block before the upgrade (last seen: {seen}); not upgrading: start wasmvisor again to relaunch the node with the same --halt-height"
    )]
    StoppedShort {
        name: String,
        last: u64,
        seen: String,
        status: Exit,
    },
}

/// How one run of the node ended.
enum Ended {
    /// Supervision is over: exit with this status.
    Exit(i32),
    /// A plan is due: the node (still alive, or already exited) must give way to the upgrade.
    Upgrade {
        plan: Plan,
        manual: bool,
        node: Child,
    },
    /// Launch again (the halt height changed).
    Relaunch,
}

pub struct Supervisor {
    pub(crate) cfg: Config,
    pub(crate) layout: Layout,
    pub(crate) journal: Journal,
    pub(crate) reaper: Reaper,
    pub(crate) signals: mpsc::UnboundedReceiver<Signal>,
    watcher: Watcher,
    args: Vec<String>,
    skip_heights: Vec<u64>,
    rpc: Endpoint,
    chain_height: Option<u64>,
    /// The stop signal received, if any: no upgrade or relaunch happens after it.
    pub(crate) stop: Option<Signal>,
    /// The last complaint about upgrade-info.json, so a bad file is reported once, not per event.
    last_complaint: Option<String>,
    /// When set, the next launch is the one that completes an upgrade: its duration is journaled.
    launch_after_upgrade: bool,
    /// The plugins, loaded (and compiled, or read from the cache) before the first launch.
    pub(crate) plugins: Arc<PluginSet>,
    /// An upgrade whose node the health checks must judge at its next launch.
    pub(crate) health_due: Option<Plan>,
    /// Manual plans whose binary was already prepared ahead of their height.
    prepared: std::collections::BTreeSet<String>,
    /// The application height a previous supervisor saw for a pending manual upgrade.
    seen: Option<SeenHeight>,
    /// Cancels plugin calls, downloads and copies on a stop request.
    pub(crate) cancel: crate::cancel::Cancel,
}

/// Loads the configured plugins, so a broken configuration or plugin stops wasmvisor before it
/// launches anything, and the upgrade's hot path finds them compiled.
fn load_plugins(cfg: &Config) -> Result<Arc<PluginSet>, RunError> {
    let started = Instant::now();
    let plugins = crate::plugin_commands::plugins(cfg, None).map_err(RunError::Plugins)?;
    let set = crate::plugin_commands::load(cfg, &plugins).map_err(RunError::Plugins)?;
    let names = |list: &[crate::plugin::Loaded]| {
        list.iter()
            .map(|p| p.spec.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    tracing::info!(
        resolvers = names(&set.resolvers),
        sources = names(&set.sources),
        health = names(&set.health),
        took = %crate::duration::format(started.elapsed()),
        "plugins ready"
    );
    Ok(Arc::new(set))
}

/// How long a leftover node may take to go after SIGKILL before wasmvisor gives up on it.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Runs the supervisor until the node exits on its own, a stop signal ends it, or an upgrade
/// completes with `DAEMON_RESTART_AFTER_UPGRADE=false`. Returns the exit status.
pub fn run(cfg: Config, args: Vec<String>) -> Result<i32, RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| RunError::Io {
            what: "cannot start the runtime".into(),
            source,
        })?;
    let result = runtime.block_on(async move {
        let layout = Layout::open(&cfg)?;
        let _lock = lock::acquire(&cfg.home, &layout.root, &layout.root_path)?;
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
        let signals = process::signals().map_err(|source| RunError::Io {
            what: "cannot handle signals".into(),
            source,
        })?;
        // The handlers are in place: a stop signal that arrived while wasmvisor was starting
        // (blocked since the first instruction) is delivered now, to them.
        process::unblock_forwarded_signals();
        let reaper = Reaper::start().map_err(|source| RunError::Io {
            what: "cannot watch child processes".into(),
            source,
        })?;
        process::adopt_orphans();
        let watcher = Watcher::start(
            &cfg.home.join("data"),
            &layout.data,
            cfg.watch_mode,
            cfg.poll_interval,
        )
        .await;
        let rpc = Endpoint::parse(&cfg.rpc_address).map_err(RunError::Plugins)?;
        let (plugins, signals) = {
            let mut signals = signals;
            let loading = {
                let cfg = cfg.clone();
                crate::plugin::off_runtime(move || load_plugins(&cfg))
            };
            tokio::pin!(loading);
            let loaded = loop {
                tokio::select! {
                    loaded = &mut loading => break Ok(loaded),
                    Some(sig) = signals.recv() => {
                        if process::is_stop_signal(sig) {
                            tracing::info!(signal = sig.as_str(), "stop requested while the plugins load: exiting");
                            break Err(sig);
                        }
                    }
                }
            };
            match loaded {
                Ok(loaded) => (loaded.map_err(RunError::Plugins)??, signals),
                Err(sig) => return Ok(128 + sig as i32),
            }
        };
        let seen = journal.state.seen.clone();
        let mut supervisor = Supervisor {
            cancel: plugins.cancel.clone(),
            plugins,
            health_due: None,
            prepared: Default::default(),
            skip_heights: skip_heights(&args),
            cfg,
            layout,
            journal,
            reaper,
            signals,
            watcher,
            args,
            rpc,
            chain_height: None,
            seen,
            stop: None,
            last_complaint: None,
            launch_after_upgrade: false,
        };
        supervisor.supervise().await
    });
    // Blocking work a stop request abandoned (a cancelled copy finishing its chunk) must not
    // hold the exit.
    runtime.shutdown_background();
    result
}

impl Supervisor {
    async fn supervise(&mut self) -> Result<i32, RunError> {
        if self.poll_stop() {
            return Ok(self.stop_status());
        }
        self.stop_leftover_node().await?;
        if self.poll_stop() {
            return Ok(self.stop_status());
        }
        if self.journal.active().is_some() && !self.resume().await? {
            return Ok(self.stop_status());
        }
        loop {
            if self.poll_stop() {
                return Ok(self.stop_status());
            }
            let ended = match self.decision() {
                Decision::Upgrade { plan, manual } => {
                    if !self.upgrade_recorded(plan, manual, None).await? {
                        return Ok(self.stop_status());
                    }
                    if !self.cfg.restart_after_upgrade {
                        tracing::info!(
                            "upgrade complete; DAEMON_RESTART_AFTER_UPGRADE=false, exiting"
                        );
                        return Ok(0);
                    }
                    continue;
                }
                Decision::Refuse { plan, reason } => {
                    return Err(RunError::Refused {
                        name: crate::output::shorten(&plan.name, 64),
                        height: plan.height,
                        reason,
                    });
                }
                Decision::Launch { halt_at } => self.run_node(halt_at).await?,
            };
            match ended {
                Ended::Exit(status) => return Ok(status),
                Ended::Relaunch => continue,
                Ended::Upgrade { plan, manual, node } => {
                    if !self.upgrade_recorded(plan, manual, Some(node)).await? {
                        return Ok(self.stop_status());
                    }
                    if !self.cfg.restart_after_upgrade {
                        tracing::info!(
                            "upgrade complete; DAEMON_RESTART_AFTER_UPGRADE=false, exiting"
                        );
                        return Ok(0);
                    }
                }
            }
        }
    }

    /// Runs an upgrade; a refusal is journaled with what it depended on, so a restart retries it
    /// only once something changed.
    async fn upgrade_recorded(
        &mut self,
        plan: Plan,
        manual: bool,
        node: Option<Child>,
    ) -> Result<bool, RunError> {
        match self.upgrade(plan, manual, node).await {
            Err(e) if e.is_refusal() => {
                if let Some(active) = self.journal.active().cloned() {
                    let refusal = Refusal {
                        reason: e.to_string(),
                        at_unix_ms: crate::journal::unix_ms(),
                        inputs: self.refusal_inputs(&active.dir_name),
                    };
                    if let Err(je) = self.journal.refuse(refusal) {
                        tracing::warn!("cannot journal the refusal: {je}");
                    }
                }
                Err(e.into())
            }
            other => Ok(other?),
        }
    }

    /// A digest of what a refused upgrade depended on and the operator can change: the
    /// configuration, the plugin configuration, and the upgrade folder's binary.
    fn refusal_inputs(&self, dir: &str) -> String {
        use sha2::Digest;
        use std::os::unix::fs::MetadataExt;
        let mut h = sha2::Sha256::new();
        for (key, value) in self.cfg.values() {
            h.update(format!("{key}={value}\n"));
        }
        if let Some(path) = self.cfg.plugins_path() {
            h.update(crate::fsutil::read_regular_path(&path, 1 << 20).unwrap_or_default());
        }
        let binary = self.layout.binary_path(&Current::Upgrade(dir.to_string()));
        if let Ok(m) = std::fs::metadata(&binary) {
            h.update(format!(
                "{} {} {} {} {}",
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.mode()
            ));
        }
        hex::encode(h.finalize())
    }

    fn stop_status(&self) -> i32 {
        self.stop.map_or(0, |s| 128 + s as i32)
    }

    /// Takes any stop signal that arrived since the last look. Other signals have no node to go to.
    pub(crate) fn poll_stop(&mut self) -> bool {
        while let Ok(sig) = self.signals.try_recv() {
            self.note_signal(sig);
        }
        self.stop.is_some()
    }

    pub(crate) fn note_signal(&mut self, sig: Signal) {
        if process::is_stop_signal(sig) && self.stop.is_none() {
            tracing::info!(
                signal = sig.as_str(),
                "stop requested: no upgrade or relaunch will follow"
            );
            self.stop = Some(sig);
            self.cancel.cancel();
        }
    }

    /// Awaits `work` unless a stop request comes first: then plugin calls, downloads and copies
    /// are cancelled and `None` is returned at once. Other signals have no node to go to.
    pub(crate) async fn until_stop<T>(
        &mut self,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        if self.poll_stop() {
            return None;
        }
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Some(out),
                Some(sig) = self.signals.recv() => {
                    self.note_signal(sig);
                    if self.stop.is_some() {
                        return None;
                    }
                }
            }
        }
    }

    /// Reads the files and decides. Problems with the files are logged, never fatal.
    fn decision(&mut self) -> Decision {
        let files = match Files::read(&self.layout) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("{e}");
                return Decision::Launch { halt_at: None };
            }
        };
        self.complain_about(&files.upgrade_info);
        if let Some(e) = &files.batch_error {
            tracing::error!("{e}; manual upgrades are ignored until it is fixed");
        }
        let layout = &self.layout;
        let dir_name = |name: &str| layout.dir_name(name).map_err(|e| e.to_string());
        let chain_height = self.chain_height.or_else(|| {
            // What a previous supervisor saw of the pending manual plan still holds: an
            // application height never goes back.
            let seen = self.seen.as_ref()?;
            files
                .batch
                .iter()
                .any(|p| p.name == seen.upgrade && p.height == seen.upgrade_height)
                .then_some(seen.app_height)
        });
        let snapshot = files.snapshot(&self.skip_heights, chain_height, &dir_name);
        if let Some((plan, Some(Settled::Skipped))) = snapshot.governance() {
            tracing::info!(upgrade = %plan.name, height = plan.height, "height is in --unsafe-skip-upgrades; not upgrading");
        }
        snapshot.decide()
    }

    fn complain_about(&mut self, info: &Read) {
        let complaint = match info {
            Read::Invalid(reason) => Some(reason.clone()),
            _ => None,
        };
        if complaint != self.last_complaint {
            if let Some(reason) = &complaint {
                tracing::error!(
                    file = %self.layout.upgrade_info_path().display(),
                    "ignoring an invalid upgrade plan: {reason}; fix or remove the file (the node rewrites it at its next halt)"
                );
            }
            self.last_complaint = complaint;
        }
    }

    /// Launches the current binary and supervises it until something ends this run.
    async fn run_node(&mut self, halt_at: Option<Plan>) -> Result<Ended, RunError> {
        let current = self.layout.current()?;
        self.layout.check_binary(&current)?;
        let path = self.layout.binary_path(&current);
        let mut args = self.args.clone();
        if let Some(plan) = &halt_at {
            let flag = self.cfg.halt_height.flag_for(plan.height);
            insert_halt_height(&mut args, flag);
            tracing::info!(
                upgrade = %plan.name,
                height = plan.height,
                halt_height = flag,
                semantics = self.cfg.halt_height.name(),
                "manual upgrade pending: the node will stop after block {}",
                plan.height - 1
            );
        }
        if self.launch_after_upgrade {
            self.journal.checkpoint("launch");
        }
        let started = Instant::now();
        let mut cmd = Command::new(&path);
        cmd.args(&args);
        let mut node = self
            .reaper
            .spawn(&mut cmd, true)
            .map_err(|source| RunError::Spawn {
                path: path.clone(),
                source,
            })?;
        let spawn_took = started.elapsed();
        match NodeRecord::of(node.pid) {
            Some(record) => {
                if let Err(e) = record.write(&self.layout.root) {
                    tracing::warn!("cannot record the node in {}: {e}", node_record::NODE_FILE);
                }
            }
            None => tracing::warn!("the node exited as soon as it started"),
        }
        tracing::info!(binary = %path.display(), pid = node.pid.as_raw(), version = current.label(), "node started");
        if std::mem::take(&mut self.launch_after_upgrade) {
            tracing::info!(phase = "launch", duration = %crate::duration::format(spawn_took), "phase done");
            if let Err(e) = self.journal.record_launch(spawn_took) {
                tracing::warn!("cannot journal the launch: {e}");
            }
        }
        if let Some(plan) = &halt_at {
            self.prepare_ahead(plan);
        }

        let mut health = self.health_due.take().map(|plan| {
            self.journal.checkpoint("health");
            tokio::spawn(health_loop(self.plugins.clone(), plan, started))
        });
        let (height_tx, mut height_rx) = watch::channel(self.chain_height);
        let poller = halt_at
            .as_ref()
            .map(|plan| tokio::spawn(poll_height(self.rpc.clone(), plan.height, height_tx)));
        // A manual halt is due once the application reports the block before it: the node
        // can go no further, so there is nothing to wait for.
        let halt_reached = |height: Option<u64>| {
            halt_at
                .as_ref()
                .is_some_and(|p| height.is_some_and(|h| h + 1 >= p.height))
        };
        let mut kill_at: Option<tokio::time::Instant> = None;
        let mut recheck: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(20);

        let ended = loop {
            tokio::select! {
                exit = node.wait() => {
                    self.node_gone().await;
                    // The poller may have seen a height that this loop has not taken yet.
                    self.note_height(*height_rx.borrow_and_update(), halt_at.as_ref());
                    break self.after_exit(exit, halt_at.as_ref(), node).await;
                }
                Some(sig) = self.signals.recv() => {
                    node.signal(sig);
                    self.note_signal(sig);
                    if self.stop.is_some() && kill_at.is_none() {
                        kill_at = Some(tokio::time::Instant::now() + self.cfg.shutdown_grace);
                    }
                }
                _ = sleep_until(kill_at) => {
                    tracing::warn!(grace = %crate::duration::format(self.cfg.shutdown_grace), "the node did not stop within the shutdown grace; sending SIGKILL");
                    node.signal(Signal::SIGKILL);
                    kill_at = None;
                }
                verdict = async { health.as_mut().expect("guarded").await }, if health.is_some() => {
                    health = None;
                    let Ok(verdict) = verdict else { continue };
                    if self.on_health(verdict) {
                        node.stop(self.cfg.shutdown_grace).await;
                        self.node_gone().await;
                        break Ended::Exit(HEALTH_EXIT_CODE);
                    }
                }
                Ok(()) = height_rx.changed() => {
                    self.note_height(*height_rx.borrow_and_update(), halt_at.as_ref());
                    if halt_reached(self.chain_height) && self.stop.is_none() {
                        recheck = Some(tokio::time::Instant::now());
                    }
                }
                _ = self.watcher.changed(), if self.stop.is_none() => {
                    recheck = Some(tokio::time::Instant::now());
                }
                _ = sleep_until(recheck), if self.stop.is_none() => {
                    recheck = None;
                    if matches!(self.layout.read_upgrade_info(), Read::NotYet) {
                        // Half-written: the writer is not done. Look again shortly.
                        recheck = Some(tokio::time::Instant::now() + backoff);
                        backoff = (backoff * 2).min(self.cfg.poll_interval);
                        continue;
                    }
                    backoff = Duration::from_millis(20);
                    match self.decision() {
                        Decision::Upgrade { plan, manual } => {
                            tracing::info!(upgrade = %plan.name, height = plan.height, mono_ns = process::monotonic_ns(), "upgrade detected");
                            break Ended::Upgrade { plan, manual, node };
                        }
                        Decision::Launch { halt_at: new } if new.as_ref().map(|p| p.height) != halt_at.as_ref().map(|p| p.height) => {
                            tracing::info!(
                                halt_height = new.as_ref().map(|p| p.height),
                                "manual upgrades changed: restarting the node so it halts at the right height"
                            );
                            node.stop(self.cfg.shutdown_grace).await;
                            self.node_gone().await;
                            break Ended::Relaunch;
                        }
                        Decision::Refuse { plan, reason } => {
                            tracing::error!(upgrade = %plan.name, "cannot apply this upgrade: {reason}");
                        }
                        Decision::Launch { .. } => {}
                    }
                }
            }
        };
        if let Some(poller) = poller {
            poller.abort();
        }
        if let Some(health) = health {
            health.abort();
            tracing::warn!("the node's run ended before the health check gave its verdict");
        }
        Ok(ended)
    }

    /// The node has exited: forget its record and stop whatever it left behind.
    pub(crate) async fn node_gone(&mut self) {
        node_record::clear(&self.layout.root);
        self.reaper.stop_strays(self.cfg.shutdown_grace).await;
    }

    /// Takes a height the poller read, and keeps it in the journal while a manual upgrade is
    /// near, so a restart knows how far the node got.
    fn note_height(&mut self, height: Option<u64>, halt_at: Option<&Plan>) {
        self.chain_height = height;
        if let (Some(h), Some(plan)) = (height, halt_at)
            && h + HEIGHT_KEPT_WITHIN >= plan.height
        {
            let seen = SeenHeight {
                upgrade: plan.name.clone(),
                upgrade_height: plan.height,
                app_height: h,
            };
            if let Err(e) = self.journal.record_seen(seen.clone()) {
                tracing::warn!("cannot journal the node's height: {e}");
            }
            self.seen = Some(seen);
        }
    }

    /// The node exited without being asked to. Older SDKs exit at the upgrade halt (and at
    /// `--halt-height`): an upgrade is due if the files (and the last height read) say so.
    /// Anything else ends supervision with the node's status.
    async fn after_exit(&mut self, exit: Exit, halt_at: Option<&Plan>, node: Child) -> Ended {
        if self.stop.is_some() {
            tracing::info!(status = %exit, "node stopped");
            return Ended::Exit(exit.code());
        }
        // The node writes upgrade-info.json before it exits; a half-written file settles quickly.
        for _ in 0..20 {
            if !matches!(self.layout.read_upgrade_info(), Read::NotYet) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match self.decision() {
            Decision::Upgrade { plan, manual } => {
                tracing::info!(upgrade = %plan.name, height = plan.height, status = %exit, mono_ns = process::monotonic_ns(), "node halted for the upgrade");
                Ended::Upgrade { plan, manual, node }
            }
            _ => {
                if let Some(plan) = halt_at {
                    // Relaunching is not safe here: a node that executes its halt height (SDK
                    // v0.47) would execute one more block with the old binary.
                    let error = RunError::StoppedShort {
                        name: plan.name.clone(),
                        last: plan.height - 1,
                        seen: self.chain_height.map_or("none".into(), |h| h.to_string()),
                        status: exit,
                    };
                    tracing::error!("{error} (node RPC {})", self.cfg.rpc_address);
                    return Ended::Exit(if exit.success() { 1 } else { exit.code() });
                }
                if exit.success() {
                    tracing::info!(status = %exit, "node exited");
                } else {
                    tracing::error!(status = %exit, "node exited with an error; passing its status on");
                }
                Ended::Exit(exit.code())
            }
        }
    }

    /// A supervisor killed while its node ran leaves the node behind (it runs in its own process
    /// group). Stop it before anything else, so two nodes never share a data folder — after
    /// checking that the record names a node wasmvisor launched, and never waiting unbounded.
    async fn stop_leftover_node(&mut self) -> Result<(), RunError> {
        match node_record::leftover(&self.layout.root) {
            Leftover::None => {}
            Leftover::Foreign(why) => {
                tracing::warn!(
                    file = node_record::NODE_FILE,
                    "ignoring the record of a leftover node: {why}"
                );
            }
            Leftover::Running(record) => {
                tracing::warn!(
                    pid = record.pid,
                    "a node left running by a previous supervisor is still alive; stopping it first"
                );
                let grace = self.cfg.shutdown_grace;
                let signals = &mut self.signals;
                let mut stop = None;
                let gone = node_record::stop(&record, grace, KILL_WAIT, || {
                    while let Ok(sig) = signals.try_recv() {
                        if process::is_stop_signal(sig) {
                            stop = Some(sig);
                        }
                    }
                    stop.is_some()
                })
                .await;
                if let Some(sig) = stop {
                    self.note_signal(sig);
                }
                if !gone {
                    return Err(RunError::LeftoverAlive {
                        pid: record.pid,
                        file: node_record::NODE_FILE.into(),
                    });
                }
            }
        }
        node_record::clear(&self.layout.root);
        Ok(())
    }

    /// Finishes or drops an upgrade a previous supervisor was interrupted in. Once `current` was
    /// switched, the upgrade is finished (pre-upgrade, commit). Before that, the files decide
    /// again: a plan that is gone, skipped or superseded is dropped, and a refused one is tried
    /// again only if something it depended on changed. Returns false if a stop request
    /// interrupted it again.
    async fn resume(&mut self) -> Result<bool, RunError> {
        let active = self.journal.active().cloned().expect("checked by caller");
        let current = self.layout.current()?;
        if current == Current::Upgrade(active.dir_name.clone()) {
            tracing::warn!(upgrade = %active.plan.name, phase = %active.phase, "resuming an upgrade that was interrupted after the switch");
            self.journal
                .begin(&active.plan, &active.dir_name, &active.from)
                .map_err(|source| RunError::Io {
                    what: "cannot write the journal".into(),
                    source,
                })?;
            return Ok(self.finish_after_swap(active.plan.clone()).await?);
        }
        match self.decision() {
            Decision::Upgrade { plan, manual } if plan == active.plan => {
                if let Some(refused) = &active.refused
                    && refused.inputs == self.refusal_inputs(&active.dir_name)
                {
                    return Err(RunError::StillRefused {
                        name: plan.name,
                        height: plan.height,
                        dir: active.dir_name,
                        ago: ago(refused.at_unix_ms),
                        reason: refused.reason.clone(),
                    });
                }
                tracing::warn!(upgrade = %plan.name, phase = %active.phase, "resuming an upgrade that was interrupted");
                self.upgrade_recorded(plan, manual, None).await
            }
            _ => {
                tracing::warn!(
                    upgrade = %active.plan.name,
                    height = active.plan.height,
                    "the upgrade a previous supervisor began is no longer due (its plan file is gone, its height is skipped, or a later upgrade is applied): dropping it"
                );
                self.journal.drop_active().map_err(|source| RunError::Io {
                    what: "cannot write the journal".into(),
                    source,
                })?;
                Ok(true)
            }
        }
    }

    /// Stages a manual plan's binary in the background while the node runs towards its height,
    /// so the upgrade finds it there (once per plan and supervisor).
    fn prepare_ahead(&mut self, plan: &Plan) {
        if !self.prepared.insert(plan.name.clone()) {
            return;
        }
        let (set, cfg, plan) = (self.plugins.clone(), self.cfg.clone(), plan.clone());
        tokio::spawn(async move {
            let name = plan.name.clone();
            let result =
                crate::plugin::off_runtime(move || crate::plugin::set::prepare(&set, &cfg, &plan))
                    .await
                    .and_then(|r| r);
            match result {
                Ok(done) => tracing::info!(upgrade = %name, "prepared ahead of the halt: {done}"),
                Err(e) => {
                    tracing::warn!(upgrade = %name, "cannot prepare ahead of the halt (the upgrade will try again): {e}")
                }
            }
        });
    }

    /// Logs and journals the health verdict. Returns true if the configuration says to stop.
    fn on_health(&mut self, verdict: crate::journal::HealthRecord) -> bool {
        let exit = !verdict.healthy
            && self
                .plugins
                .health
                .iter()
                .any(|h| h.spec.on_unhealthy == crate::plugin::OnUnhealthy::Exit);
        if verdict.healthy {
            tracing::info!(
                after_ms = verdict.after_ms,
                first_answer_ms = verdict.first_answer_ms,
                checks = verdict.checks,
                "upgraded node is healthy: {}",
                verdict.detail
            );
        } else {
            tracing::error!(
                after_ms = verdict.after_ms,
                checks = verdict.checks,
                "upgraded node is UNHEALTHY: {}{}",
                verdict.detail,
                if exit {
                    "; on-unhealthy = exit: stopping the node"
                } else {
                    ""
                }
            );
        }
        if let Err(e) = self.journal.record_health(verdict) {
            tracing::warn!("cannot journal the health verdict: {e}");
        }
        exit
    }

    pub(crate) fn mark_launch_after_upgrade(&mut self) {
        self.launch_after_upgrade = true;
    }
}

/// Heights read within this many blocks of a manual upgrade are kept in the journal.
const HEIGHT_KEPT_WITHIN: u64 = 4;

/// How long ago a Unix time in milliseconds was, in words.
fn ago(unix_ms: u64) -> String {
    let secs = crate::journal::unix_ms().saturating_sub(unix_ms) / 1000;
    format!(
        "{} ago",
        crate::duration::format(Duration::from_secs(secs.max(1)))
    )
}

/// Sleeps until `at` (forever for `None`). A moment already reached resolves at once: a timer
/// would wait for the timer wheel's next millisecond tick, which is most of the detection
/// latency after an inotify event.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) if at <= tokio::time::Instant::now() => {}
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Exit status when the health check fails and `on-unhealthy = "exit"`.
pub const HEALTH_EXIT_CODE: i32 = 3;

/// Asks the health checks every interval until one verdict is final or the deadline passes.
async fn health_loop(
    set: Arc<PluginSet>,
    plan: Plan,
    launched: Instant,
) -> crate::journal::HealthRecord {
    use crate::plugin::Health;
    let interval = set
        .health
        .iter()
        .map(|h| h.spec.interval)
        .min()
        .unwrap_or(Duration::from_secs(2));
    let deadline = set
        .health
        .iter()
        .map(|h| h.spec.deadline)
        .max()
        .unwrap_or(Duration::from_secs(300));
    let ms = |d: Duration| crate::journal::ms(d);
    let mut first_answer = None;
    for attempt in 1u32.. {
        let context = crate::plugin::HealthContext {
            plan: crate::plugin::Plan::from(&plan),
            elapsed_ms: launched.elapsed().as_millis() as u64,
            attempt,
        };
        let s = set.clone();
        let answer = crate::plugin::off_runtime(move || s.check(&context))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        first_answer.get_or_insert_with(|| ms(launched.elapsed()));
        let record = |healthy: bool, detail: String| crate::journal::HealthRecord {
            healthy,
            detail,
            after_ms: ms(launched.elapsed()),
            first_answer_ms: first_answer,
            checks: attempt,
        };
        let last = match answer {
            Ok(Health::Healthy(t)) => return record(true, t),
            Ok(Health::Unhealthy(t)) => return record(false, t),
            Ok(Health::Pending(t)) => {
                tracing::debug!(attempt, "health: {t}");
                t
            }
            Err(e) => {
                tracing::warn!("{e}");
                e
            }
        };
        if launched.elapsed() + interval > deadline {
            return record(
                false,
                format!(
                    "no healthy answer within {}; last: {last}",
                    crate::duration::format(deadline)
                ),
            );
        }
        tokio::time::sleep(interval).await;
    }
    unreachable!("the loop returns")
}

/// Follows the application's height while a manual upgrade is pending, faster as the height
/// nears, so the last block before the upgrade (H - 1) is seen at once. Until this run's RPC first
/// answers (for up to a minute), it polls quickly: a node that halts and exits (SDK v0.47) keeps
/// its RPC up only briefly.
async fn poll_height(rpc: Endpoint, halt: u64, tx: watch::Sender<Option<u64>>) {
    let started = Instant::now();
    let mut answered = false;
    loop {
        let period = match *tx.borrow() {
            _ if !answered && started.elapsed() < Duration::from_secs(60) => {
                Duration::from_millis(25)
            }
            Some(h) if h + 4 >= halt => Duration::from_millis(25),
            Some(h) if h + 20 >= halt => Duration::from_millis(250),
            _ => Duration::from_secs(1),
        };
        if let Ok(h) = rpc.app_height(Duration::from_millis(500)).await {
            answered = true;
            tx.send_if_modified(|old| {
                let changed = *old != Some(h);
                *old = Some(h);
                changed
            });
        }
        tokio::time::sleep(period).await;
    }
}

/// Adds `--halt-height H` to the node's arguments, before a `--` terminator if there is one.
fn insert_halt_height(args: &mut Vec<String>, height: u64) {
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.splice(at..at, ["--halt-height".to_string(), height.to_string()]);
}

/// Heights given to the node with `--unsafe-skip-upgrades` (`--unsafe-skip-upgrades 10 20`,
/// `--unsafe-skip-upgrades=10,20`, repeated flags).
pub fn skip_heights(args: &[String]) -> Vec<u64> {
    let mut heights = Vec::new();
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        let flag = arg.trim_start_matches('-');
        if !arg.starts_with('-') {
            continue;
        }
        if let Some(values) = flag.strip_prefix("unsafe-skip-upgrades=") {
            heights.extend(
                values
                    .split(',')
                    .filter_map(|v| v.trim().parse::<u64>().ok()),
            );
        } else if flag == "unsafe-skip-upgrades" {
            while let Some(next) = iter.peek() {
                if next.starts_with('-') {
                    break;
                }
                let parsed: Vec<u64> = next
                    .split(',')
                    .filter_map(|v| v.trim().parse().ok())
                    .collect();
                if parsed.is_empty() {
                    break;
                }
                heights.extend(parsed);
                iter.next();
            }
        }
    }
    heights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn skip_heights_in_every_form() {
        let args = strings(&[
            "start",
            "--unsafe-skip-upgrades",
            "10",
            "20",
            "--home",
            "/h",
            "--unsafe-skip-upgrades=30,40",
            "-unsafe-skip-upgrades",
            "50,60",
        ]);
        assert_eq!(skip_heights(&args), vec![10, 20, 30, 40, 50, 60]);
        assert!(skip_heights(&strings(&["start", "--home", "10"])).is_empty());
    }

    #[test]
    fn halt_height_goes_before_the_terminator() {
        let mut args = strings(&["start", "--home", "/h"]);
        insert_halt_height(&mut args, 9);
        assert_eq!(
            args,
            strings(&["start", "--home", "/h", "--halt-height", "9"])
        );
        let mut args = strings(&["start", "--", "extra"]);
        insert_halt_height(&mut args, 9);
        assert_eq!(
            args,
            strings(&["start", "--halt-height", "9", "--", "extra"])
        );
    }
}
