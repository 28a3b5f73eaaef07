//! What the operator is told as it happens: one [`Notice`] per event, handed to the sink the
//! supervisor installs (its notifier queue: `src/notifier/`). The observer does not know who
//! listens, and telling never blocks or fails: the sink only queues.

use std::sync::Mutex;

use super::Observer;

/// An upgrade, by its plan's name and height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub name: String,
    pub height: u64,
}

impl Upgrade {
    pub fn new(name: &str, height: u64) -> Upgrade {
        Upgrade {
            name: name.to_string(),
            height,
        }
    }
}

/// An event an operator is told of.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The planner learnt of an upcoming upgrade (`source`: chain, proposal, manual,
    /// upgrade-info).
    PlanKnown {
        upgrade: Upgrade,
        source: String,
        eta_seconds: Option<u64>,
    },
    /// The next upgrade became ready, or stopped being.
    Readiness {
        upgrade: Upgrade,
        ready: bool,
        reason: String,
        eta_seconds: Option<u64>,
    },
    UpgradeStarted {
        upgrade: Upgrade,
        from: String,
        to: String,
    },
    PhaseDone {
        upgrade: Upgrade,
        phase: String,
        ms: f64,
    },
    /// The new binary runs, `downtime_ms` after the halt.
    UpgradeDone {
        upgrade: Upgrade,
        downtime_ms: f64,
    },
    UpgradeFailed {
        upgrade: Upgrade,
        reason: String,
    },
    RolledBack {
        upgrade: Upgrade,
        reason: String,
    },
    Health {
        upgrade: Upgrade,
        healthy: bool,
        detail: String,
        by: Option<String>,
        /// `none`, `warn`, `exit` or `rollback`.
        action: String,
    },
    SigningResumed {
        upgrade: Upgrade,
        height: u64,
        validator: String,
        downtime_ms: f64,
    },
    CrashRestart {
        status: String,
        death: u32,
        of: u32,
        delay_ms: u64,
    },
    Stopping,
}

impl Notice {
    /// Its kind, as the contract's `event` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::PlanKnown { .. } => "plan-known",
            Notice::Readiness { .. } => "readiness-changed",
            Notice::UpgradeStarted { .. } => "upgrade-started",
            Notice::PhaseDone { .. } => "phase-done",
            Notice::UpgradeDone { .. } => "upgrade-done",
            Notice::UpgradeFailed { .. } => "upgrade-failed",
            Notice::RolledBack { .. } => "rolled-back",
            Notice::Health { .. } => "health-verdict",
            Notice::SigningResumed { .. } => "signing-resumed",
            Notice::CrashRestart { .. } => "crash-restart",
            Notice::Stopping => "stopping",
        }
    }
}

/// Where notices go, with the time they happened (Unix ms).
pub type NoticeSink = dyn Fn(Notice, u64) + Send + Sync;

/// The installed sink and the upgrade under way (which `phase_done` names).
#[derive(Default)]
pub(super) struct Listeners {
    pub(super) sink: Mutex<Option<Box<NoticeSink>>>,
    pub(super) upgrading: Mutex<Option<Upgrade>>,
}

impl Observer {
    /// Where notices go from now on.
    pub fn set_notice_sink(&self, sink: Box<NoticeSink>) {
        if let Ok(mut s) = self.0.listeners.sink.lock() {
            *s = Some(sink);
        }
    }

    /// Tells the sink, if there is one. An upgrade that starts is remembered: its phases are
    /// told as its.
    pub fn tell(&self, notice: Notice) {
        if let Notice::UpgradeStarted { upgrade, .. } = &notice
            && let Ok(mut u) = self.0.listeners.upgrading.lock()
        {
            *u = Some(upgrade.clone());
        }
        if let Ok(sink) = self.0.listeners.sink.lock()
            && let Some(sink) = sink.as_ref()
        {
            sink(notice, crate::clock::unix_ms());
        }
    }

    /// The notifiers configured: their failure counters start at 0.
    pub fn notifiers<'a>(&self, names: impl Iterator<Item = &'a str>) {
        let m = &self.0.metrics;
        for name in names {
            let labels = super::metrics::NotifierLabels {
                notifier: name.to_string(),
            };
            m.notifications_failed.get_or_create(&labels).inc_by(0);
            m.notifications_dropped.get_or_create(&labels).inc_by(0);
        }
    }

    /// A notifier did not deliver a notice.
    pub fn notification_failed(&self, name: &str) {
        self.0
            .metrics
            .notifications_failed
            .get_or_create(&super::metrics::NotifierLabels {
                notifier: name.to_string(),
            })
            .inc();
    }

    /// A notifier's queue was full: its oldest notice was dropped.
    pub fn notification_dropped(&self, name: &str) {
        self.0
            .metrics
            .notifications_dropped
            .get_or_create(&super::metrics::NotifierLabels {
                notifier: name.to_string(),
            })
            .inc();
    }

    /// The upgrade under way, as the last `UpgradeStarted` named it.
    pub(super) fn upgrading(&self) -> Option<Upgrade> {
        self.0
            .listeners
            .upgrading
            .lock()
            .ok()
            .and_then(|u| u.clone())
    }
}
