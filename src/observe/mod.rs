//! What an operator's tools see of the supervisor: the systemd notify protocol (`notify.rs`),
//! Prometheus metrics and the readiness and liveness probes on `WASMVISOR_METRICS_ADDRESS`
//! (`metrics.rs`, `serve.rs`). One [`Observer`] is told what happens — the node started, a phase
//! began, a verdict came — and keeps the state all three report; what is known of the upgrades
//! ahead (`ahead.rs`) is part of it.

mod ahead;
mod metrics;
mod notice;
mod notify;
mod serve;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use ahead::{NextUpgrade, StatusSource};
pub use notice::{Notice, Upgrade};
pub use serve::serve;

use metrics::{
    Binary, CaptureLabels, Metrics, PhaseLabels, PlanLabels, PluginLabels, PluginTiming,
    ResultLabels,
};

/// How an upgrade ended, as `wasmvisor_upgrades_total{result}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeResult {
    Success,
    RolledBack,
    /// Supervision ended with the error.
    Failed,
    Refused,
}

impl UpgradeResult {
    pub fn label(self) -> &'static str {
        match self {
            UpgradeResult::Success => "success",
            UpgradeResult::RolledBack => "rolled_back",
            UpgradeResult::Failed => "failed",
            UpgradeResult::Refused => "refused",
        }
    }
}

/// What the supervisor is doing, as `STATUS=` and `/readyz` say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    Starting,
    Running { version: String, pid: i32 },
    Upgrading { upgrade: String, phase: String },
    RollingBack { upgrade: String },
    RolledBack { upgrade: String, reason: String },
    Halted { reason: String },
    Restarting { seconds: u64, death: u32, of: u32 },
    Stopping,
}

impl Activity {
    fn describe(&self) -> String {
        match self {
            Activity::Starting => "starting".into(),
            Activity::Running { version, pid } => format!("running {version} (pid {pid})"),
            Activity::Upgrading { upgrade, phase } => format!("upgrading to {upgrade}: {phase}"),
            Activity::RollingBack { upgrade } => format!("rolling back {upgrade}"),
            Activity::RolledBack { upgrade, reason } => {
                format!("rolled back {upgrade}: {reason}")
            }
            Activity::Halted { reason } => format!("halted: {reason}"),
            Activity::Restarting { seconds, death, of } => {
                format!("the node died; relaunching in {seconds}s (death {death} of at most {of})")
            }
            Activity::Stopping => "stopping".into(),
        }
    }
}

struct State {
    activity: Activity,
    /// The last health verdict on an upgraded node (`None`: none yet, or it passed).
    unhealthy: Option<String>,
    /// Set when the supervisor's loop has ended.
    finished: bool,
    /// The next upgrade, as the planner last said.
    next: Option<NextUpgrade>,
}

impl State {
    /// The `STATUS=` line: what the supervisor does, then the next upgrade and its readiness.
    fn status_line(&self) -> String {
        match &self.next {
            None => self.activity.describe(),
            Some(next) => format!(
                "{}; {}",
                self.activity.describe(),
                ahead::describe_next(next)
            ),
        }
    }
}

struct Inner {
    metrics: Metrics,
    state: Mutex<State>,
    notify: notify::Notify,
    status_source: Mutex<Option<Arc<StatusSource>>>,
    /// Status documents being made (`serve.rs` bounds them).
    status_calls: AtomicUsize,
    listeners: notice::Listeners,
}

/// The supervisor's observable state. Cheap to clone; every method is quick and never fails.
#[derive(Clone)]
pub struct Observer(Arc<Inner>);

impl Default for Observer {
    fn default() -> Self {
        Observer::new()
    }
}

impl Observer {
    pub fn new() -> Observer {
        Observer(Arc::new(Inner {
            metrics: Metrics::new(),
            state: Mutex::new(State {
                activity: Activity::Starting,
                unhealthy: None,
                finished: false,
                next: None,
            }),
            notify: notify::Notify::from_env(),
            status_source: Mutex::new(None),
            status_calls: AtomicUsize::new(0),
            listeners: notice::Listeners::default(),
        }))
    }

    fn set(&self, activity: Activity) {
        let text = match self.0.state.lock() {
            Ok(mut s) => {
                s.activity = activity;
                s.status_line()
            }
            Err(_) => activity.describe(),
        };
        self.0.notify.status(&text);
    }

    /// The node was launched with `version`'s binary: the service is ready.
    pub fn node_started(&self, version: &str, pid: i32) {
        let m = &self.0.metrics;
        m.node_up.set(1);
        m.node_start_time.set(unix_seconds());
        m.upgrade_in_progress.set(0);
        self.set(Activity::Running {
            version: version.into(),
            pid,
        });
        self.0.notify.ready();
    }

    pub fn node_ended(&self) {
        self.0.metrics.node_up.set(0);
    }

    /// `current` points at `upgrade`, whose binary applied `applied`.
    pub fn current(&self, upgrade: &str, applied: Option<&str>) {
        let m = &self.0.metrics.current_binary;
        m.clear();
        m.get_or_create(&Binary {
            upgrade: upgrade.into(),
            applied: applied.unwrap_or("").into(),
        })
        .set(1);
    }

    /// The plan the chain halts for next (`kind`: governance or manual), if any.
    pub fn pending(&self, plan: Option<(&str, u64, &str)>) {
        let m = &self.0.metrics.pending_upgrade;
        m.clear();
        if let Some((name, height, kind)) = plan {
            m.get_or_create(&PlanLabels {
                name: name.into(),
                kind: kind.into(),
            })
            .set(height as i64);
        }
    }

    /// A phase of the upgrade to `upgrade` begins.
    pub fn phase(&self, upgrade: &str, phase: &str) {
        self.0.metrics.upgrade_in_progress.set(1);
        self.set(Activity::Upgrading {
            upgrade: upgrade.into(),
            phase: phase.into(),
        });
        self.0.notify.long_phase(notify::is_long(phase));
    }

    pub fn phase_done(&self, phase: &str, took: Duration) {
        self.0
            .metrics
            .phase_duration
            .get_or_create(&PhaseLabels {
                phase: phase.into(),
            })
            .observe(took.as_secs_f64());
        self.0.notify.long_phase(false);
        if let Some(upgrade) = self.upgrading() {
            self.tell(Notice::PhaseDone {
                upgrade,
                phase: phase.to_string(),
                ms: took.as_secs_f64() * 1000.0,
            });
        }
    }

    /// An upgrade ended.
    pub fn upgrade_ended(&self, result: UpgradeResult) {
        let m = &self.0.metrics;
        m.upgrade_in_progress.set(0);
        m.upgrades
            .get_or_create(&ResultLabels {
                result: result.label().into(),
            })
            .inc();
        if result == UpgradeResult::Success
            && let Ok(mut s) = self.0.state.lock()
        {
            s.unhealthy = None;
        }
    }

    /// The time from the node's halt to the new binary's launch: a new upgrade's downtime, so
    /// the chain's marks of the one before are gone until this one's are known.
    pub fn downtime(&self, took: Duration) {
        let m = &self.0.metrics;
        m.last_downtime.set(took.as_secs_f64());
        m.downtime
            .get_or_create(&metrics::UntilLabels { until: "start" })
            .set(took.as_secs_f64());
        for until in ["first_block", "first_signature"] {
            m.downtime.remove(&metrics::UntilLabels { until });
        }
    }

    /// The time from the node's halt until the chain's first block after the upgrade height
    /// (`first_block`) or this validator's first vote (`first_signature`).
    pub fn downtime_until(&self, until: &'static str, took: Duration) {
        self.0
            .metrics
            .downtime
            .get_or_create(&metrics::UntilLabels { until })
            .set(took.as_secs_f64());
    }

    pub fn health(&self, healthy: bool, detail: &str) {
        self.0.metrics.health_healthy.set(i64::from(healthy));
        if let Ok(mut s) = self.0.state.lock() {
            s.unhealthy = (!healthy).then(|| detail.to_string());
        }
    }

    pub fn rolling_back(&self, upgrade: &str) {
        self.set(Activity::RollingBack {
            upgrade: upgrade.into(),
        });
        self.0.notify.long_phase(true);
    }

    pub fn rolled_back(&self, upgrade: &str, reason: &str) {
        self.upgrade_ended(UpgradeResult::RolledBack);
        // The verdict was on the binary that is gone.
        if let Ok(mut s) = self.0.state.lock() {
            s.unhealthy = None;
        }
        self.0.notify.long_phase(false);
        self.set(Activity::RolledBack {
            upgrade: upgrade.into(),
            reason: reason.into(),
        });
    }

    pub fn halted(&self, reason: &str) {
        self.0.metrics.node_up.set(0);
        self.set(Activity::Halted {
            reason: reason.into(),
        });
    }

    pub fn restarting(&self, status: &str, delay: Duration, death: u32, of: u32) {
        self.0.metrics.node_restarts.inc();
        self.tell(Notice::CrashRestart {
            status: status.to_string(),
            death,
            of,
            delay_ms: delay.as_millis() as u64,
        });
        self.set(Activity::Restarting {
            seconds: delay.as_secs(),
            death,
            of,
        });
    }

    /// A stop request: the service is stopping.
    pub fn stopping(&self) {
        if let Ok(s) = self.0.state.lock()
            && s.activity == Activity::Stopping
        {
            return;
        }
        self.set(Activity::Stopping);
        self.0.notify.stopping();
        self.tell(Notice::Stopping);
    }

    /// The supervisor's loop has ended: `/livez` fails from now on, and the watchdog stops.
    pub fn finished(&self) {
        if let Ok(mut s) = self.0.state.lock() {
            s.finished = true;
        }
    }

    pub fn chain_height(&self, height: u64) {
        self.0.metrics.chain_height.set(height as i64);
    }

    pub fn backup(&self, seconds: f64, reflinked: u64, linked: u64, copied: u64) {
        let m = &self.0.metrics;
        m.backups.inc();
        m.backup_duration.set(seconds);
        for (how, bytes) in [
            ("reflinked", reflinked),
            ("linked", linked),
            ("copied", copied),
        ] {
            m.backup_bytes
                .get_or_create(&CaptureLabels { how: how.into() })
                .set(bytes as i64);
        }
    }

    pub fn plugin_call(&self, plugin: &str, world: &str, result: &str, took: Duration) {
        let m = &self.0.metrics;
        m.plugin_calls
            .get_or_create(&PluginLabels {
                plugin: plugin.into(),
                world: world.into(),
                result: result.into(),
            })
            .inc();
        m.plugin_duration
            .get_or_create(&PluginTiming {
                plugin: plugin.into(),
                world: world.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// A configured plugin could not be compiled (in the background): counted, for alerting —
    /// the next upgrade will be refused before its switch.
    pub fn plugin_unusable(&self) {
        self.0.metrics.plugins_unusable.inc();
    }

    /// Why the node is not ready for traffic, if it is not: the node must run, no upgrade may be
    /// under way, and the last health verdict must not be unhealthy. Both sides are the text
    /// `/readyz` answers with.
    pub fn readiness(&self) -> Result<String, String> {
        let s = self
            .0
            .state
            .lock()
            .map_err(|_| "state unavailable".to_string())?;
        match (&s.activity, &s.unhealthy) {
            (Activity::Running { .. }, None) => Ok(s.activity.describe()),
            (Activity::Running { .. }, Some(detail)) => {
                Err(format!("the upgraded node is unhealthy: {detail}"))
            }
            (other, _) => Err(other.describe()),
        }
    }

    /// Whether the supervisor's loop is alive.
    pub fn alive(&self) -> bool {
        self.0.state.lock().is_ok_and(|s| !s.finished)
    }

    pub fn metrics(&self) -> String {
        self.0.metrics.encode()
    }

    /// Sends the systemd watchdog and timeout extensions while the loop is alive; run it on the
    /// supervisor's runtime, so a stuck runtime stops the watchdog too.
    pub async fn keepalive(self) {
        notify::keepalive(self).await
    }
}

fn unix_seconds() -> f64 {
    crate::clock::since_epoch().as_secs_f64()
}

#[cfg(test)]
mod tests;
