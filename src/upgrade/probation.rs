//! After the switch: the new binary's launch is journaled, and the node is on probation until it
//! proves itself — the health plugins, asked every interval until one verdict is final or the
//! deadline passes, or without any, `WASMVISOR_UPGRADE_PROBATION`. A failure on probation is a
//! failed upgrade. The verdict is logged, journaled and acted on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::journal::{self, HealthRecord, Journal};
use crate::config::Config;
use crate::observe::{Notice, Observer, Upgrade};
use crate::plugin::{self, Health, OnUnhealthy, PluginSet};
use crate::tree::Plan;

/// Exit status when the health check fails and `on-unhealthy = "exit"`.
pub const HEALTH_EXIT_CODE: i32 = 3;

/// An upgraded node that has not yet proved itself: a failure now is a failed upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct Probation {
    pub plan: Plan,
    pub launched: Instant,
    /// When it ends without a health check (`WASMVISOR_UPGRADE_PROBATION`); with one, it ends
    /// at the verdict.
    pub until: Option<tokio::time::Instant>,
}

/// The health checks' verdict, while they run.
pub type Verdict = JoinHandle<HealthRecord>;

/// The upgraded node launched (`spawn_took` after `launched`): journals the launch and the
/// probation window, tells the observer the downtime, and puts the node on probation — judged
/// by the health checks when there are any (their task is returned), else for
/// `WASMVISOR_UPGRADE_PROBATION`.
pub fn begin(
    plugins: &Arc<PluginSet>,
    cfg: &Config,
    journal: &mut Journal,
    observer: &Observer,
    plan: Plan,
    launched: Instant,
    spawn_took: Duration,
) -> (Probation, Option<Verdict>) {
    tracing::info!(phase = "launch", duration = %crate::duration::format(spawn_took), "phase done");
    let window = health_deadline(plugins).unwrap_or(cfg.probation);
    if let Err(e) = journal.record_launch(spawn_took, window) {
        tracing::warn!("cannot journal the launch: {e}");
    }
    if let Some(last) = &journal.state.last {
        observer.downtime(Duration::from_secs_f64(last.downtime_ms() / 1000.0));
        observer.tell(Notice::UpgradeDone {
            upgrade: Upgrade::new(&plan.name, plan.height),
            downtime_ms: last.downtime_ms(),
        });
    }
    let (until, verdict) = if plugins.health.is_empty() {
        tracing::info!(
            probation = %crate::duration::format(cfg.probation),
            "the upgraded node is on probation: a failure before it ends is a failed upgrade"
        );
        (
            Some(tokio::time::Instant::from_std(launched + cfg.probation)),
            None,
        )
    } else {
        journal.checkpoint("health");
        let task = tokio::spawn(check_until_final(plugins.clone(), plan.clone(), launched));
        (None, Some(task))
    };
    let probation = Probation {
        plan,
        launched,
        until,
    };
    (probation, verdict)
}

/// The probation is over without a verdict against the node: its time passed, or a relaunch
/// ended it.
pub fn end(journal: &mut Journal) {
    if let Err(e) = journal.end_probation() {
        tracing::warn!("cannot journal the end of the probation: {e}");
    }
}

/// The health checks' context for the node launched by `plan`'s upgrade.
pub fn health_context(plan: &Plan, elapsed_ms: u64, attempt: u32) -> plugin::HealthContext {
    plugin::HealthContext {
        plan: super::resolve::wit_plan(plan),
        elapsed_ms,
        attempt,
    }
}

/// The longest deadline of the health checks: how long the new node has to prove itself when
/// they judge it (none without health checks).
fn health_deadline(set: &PluginSet) -> Option<Duration> {
    set.health.iter().map(|h| h.spec.deadline).max()
}

/// Asks the health checks every interval until one verdict is final or the deadline passes.
async fn check_until_final(set: Arc<PluginSet>, plan: Plan, launched: Instant) -> HealthRecord {
    let interval = set
        .health
        .iter()
        .map(|h| h.spec.interval)
        .min()
        .unwrap_or(Duration::from_secs(2));
    let deadline = health_deadline(&set).unwrap_or(Duration::from_secs(300));
    let ms = |d: Duration| journal::ms(d);
    let mut first_answer = None;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let context = health_context(&plan, launched.elapsed().as_millis() as u64, attempt);
        let s = set.clone();
        let answer = crate::plugin::off_runtime(move || {
            s.check(&context)
                .map(|(health, by)| (health, by.map(str::to_string)))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
        first_answer.get_or_insert_with(|| ms(launched.elapsed()));
        let record = |healthy: bool, detail: String, by: Option<String>| HealthRecord {
            healthy,
            detail,
            after_ms: ms(launched.elapsed()),
            first_answer_ms: first_answer,
            checks: attempt,
            by,
        };
        let last = match answer {
            Ok((Health::Healthy(t), _)) => return record(true, t, None),
            Ok((Health::Unhealthy(t), by)) => {
                let detail = match &by {
                    Some(name) => format!("{name}: {t}"),
                    None => t,
                };
                return record(false, detail, by);
            }
            Ok((Health::Pending(t), _)) => {
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
                None,
            );
        }
        tokio::time::sleep(interval).await;
    }
}

/// Logs and journals the verdict, and ends the upgraded node's probation. Returns what to do:
/// nothing for a healthy node, else the `on-unhealthy` of the check that said unhealthy (the
/// strongest of them when the deadline passed).
pub fn on_verdict(
    (set, cfg): (&PluginSet, &Config),
    journal: &mut Journal,
    observer: &Observer,
    plan: &Plan,
    verdict: HealthRecord,
) -> Option<OnUnhealthy> {
    // The check that said unhealthy decides; a deadline that passed, the strongest of them.
    let action = (!verdict.healthy).then(|| {
        set.health
            .iter()
            .filter(|h| verdict.by.as_ref().is_none_or(|by| *by == h.spec.name))
            .map(|h| super::plugins::on_unhealthy(&h.spec, cfg))
            .max()
            .unwrap_or(OnUnhealthy::Warn)
    });
    match action {
        None => tracing::info!(
            after_ms = verdict.after_ms,
            first_answer_ms = verdict.first_answer_ms,
            checks = verdict.checks,
            "upgraded node is healthy: {}",
            verdict.detail
        ),
        Some(action) => tracing::error!(
            after_ms = verdict.after_ms,
            checks = verdict.checks,
            "upgraded node is UNHEALTHY: {}; on-unhealthy = {}{}",
            verdict.detail,
            action.name(),
            match action {
                OnUnhealthy::Warn => ": supervising on",
                OnUnhealthy::Exit => ": stopping the node",
                OnUnhealthy::Rollback => ": rolling the upgrade back",
            }
        ),
    }
    observer.tell(Notice::Health {
        upgrade: Upgrade::new(&plan.name, plan.height),
        healthy: verdict.healthy,
        detail: verdict.detail.clone(),
        by: verdict.by.clone(),
        action: action.map_or("none", OnUnhealthy::name).to_string(),
    });
    if let Err(e) = journal.record_health(verdict) {
        tracing::warn!("cannot journal the health verdict: {e}");
    }
    // A rollback ends the probation itself, once journaled: until then a restart must still
    // see the node on probation.
    if action != Some(OnUnhealthy::Rollback) {
        end(journal);
    }
    action
}
