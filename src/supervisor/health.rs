//! After an upgrade: the health plugins are asked about the new node every interval until one
//! verdict is final or the deadline passes; the verdict is logged, journaled and acted on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::plugin::{Health, OnUnhealthy, PluginSet};
use crate::tree::Plan;
use crate::upgrade::journal::{self, HealthRecord, Journal};

/// Exit status when the health check fails and `on-unhealthy = "exit"`.
pub const HEALTH_EXIT_CODE: i32 = 3;

/// Asks the health checks every interval until one verdict is final or the deadline passes.
pub(super) async fn check_until_final(
    set: Arc<PluginSet>,
    plan: Plan,
    launched: Instant,
) -> HealthRecord {
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
    let ms = |d: Duration| journal::ms(d);
    let mut first_answer = None;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let context =
            crate::upgrade::health_context(&plan, launched.elapsed().as_millis() as u64, attempt);
        let s = set.clone();
        let answer = crate::plugin::off_runtime(move || s.check(&context))
            .await
            .and_then(|r| r.map_err(|e| e.to_string()));
        first_answer.get_or_insert_with(|| ms(launched.elapsed()));
        let record = |healthy: bool, detail: String| HealthRecord {
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
}

/// Logs and journals the verdict, and ends the upgraded node's probation. Returns what to do:
/// nothing for a healthy node, else the strongest `on-unhealthy` of the health checks.
pub(super) fn on_verdict(
    set: &PluginSet,
    cfg: &Config,
    journal: &mut Journal,
    verdict: HealthRecord,
) -> Option<OnUnhealthy> {
    let action = (!verdict.healthy).then(|| {
        set.health
            .iter()
            .map(|h| crate::upgrade::plugins::on_unhealthy(&h.spec, cfg))
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
    if let Err(e) = journal.record_health(verdict) {
        tracing::warn!("cannot journal the health verdict: {e}");
    }
    // A rollback ends the probation itself, once journaled: until then a restart must still
    // see the node on probation.
    if action != Some(OnUnhealthy::Rollback)
        && let Err(e) = journal.end_probation()
    {
        tracing::warn!("cannot journal the end of the probation: {e}");
    }
    action
}
