//! The Prometheus metrics (`wasmvisor_` prefix; units in the names, as Prometheus' conventions
//! ask), encoded in the Prometheus text format (0.0.4) for `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Binary {
    /// The folder `current` points at (`genesis` or the upgrade's).
    pub upgrade: String,
    /// The plan the binary applied (empty for genesis).
    pub applied: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    pub name: String,
    /// `governance` (upgrade-info.json) or `manual`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpgradeLabels {
    pub upgrade: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpcomingLabels {
    pub upgrade: String,
    /// `chain`, `proposal`, `manual` (the batch file: `add-upgrade`, `add-batch-upgrade`) or `upgrade-info`.
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierLabels {
    pub notifier: String,
}

/// What an upgrade's downtime is measured until: `start`, `first_block`, `first_signature`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UntilLabels {
    pub until: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
    pub world: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginTiming {
    pub plugin: String,
    pub world: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CaptureLabels {
    /// `reflinked`, `linked` or `copied`.
    pub how: String,
}

type F64Gauge = Gauge<f64, AtomicU64>;

fn seconds_buckets() -> Histogram {
    // 1 ms to about 17 minutes.
    Histogram::new(exponential_buckets(0.001, 4.0, 11))
}

fn label(result: &str) -> ResultLabels {
    ResultLabels {
        result: result.into(),
    }
}

/// Every series wasmvisor exports.
pub struct Metrics {
    pub registry: Registry,
    pub current_binary: Family<Binary, Gauge>,
    pub pending_upgrade: Family<PlanLabels, Gauge>,
    pub node_up: Gauge,
    pub node_start_time: F64Gauge,
    pub node_restarts: Counter,
    pub upgrades: Family<ResultLabels, Counter>,
    pub upgrade_in_progress: Gauge,
    pub phase_duration: Family<PhaseLabels, Histogram, fn() -> Histogram>,
    pub last_downtime: F64Gauge,
    pub downtime: Family<UntilLabels, F64Gauge>,
    pub health_healthy: Gauge,
    pub plugins_unusable: Gauge,
    pub plugin_calls: Family<PluginLabels, Counter>,
    pub plugin_duration: Family<PluginTiming, Histogram, fn() -> Histogram>,
    pub chain_height: Gauge,
    pub backups: Counter,
    pub backup_duration: F64Gauge,
    pub backup_bytes: Family<CaptureLabels, Gauge>,
    pub upgrade_ready: Family<UpgradeLabels, Gauge>,
    pub upgrade_eta: Family<UpgradeLabels, F64Gauge>,
    pub upgrade_eta_timestamp: Family<UpgradeLabels, F64Gauge>,
    pub upcoming_upgrade: Family<UpcomingLabels, Gauge>,
    pub preflight_failures: Counter,
    pub plan_polls: Family<ResultLabels, Counter>,
    pub plan_last_poll: F64Gauge,
    pub preparations: Family<ResultLabels, Counter>,
    pub notifications_failed: Family<NotifierLabels, Counter>,
    pub notifications_dropped: Family<NotifierLabels, Counter>,
}

/// The results `wasmvisor_upgrades_total` counts, each exported from the start (at 0): an
/// alert on `increase()` sees the first failure only if the series was there before it.
const UPGRADE_RESULTS: [&str; 4] = ["success", "rolled_back", "failed", "refused"];

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wasmvisor");
        registry.register(
            "build",
            "wasmvisor's version and the Cosmovisor release whose behaviour it follows",
            prometheus_client::metrics::info::Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("cosmovisor", crate::COSMOVISOR_COMPAT),
            ]),
        );
        let m = Metrics {
            registry: Registry::default(),
            current_binary: Family::default(),
            pending_upgrade: Family::default(),
            node_up: Gauge::default(),
            node_start_time: F64Gauge::default(),
            node_restarts: Counter::default(),
            upgrades: Family::default(),
            upgrade_in_progress: Gauge::default(),
            phase_duration: Family::new_with_constructor(seconds_buckets),
            last_downtime: F64Gauge::default(),
            downtime: Family::default(),
            health_healthy: Gauge::default(),
            plugins_unusable: Gauge::default(),
            plugin_calls: Family::default(),
            plugin_duration: Family::new_with_constructor(seconds_buckets),
            chain_height: Gauge::default(),
            backups: Counter::default(),
            backup_duration: F64Gauge::default(),
            backup_bytes: Family::default(),
            upgrade_ready: Family::default(),
            upgrade_eta: Family::default(),
            upgrade_eta_timestamp: Family::default(),
            upcoming_upgrade: Family::default(),
            preflight_failures: Counter::default(),
            plan_polls: Family::default(),
            plan_last_poll: F64Gauge::default(),
            preparations: Family::default(),
            notifications_failed: Family::default(),
            notifications_dropped: Family::default(),
        };
        m.register_node(&mut registry);
        m.register_upgrades(&mut registry);
        m.register_plugins_and_backups(&mut registry);
        m.register_ahead(&mut registry);
        // Healthy until a verdict says otherwise: an alert on 0 means an unhealthy verdict.
        m.health_healthy.set(1);
        // Counters by result are there from the start, at 0 (see `UPGRADE_RESULTS`).
        for result in UPGRADE_RESULTS {
            drop(m.upgrades.get_or_create(&label(result)));
        }
        for result in ["ok", "error"] {
            drop(m.plan_polls.get_or_create(&label(result)));
            drop(m.preparations.get_or_create(&label(result)));
        }
        Metrics { registry, ..m }
    }

    /// The upgrades ahead: the next one's readiness and ETA, every upcoming plan, the polls of
    /// the chain's plans and the background preparations.
    fn register_ahead(&self, r: &mut Registry) {
        let m = self;
        r.register(
            "upgrade_ready",
            "Whether the next upgrade's binary is staged and passed its preflight (1) or not (0); absent when there is none or it is only proposed",
            m.upgrade_ready.clone(),
        );
        r.register_with_unit(
            "upgrade_eta",
            "The time to the next upgrade's height at the chain's recent block rate, as of the last poll of the chain's plans",
            Unit::Seconds,
            m.upgrade_eta.clone(),
        );
        r.register_with_unit(
            "upgrade_eta_timestamp",
            "When the next upgrade's height is expected, Unix time (as of the last poll)",
            Unit::Seconds,
            m.upgrade_eta_timestamp.clone(),
        );
        r.register(
            "upcoming_upgrade_height",
            "The height of every upcoming upgrade known, by name and source (chain, proposal, manual: the batch file, upgrade-info)",
            m.upcoming_upgrade.clone(),
        );
        r.register(
            "upgrade_preflight_failures",
            "Preflights of a staged binary that failed (not executable here, a library or symbol version missing, its version command failing)",
            m.preflight_failures.clone(),
        );
        r.register(
            "plan_polls",
            "Polls of the chain's upgrade plans and proposals, by result (ok, error)",
            m.plan_polls.clone(),
        );
        r.register_with_unit(
            "plan_last_poll_timestamp",
            "When the chain's plans were last polled successfully, Unix time",
            Unit::Seconds,
            m.plan_last_poll.clone(),
        );
        r.register(
            "upgrade_preparations",
            "Background preparations (resolve, stage, preflight) of the next upgrade, by result (ok, error)",
            m.preparations.clone(),
        );
        r.register(
            "notifications_failed",
            "Notices a notifier plugin did not deliver (an error, a trap, its deadline)",
            m.notifications_failed.clone(),
        );
        r.register(
            "notifications_dropped",
            "Notices dropped, oldest first, because a notifier's queue was full",
            m.notifications_dropped.clone(),
        );
    }

    /// The binary and the node.
    fn register_node(&self, r: &mut Registry) {
        let m = self;
        r.register(
            "current_binary",
            "The binary `current` points at (1 for the one series)",
            m.current_binary.clone(),
        );
        r.register(
            "pending_upgrade_height",
            "The height of the upgrade the chain will halt for next, by name",
            m.pending_upgrade.clone(),
        );
        r.register(
            "node_up",
            "Whether the node runs (1) or not (0)",
            m.node_up.clone(),
        );
        r.register_with_unit(
            "node_start_time",
            "When the node was last launched, Unix time",
            Unit::Seconds,
            m.node_start_time.clone(),
        );
        r.register(
            "node_restarts",
            "Relaunches of a node that died outside an upgrade",
            m.node_restarts.clone(),
        );
    }

    /// The upgrades, their phases and verdicts.
    fn register_upgrades(&self, r: &mut Registry) {
        let m = self;
        r.register(
            "upgrades",
            "Upgrades by result: success, rolled_back, failed (exited), refused",
            m.upgrades.clone(),
        );
        r.register(
            "upgrade_in_progress",
            "Whether an upgrade is under way (1) or not (0)",
            m.upgrade_in_progress.clone(),
        );
        r.register_with_unit(
            "upgrade_phase_duration",
            "How long each phase of an upgrade took",
            Unit::Seconds,
            m.phase_duration.clone(),
        );
        r.register_with_unit(
            "last_upgrade_downtime",
            "The last upgrade's downtime: from the node's halt to the new binary's launch",
            Unit::Seconds,
            m.last_downtime.clone(),
        );
        r.register_with_unit(
            "upgrade_downtime",
            "The last upgrade's downtime as a validator counts it: from the node's halt until the \
             new binary's start, the chain's first block after the upgrade height, or this \
             validator's first vote after it",
            Unit::Seconds,
            m.downtime.clone(),
        );
        r.register(
            "health_healthy",
            "0 when the last health verdict on an upgraded node was unhealthy, else 1",
            m.health_healthy.clone(),
        );
    }

    /// The plugins' calls, the chain's height and the snapshot backups (in this order: the
    /// exposition lists metrics as they were registered).
    fn register_plugins_and_backups(&self, r: &mut Registry) {
        let m = self;
        r.register(
            "plugins_unusable",
            "Configured plugins whose background compilation failed: the next upgrade will be refused until they are fixed",
            m.plugins_unusable.clone(),
        );
        r.register(
            "plugin_calls",
            "Plugin calls by plugin, world and result (ok, trap, timeout, memory, answer, cancelled, error)",
            m.plugin_calls.clone(),
        );
        r.register_with_unit(
            "plugin_call_duration",
            "How long plugin calls took",
            Unit::Seconds,
            m.plugin_duration.clone(),
        );
        r.register(
            "chain_height",
            "The height the node's application last reported on its RPC",
            m.chain_height.clone(),
        );
        r.register("backups", "Snapshot backups taken", m.backups.clone());
        r.register_with_unit(
            "backup_last_duration",
            "How long the last snapshot backup took",
            Unit::Seconds,
            m.backup_duration.clone(),
        );
        r.register_with_unit(
            "backup_last",
            "The last snapshot backup's bytes, by how they were captured (reflinked, linked, copied)",
            Unit::Bytes,
            m.backup_bytes.clone(),
        );
    }

    /// The Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}
