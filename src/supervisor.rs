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
use crate::journal::Journal;
use crate::layout::{Current, Layout, LayoutError};
use crate::plan::{Plan, Read};
use crate::plugin::PluginSet;
use crate::process::{self, Child, Exit, Reaper};
use crate::rpc::Endpoint;
use crate::upgrade::UpgradeError;
use crate::watch::Watcher;
use crate::{fsutil, lock};

/// Where the running node's pid is kept, so a supervisor that was killed can stop the node it
/// left behind before starting another.
pub const NODE_FILE: &str = "wasmvisor-node.json";

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
    /// Relaunches made to confirm a manual halt whose last block was not seen on the RPC.
    confirm_runs: u32,
    /// The plugins, loaded (and compiled, or read from the cache) before the first launch.
    pub(crate) plugins: Arc<PluginSet>,
    /// An upgrade whose node the health checks must judge at its next launch.
    pub(crate) health_due: Option<Plan>,
    /// Manual plans whose binary was already prepared ahead of their height.
    prepared: std::collections::BTreeSet<String>,
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

/// A clean exit within this many blocks of a manual halt height is confirmed by a relaunch.
const CONFIRM_WINDOW: u64 = 8;
/// At most this many confirming relaunches, so a node that keeps exiting is not restarted forever.
const CONFIRM_RUNS: u32 = 3;

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
    runtime.block_on(async move {
        let layout = Layout::open(&cfg)?;
        let _lock = lock::acquire(&cfg.home, &layout.root_path)?;
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
        let reaper = Reaper::start().map_err(|source| RunError::Io {
            what: "cannot watch child processes".into(),
            source,
        })?;
        let watcher =
            Watcher::start(&cfg.home.join("data"), cfg.watch_mode, cfg.poll_interval).await;
        let rpc = Endpoint::parse(&cfg.rpc_address).expect("validated with the configuration");
        let plugins = load_plugins(&cfg)?;
        let mut supervisor = Supervisor {
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
            stop: None,
            last_complaint: None,
            launch_after_upgrade: false,
            confirm_runs: 0,
        };
        supervisor.supervise().await
    })
}

impl Supervisor {
    async fn supervise(&mut self) -> Result<i32, RunError> {
        self.stop_leftover_node().await;
        if self.journal.active().is_some() && !self.resume().await? {
            return Ok(self.stop_status());
        }
        loop {
            if self.stop.is_some() {
                return Ok(self.stop_status());
            }
            let ended = match self.decision() {
                Decision::Upgrade { plan, manual } => {
                    if !self.upgrade(plan, manual, None).await? {
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
                        name: plan.name,
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
                    if !self.upgrade(plan, manual, Some(node)).await? {
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
        let snapshot = files.snapshot(&self.skip_heights, self.chain_height, &dir_name);
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
            insert_halt_height(&mut args, plan.height);
            tracing::info!(upgrade = %plan.name, height = plan.height, "manual upgrade pending: the node will halt at its height");
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
        self.record_node(&node);
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

        let mut health = self
            .health_due
            .take()
            .map(|plan| tokio::spawn(health_loop(self.plugins.clone(), plan, started)));
        let (height_tx, mut height_rx) = watch::channel(self.chain_height);
        let poller = halt_at
            .as_ref()
            .map(|plan| tokio::spawn(poll_height(self.rpc.clone(), plan.height, height_tx)));
        let mut kill_at: Option<tokio::time::Instant> = None;
        let mut recheck: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(20);

        let ended = loop {
            tokio::select! {
                exit = node.wait() => {
                    self.clear_node();
                    // The poller may have seen a height that this loop has not taken yet.
                    self.chain_height = *height_rx.borrow_and_update();
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
                        self.clear_node();
                        break Ended::Exit(HEALTH_EXIT_CODE);
                    }
                }
                Ok(()) = height_rx.changed() => {
                    self.chain_height = *height_rx.borrow_and_update();
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
                            self.clear_node();
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

    /// The node exited without being asked to. Older SDKs exit at the upgrade halt and nodes exit
    /// at `--halt-height`: both mean an upgrade is due. Anything else ends supervision with the
    /// node's status.
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
                self.confirm_runs = 0;
                tracing::info!(upgrade = %plan.name, height = plan.height, status = %exit, mono_ns = process::monotonic_ns(), "node halted for the upgrade");
                Ended::Upgrade { plan, manual, node }
            }
            _ => {
                if let Some(plan) = halt_at
                    && exit.success()
                    && self
                        .chain_height
                        .is_some_and(|h| h + CONFIRM_WINDOW >= plan.height)
                    && self.confirm_runs < CONFIRM_RUNS
                {
                    // A clean exit this close to the halt height is most likely the halt, but
                    // the last block was not seen. Launching the same binary with the same
                    // `--halt-height` is safe (it can never commit H) and shows the height again.
                    self.confirm_runs += 1;
                    tracing::warn!(
                        upgrade = %plan.name,
                        height = plan.height,
                        last_seen_height = self.chain_height,
                        attempt = self.confirm_runs,
                        "the node exited near the manual upgrade height before its last block was seen; relaunching it with the same halt height to confirm"
                    );
                    return Ended::Relaunch;
                }
                if let Some(plan) = halt_at {
                    tracing::warn!(
                        upgrade = %plan.name,
                        height = plan.height,
                        last_seen_height = self.chain_height,
                        "the node exited before the manual upgrade height was seen on its RPC ({}); not upgrading",
                        self.cfg.rpc_address
                    );
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

    fn record_node(&self, node: &Child) {
        let pid = node.pid.as_raw();
        let record = serde_json::json!({"pid": pid, "start_time": process::start_time(pid)});
        if let Err(e) =
            fsutil::write_atomic(&self.layout.root, NODE_FILE, record.to_string().as_bytes())
        {
            tracing::warn!("cannot record the node's pid in {NODE_FILE}: {e}");
        }
    }

    pub(crate) fn clear_node(&self) {
        let _ = self.layout.root.remove_file(NODE_FILE);
    }

    /// A supervisor killed while its node ran leaves the node behind (it runs in its own process
    /// group). Stop it before anything else, so two nodes never share a data folder.
    async fn stop_leftover_node(&mut self) {
        let Ok(Some(bytes)) = fsutil::read_optional(&self.layout.root, NODE_FILE) else {
            return;
        };
        let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let pid = record["pid"].as_i64().unwrap_or(0) as i32;
        let recorded_start = record["start_time"].as_u64();
        if pid > 1 && recorded_start.is_some() && process::start_time(pid) == recorded_start {
            tracing::warn!(
                pid,
                "a node left running by a previous supervisor is still alive; stopping it first"
            );
            let group = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + self.cfg.shutdown_grace;
            while process::start_time(pid) == recorded_start {
                if Instant::now() >= deadline {
                    tracing::warn!(
                        pid,
                        "the leftover node ignored SIGTERM for the whole grace; sending SIGKILL"
                    );
                    let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.clear_node();
    }

    /// Finishes an upgrade a previous supervisor was interrupted in. Returns false if a stop
    /// request interrupted it again.
    async fn resume(&mut self) -> Result<bool, RunError> {
        let active = self.journal.active().cloned().expect("checked by caller");
        let current = self.layout.current()?;
        tracing::warn!(upgrade = %active.plan.name, phase = %active.phase, "resuming an upgrade that was interrupted");
        let swapped = current == Current::Upgrade(active.dir_name.clone());
        let superseded = self
            .layout
            .applied_plan(&current)
            .is_some_and(|a| a.height > active.plan.height);
        if superseded {
            tracing::warn!(upgrade = %active.plan.name, "a later upgrade is already applied; dropping the interrupted one");
            self.journal.state.active = None;
            return Ok(true);
        }
        let done = if swapped {
            self.journal
                .begin(&active.plan, &active.dir_name, &active.from)
                .map_err(|source| RunError::Io {
                    what: "cannot write the journal".into(),
                    source,
                })?;
            self.finish_after_swap(active.plan.clone()).await?
        } else {
            self.upgrade(active.plan.clone(), false, None).await?
        };
        Ok(done)
    }

    /// Stages a manual plan's binary in the background while the node runs towards its height,
    /// so the upgrade finds it there (once per plan and supervisor).
    fn prepare_ahead(&mut self, plan: &Plan) {
        if !self.prepared.insert(plan.name.clone()) {
            return;
        }
        let (set, cfg, plan) = (self.plugins.clone(), self.cfg.clone(), plan.clone());
        tokio::spawn(crate::plugin::off_runtime(
            move || match crate::plugin::set::prepare(&set, &cfg, &plan) {
                Ok(done) => {
                    tracing::info!(upgrade = %plan.name, "prepared ahead of the halt: {done}")
                }
                Err(e) => {
                    tracing::warn!(upgrade = %plan.name, "cannot prepare ahead of the halt (the upgrade will try again): {e}")
                }
            },
        ));
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
            plan: crate::plugin::Plan {
                name: plan.name.clone(),
                height: plan.height,
                info: plan.info.clone(),
            },
            elapsed_ms: launched.elapsed().as_millis() as u64,
            attempt,
        };
        let s = set.clone();
        let answer = crate::plugin::off_runtime(move || s.check(&context)).await;
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
                e.to_string()
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

/// Follows the node's height while a manual upgrade is pending, faster as the height nears, so
/// the last committed height (H - 1) is seen before the node halts at H. Until this run's RPC
/// first answers (for up to a minute), it polls quickly: a node relaunched one block before its
/// halt height is only up for one block.
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
        if let Ok(h) = rpc.latest_height(Duration::from_millis(500)).await {
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
