//! The conversions into `status --json`'s types: field by field, so a field added to the journal
//! or the tree is not in the output until a line here puts it there.

use super::{
    ActiveV1, CurrentV1, DowntimeV1, FailedV1, HealthV1, LastUpgradeV1, NextUpgradeV1, PendingV1,
    PhaseTimingV1, PlanV1, RefusalV1, RollbackV1, StatusV1, TimelineV1, UpcomingV1, UpgradeInfoV1,
    VERSION, WaitingV1,
};
use crate::ahead::record::Entry;
use crate::cli::status::{CurrentBinary, LastUpgrade, Pending, Status, UpgradeInfo, timeline};
use crate::tree::Plan;
use crate::upgrade::journal::{
    Active, Failed, HealthRecord, PhaseTiming, Refusal, Rollback, Waiting,
};

impl From<&Status> for StatusV1 {
    fn from(s: &Status) -> StatusV1 {
        StatusV1 {
            version: VERSION,
            current: CurrentV1::from(&s.current),
            daemon_home: s.daemon_home.clone(),
            failed_upgrades: s.failed_upgrades.iter().map(FailedV1::from).collect(),
            last_upgrade: s.last_upgrade.as_ref().map(LastUpgradeV1::from),
            manual_upgrades: s.manual_upgrades.iter().map(PlanV1::from).collect(),
            next_upgrade: s
                .ahead
                .as_ref()
                .and_then(|a| a.next().map(|e| next_upgrade(e, a.as_of_unix))),
            pending: s.pending.as_ref().map(PendingV1::from),
            rollback_in_progress: s.rollback_in_progress.as_ref().map(RollbackV1::from),
            staged: s.staged.clone(),
            supervisor_pid: s.supervisor_pid,
            upcoming: s
                .ahead
                .iter()
                .flat_map(|a| a.upcoming.iter().map(UpcomingV1::from))
                .collect(),
            upgrade_in_progress: s.upgrade_in_progress.as_ref().map(ActiveV1::from),
            upgrade_info: s.upgrade_info.as_ref().map(UpgradeInfoV1::from),
        }
    }
}

fn next_upgrade(e: &Entry, as_of_unix: u64) -> NextUpgradeV1 {
    NextUpgradeV1 {
        as_of_unix,
        binary: e.binary.clone(),
        eta_seconds: e.eta_seconds.map(|s| s.round() as u64),
        height: e.height,
        name: e.name.clone(),
        preflight: e.preflight.clone(),
        ready: e.ready,
        reason: e.reason.clone(),
        sha256: e.sha256.clone(),
        source: e.source.label().into(),
    }
}

impl From<&Entry> for UpcomingV1 {
    fn from(e: &Entry) -> UpcomingV1 {
        UpcomingV1 {
            eta_seconds: e.eta_seconds.map(|s| s.round() as u64),
            height: e.height,
            name: e.name.clone(),
            proposal: e.proposal,
            ready: e.ready,
            reason: e.reason.clone(),
            source: e.source.label().into(),
        }
    }
}

impl From<&Plan> for PlanV1 {
    fn from(p: &Plan) -> PlanV1 {
        PlanV1 {
            height: p.height,
            info: p.info.clone(),
            name: p.name.clone(),
        }
    }
}

impl From<&CurrentBinary> for CurrentV1 {
    fn from(c: &CurrentBinary) -> CurrentV1 {
        CurrentV1 {
            applied_plan: c.applied_plan.as_ref().map(PlanV1::from),
            binary: c.binary.clone(),
            binary_ok: c.binary_ok,
            upgrade: c.upgrade.clone(),
        }
    }
}

impl From<&UpgradeInfo> for UpgradeInfoV1 {
    fn from(u: &UpgradeInfo) -> UpgradeInfoV1 {
        let none = UpgradeInfoV1 {
            height: None,
            name: None,
            reason: None,
            state: "incomplete",
        };
        match u {
            UpgradeInfo::Incomplete => none,
            UpgradeInfo::Invalid { reason } => UpgradeInfoV1 {
                reason: Some(reason.clone()),
                state: "invalid",
                ..none
            },
            UpgradeInfo::Valid { name, height } => UpgradeInfoV1 {
                height: Some(*height),
                name: Some(name.clone()),
                state: "valid",
                ..none
            },
        }
    }
}

impl From<&Pending> for PendingV1 {
    fn from(p: &Pending) -> PendingV1 {
        PendingV1 {
            blocked_binary_unreadable: p.blocked_binary_unreadable.clone(),
            blocked_by_failed_binary: p.blocked_by_failed_binary.clone(),
            height: p.height,
            kind: p.kind,
            name: p.name.clone(),
        }
    }
}

impl From<&PhaseTiming> for PhaseTimingV1 {
    fn from(p: &PhaseTiming) -> PhaseTimingV1 {
        PhaseTimingV1 {
            ms: p.ms,
            phase: p.phase.name(),
        }
    }
}

impl From<&Active> for ActiveV1 {
    fn from(a: &Active) -> ActiveV1 {
        ActiveV1 {
            backup: a.backup.clone(),
            dir_name: a.dir_name.clone(),
            from: a.from.clone(),
            phase: a.phase.name(),
            phases: a.phases.iter().map(PhaseTimingV1::from).collect(),
            plan: PlanV1::from(&a.plan),
            refused: a.refused.as_ref().map(RefusalV1::from),
            resumed: a.resumed,
            started_unix_ms: a.started_unix_ms,
            waiting: a.waiting.as_ref().map(WaitingV1::from),
        }
    }
}

impl From<&Refusal> for RefusalV1 {
    fn from(r: &Refusal) -> RefusalV1 {
        RefusalV1 {
            at_unix_ms: r.at_unix_ms,
            inputs: r.inputs.clone(),
            reason: r.reason.clone(),
        }
    }
}

impl From<&Waiting> for WaitingV1 {
    fn from(w: &Waiting) -> WaitingV1 {
        WaitingV1 {
            by: w.by.clone(),
            reason: w.reason.clone(),
            until_unix: w.until_unix,
        }
    }
}

impl From<&LastUpgrade> for LastUpgradeV1 {
    fn from(last: &LastUpgrade) -> LastUpgradeV1 {
        let f = &last.finished;
        let down = timeline::downtime(f);
        let round = |ms: f64| (ms * 1000.0).round() / 1000.0;
        LastUpgradeV1 {
            backup: f.backup.clone(),
            downtime_ms: DowntimeV1 {
                first_block: down.first_block.map(round),
                first_signature: down.first_signature.map(round),
                start: down.start.map(round),
            },
            finished_unix_ms: f.finished_unix_ms,
            from: f.from.clone(),
            health: f.health.as_ref().map(HealthV1::from),
            no_vote: f.no_vote.clone(),
            phases: f.phases.iter().map(PhaseTimingV1::from).collect(),
            plan: PlanV1::from(&f.plan),
            probation: f.probation,
            probation_until_unix_ms: f.probation_until_unix_ms,
            resumed: f.resumed,
            rolled_back: f.rolled_back,
            started_unix_ms: f.started_unix_ms,
            timeline: timeline::rows(f)
                .into_iter()
                .map(|r| TimelineV1 {
                    from_ms: round(r.from_ms),
                    height: r.height,
                    to_ms: round(r.to_ms),
                    what: r.what,
                })
                .collect(),
            to: f.to.clone(),
            total_ms: last.total_ms,
        }
    }
}

impl From<&HealthRecord> for HealthV1 {
    fn from(h: &HealthRecord) -> HealthV1 {
        HealthV1 {
            after_ms: h.after_ms,
            checks: h.checks,
            detail: h.detail.clone(),
            first_answer_ms: h.first_answer_ms,
            healthy: h.healthy,
        }
    }
}

impl From<&Rollback> for RollbackV1 {
    fn from(r: &Rollback) -> RollbackV1 {
        RollbackV1 {
            backup: r.backup.clone(),
            dir: r.dir.clone(),
            fingerprint: r.fingerprint.clone(),
            from: r.from.clone(),
            plan: PlanV1::from(&r.plan),
            reason: r.reason.clone(),
            restored: r.restored,
            sha256: r.sha256.clone(),
            started_unix_ms: r.started_unix_ms,
            unrestored: r.unrestored.clone(),
        }
    }
}

impl From<&Failed> for FailedV1 {
    fn from(f: &Failed) -> FailedV1 {
        FailedV1 {
            at_unix_ms: f.at_unix_ms,
            dir: f.dir.clone(),
            fingerprint: f.fingerprint.clone(),
            plan: PlanV1::from(&f.plan),
            reason: f.reason.clone(),
            restored: f.restored.clone(),
            sha256: f.sha256.clone(),
            unrestored: f.unrestored.clone(),
        }
    }
}
