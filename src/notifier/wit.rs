//! A notice in the contract's types (`wasmvisor:plugin/notify@0.2.1`), with where it happened:
//! the chain (asked of the node's RPC until it answers), the daemon, the host.

use std::time::Duration;

use crate::chain::rpc::Rpc;
use crate::config::Endpoint;
use crate::observe::{Notice, Upgrade};
use crate::plugin::notice as n;

/// Where the notices happen.
pub struct Context {
    daemon: String,
    hostname: String,
    rpc: Rpc,
    chain: Option<String>,
}

/// Who tells: the chain (empty until known), the daemon, the host.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub chain: String,
    pub daemon: String,
    pub hostname: String,
}

impl Context {
    pub fn new(daemon: &str, rpc: &Endpoint) -> Context {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        Context {
            daemon: daemon.to_string(),
            hostname,
            rpc: Rpc::new(rpc, Duration::from_secs(1)),
            chain: None,
        }
    }

    /// The identity, asking the node for its chain id while it is not known (a refused
    /// connection answers at once; a node that does not answer costs this notice a second, off
    /// the upgrade's path).
    pub async fn identity(&mut self) -> Identity {
        if self.chain.is_none() {
            match self.rpc.node_info().await {
                Ok(info) => self.chain = Some(info.network),
                Err(e) => tracing::debug!("the notices name no chain yet: {e}"),
            }
        }
        Identity {
            chain: self.chain.clone().unwrap_or_default(),
            daemon: self.daemon.clone(),
            hostname: self.hostname.clone(),
        }
    }
}

fn upgrade(u: &Upgrade) -> n::Upgrade {
    n::Upgrade {
        name: u.name.clone(),
        height: u.height,
    }
}

fn failed(u: &Upgrade, reason: &str) -> n::UpgradeFailed {
    n::UpgradeFailed {
        upgrade: upgrade(u),
        reason: reason.to_string(),
    }
}

/// `notice` in the contract's types, as it happened at `at` (Unix ms).
pub fn to_wit(notice: &Notice, at: u64, who: &Identity) -> n::Notice {
    n::Notice {
        chain: who.chain.clone(),
        daemon: who.daemon.clone(),
        hostname: who.hostname.clone(),
        at_unix_ms: at,
        event: event(notice),
    }
}

fn event(notice: &Notice) -> n::Event {
    match notice {
        Notice::Health { .. }
        | Notice::SigningResumed { .. }
        | Notice::CrashRestart { .. }
        | Notice::Stopping => after_switch(notice),
        _ => switch(notice),
    }
}

/// The events up to and of the switch.
fn switch(notice: &Notice) -> n::Event {
    match notice {
        Notice::PlanKnown {
            upgrade: u,
            source,
            eta_seconds,
        } => n::Event::PlanKnown(n::PlanKnown {
            upgrade: upgrade(u),
            source: source.clone(),
            eta_seconds: *eta_seconds,
        }),
        Notice::Readiness {
            upgrade: u,
            ready,
            reason,
            eta_seconds,
        } => n::Event::ReadinessChanged(n::Readiness {
            upgrade: upgrade(u),
            ready: *ready,
            reason: reason.clone(),
            eta_seconds: *eta_seconds,
        }),
        Notice::UpgradeStarted {
            upgrade: u,
            from,
            to,
        } => n::Event::UpgradeStarted(n::UpgradeStarted {
            upgrade: upgrade(u),
            from: from.clone(),
            to: to.clone(),
        }),
        Notice::PhaseDone {
            upgrade: u,
            phase,
            ms,
        } => n::Event::PhaseDone(n::PhaseDone {
            upgrade: upgrade(u),
            phase: phase.clone(),
            ms: *ms,
        }),
        Notice::UpgradeDone {
            upgrade: u,
            downtime_ms,
        } => n::Event::UpgradeDone(n::UpgradeDone {
            upgrade: upgrade(u),
            downtime_ms: *downtime_ms,
        }),
        Notice::UpgradeFailed { upgrade: u, reason } => n::Event::UpgradeFailed(failed(u, reason)),
        Notice::RolledBack { upgrade: u, reason } => n::Event::RolledBack(failed(u, reason)),
        _ => after_switch(notice),
    }
}

/// The events after the switch, and the supervisor's own.
fn after_switch(notice: &Notice) -> n::Event {
    match notice {
        Notice::Health {
            upgrade: u,
            healthy,
            detail,
            by,
            action,
        } => n::Event::HealthVerdict(n::HealthVerdict {
            upgrade: upgrade(u),
            healthy: *healthy,
            detail: detail.clone(),
            by: by.clone(),
            action: action.clone(),
        }),
        Notice::SigningResumed {
            upgrade: u,
            height,
            validator,
            downtime_ms,
        } => n::Event::SigningResumed(n::SigningResumed {
            upgrade: upgrade(u),
            height: *height,
            validator: validator.clone(),
            downtime_ms: *downtime_ms,
        }),
        Notice::CrashRestart {
            status,
            death,
            of,
            delay_ms,
        } => n::Event::CrashRestart(n::CrashRestart {
            status: status.clone(),
            death: *death,
            of: *of,
            delay_ms: *delay_ms,
        }),
        Notice::Stopping => n::Event::Stopping,
        _ => switch(notice),
    }
}

/// An example of each kind, about `plan` (`plugin call notifier NAME --event KIND`); none for
/// an unknown kind.
pub fn sample(kind: &str, plan: &Upgrade) -> Option<Notice> {
    let u = plan.clone();
    Some(match kind {
        "plan-known" => Notice::PlanKnown {
            upgrade: u,
            source: "chain".into(),
            eta_seconds: Some(3600),
        },
        "readiness-changed" => Notice::Readiness {
            upgrade: u,
            ready: false,
            reason: "no binary is staged (an example notice)".into(),
            eta_seconds: Some(3600),
        },
        "upgrade-started" => Notice::UpgradeStarted {
            upgrade: u.clone(),
            from: "genesis".into(),
            to: format!("upgrades/{}", u.name.to_lowercase()),
        },
        "phase-done" => Notice::PhaseDone {
            upgrade: u,
            phase: "swap".into(),
            ms: 0.6,
        },
        "upgrade-done" => Notice::UpgradeDone {
            upgrade: u,
            downtime_ms: 11.2,
        },
        "upgrade-failed" => Notice::UpgradeFailed {
            upgrade: u,
            reason: "an example failure".into(),
        },
        "rolled-back" => Notice::RolledBack {
            upgrade: u,
            reason: "an example rollback".into(),
        },
        "health-verdict" => Notice::Health {
            upgrade: u,
            healthy: true,
            detail: "an example verdict".into(),
            by: None,
            action: "none".into(),
        },
        "signing-resumed" => Notice::SigningResumed {
            upgrade: u.clone(),
            height: u.height + 1,
            validator: "2DD9F44FD9067555C322243C3C913BA7B51D2BE0".into(),
            downtime_ms: 42_000.0,
        },
        "crash-restart" => Notice::CrashRestart {
            status: "exit code 2".into(),
            death: 1,
            of: 5,
            delay_ms: 1000,
        },
        "stopping" => Notice::Stopping,
        _ => return None,
    })
}

/// The kinds `sample` knows, as the contract names them.
pub const KINDS: [&str; 11] = [
    "plan-known",
    "readiness-changed",
    "upgrade-started",
    "phase-done",
    "upgrade-done",
    "upgrade-failed",
    "rolled-back",
    "health-verdict",
    "signing-resumed",
    "crash-restart",
    "stopping",
];
