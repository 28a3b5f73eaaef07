//! `status`'s two renderings of its fixtures: the text line by line, with names too long to show
//! whole, here; the JSON of version 1 key by key in `tests/json.rs`.

use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::ahead::Source;
use crate::ahead::record::{ChainSeen, Entry};
use crate::upgrade::journal::{HealthRecord, Mark, Phase, PhaseTiming, Waiting};

fn timing(phase: Phase, ms: f64) -> PhaseTiming {
    PhaseTiming {
        phase,
        ms,
        end_unix_ms: 0,
    }
}

/// 2023-11-14T22:13:20Z, in Unix milliseconds.
pub(super) const T0: u64 = 1_700_000_000_000;

/// A status with every record and every optional field set.
pub(super) fn full() -> Status {
    Status {
        daemon_home: PathBuf::from("/home/node"),
        current: CurrentBinary {
            upgrade: "v2".into(),
            binary: PathBuf::from("/home/node/cosmovisor/upgrades/v2/bin/simd"),
            binary_ok: true,
            applied_plan: Some(Plan {
                info: r#"{"binaries":{}}"#.into(),
                ..Plan::manual("v2", 40)
            }),
        },
        upgrade_info: Some(UpgradeInfo::Valid {
            name: "v3".into(),
            height: 80,
        }),
        pending: Some(Pending {
            kind: "governance",
            name: "v3".into(),
            height: 80,
            blocked_by_failed_binary: Some(String::new()),
            blocked_binary_unreadable: Some("Permission denied (os error 13)".into()),
        }),
        manual_upgrades: vec![Plan::manual("v4", 120)],
        staged: vec!["v2".into(), "v3".into()],
        upgrade_in_progress: Some(active()),
        last_upgrade: Some(LastUpgrade::new(finished())),
        rollback_in_progress: Some(rollback()),
        failed_upgrades: vec![Failed {
            plan: Plan::manual("v0", 10),
            dir: "v0".into(),
            sha256: "fedcba9876543210".repeat(4),
            fingerprint: "2049:130:4096:1600000000".into(),
            reason: "unhealthy: no new block".into(),
            restored: Some(PathBuf::from("/home/node/backups/data-v0")),
            unrestored: None,
            at_unix_ms: T0 - 90_000,
        }],
        supervisor_pid: Some(4242),
        ahead: Some(ahead()),
    }
}

/// The planner's record: the plan the node halted for, ready, and a proposal.
fn ahead() -> Ahead {
    let entry = |name: &str, height: u64, source: Source| Entry {
        name: name.into(),
        height,
        source,
        proposal: None,
        voting_end_unix: None,
        eta_seconds: None,
        ready: None,
        reason: None,
        binary: None,
        sha256: None,
        preflight: None,
        prepared_unix: None,
        checked_unix: None,
        warmed_unix: None,
    };
    Ahead {
        as_of_unix: T0 / 1000 - 60,
        live: true,
        plan_poll: "1m".into(),
        chain: ChainSeen::default(),
        upcoming: vec![
            Entry {
                eta_seconds: Some(0.0),
                ready: Some(true),
                binary: Some("upgrades/v3/bin/simd".into()),
                sha256: Some("ab".repeat(32)),
                preflight: Some("v3.0.0\ncommit: 1234\n".into()),
                checked_unix: Some(T0 / 1000 - 120),
                ..entry("v3", 80, Source::UpgradeInfo)
            },
            Entry {
                proposal: Some(12),
                eta_seconds: Some(7290.0),
                reason: Some(
                    "proposed, not prepared (WASMVISOR_PREPARE_PROPOSED=true prepares proposals)"
                        .into(),
                ),
                ..entry("v5", 200, Source::Proposal)
            },
        ],
    }
}

/// An upgrade waiting for a resolver's `not-before`.
fn active() -> Active {
    Active {
        plan: Plan::manual("v3", 80),
        dir_name: "v3".into(),
        from: "v2".into(),
        phase: Phase::Wait,
        started_unix_ms: T0,
        backup: Some(PathBuf::from("/home/node/backups/data-v3")),
        phases: vec![timing(Phase::Detect, 0.25), timing(Phase::Stop, 812.5)],
        resumed: 1,
        refused: None,
        waiting: Some(Waiting {
            until_unix: 1_700_000_600,
            by: "window".into(),
            reason: "outside the maintenance window".into(),
        }),
    }
}

/// An upgrade on probation, healthy, with a health entry that is not part of the total.
fn finished() -> Finished {
    Finished {
        plan: Plan::manual("v2", 40),
        from: "genesis".into(),
        to: "v2".into(),
        started_unix_ms: T0 - 60_000,
        finished_unix_ms: T0 - 59_000,
        phases: vec![
            timing(Phase::Stop, 12.5),
            timing(Phase::Swap, 0.125),
            timing(Phase::Launch, 3.0),
            timing(Phase::Health, 250.0),
        ],
        backup: None,
        resumed: 0,
        health: Some(HealthRecord {
            healthy: true,
            detail: "blocks advance".into(),
            after_ms: 1500.0,
            first_answer_ms: Some(250.0),
            checks: 3,
            by: None,
        }),
        probation: true,
        probation_until_unix_ms: Some(T0 + 300_000),
        rolled_back: false,
        // The chain committed 41 6.2 s after the halt; this validator voted for 42 at 9.4 s.
        first_block: Some(Mark {
            height: 41,
            unix_ms: T0 - 60_000 + 6_200,
            validator: None,
        }),
        first_vote: Some(Mark {
            height: 42,
            unix_ms: T0 - 60_000 + 9_400,
            validator: Some("2DD9F44FD9067555C322243C3C913BA7B51D2BE0".into()),
        }),
        no_vote: None,
    }
}

/// A rollback that could not restore data/.
fn rollback() -> Rollback {
    Rollback {
        plan: Plan::manual("v1", 20),
        dir: "v1".into(),
        from: "genesis".into(),
        backup: Some(PathBuf::from("/home/node/backups/data-v1")),
        sha256: "0123456789abcdef".repeat(4),
        fingerprint: "2049:131:4096:1700000000".into(),
        reason: "exited with status 1 on probation".into(),
        restored: false,
        unrestored: Some("no backup".into()),
        started_unix_ms: T0 - 1_000,
    }
}

/// A home where nothing happened yet.
pub(super) fn empty() -> Status {
    Status {
        daemon_home: PathBuf::from("/home/node"),
        current: CurrentBinary {
            upgrade: "genesis".into(),
            binary: PathBuf::from("/home/node/cosmovisor/genesis/bin/simd"),
            binary_ok: false,
            applied_plan: None,
        },
        upgrade_info: None,
        pending: None,
        manual_upgrades: Vec::new(),
        staged: Vec::new(),
        upgrade_in_progress: None,
        last_upgrade: None,
        rollback_in_progress: None,
        failed_upgrades: Vec::new(),
        supervisor_pid: None,
        ahead: None,
    }
}

#[test]
fn text_of_a_full_status() {
    let expected = include_str!("tests/full.txt");
    assert_eq!(full().text_at(T0), expected);
}

#[test]
fn text_of_an_empty_home() {
    let expected = include_str!("tests/empty.txt");
    assert_eq!(empty().text_at(T0), expected);
}

/// A plan name of ten thousand characters is shown as its first 64 and `…`, on every line that
/// names a plan; the JSON gives it whole.
#[test]
fn long_plan_names_are_shortened_in_text_only() {
    let long = "x".repeat(10_000);
    let shown = format!("{}…", "x".repeat(64));
    let mut status = full();
    status.current.applied_plan.as_mut().unwrap().name = long.clone();
    status.pending.as_mut().unwrap().name = long.clone();
    status.upgrade_in_progress.as_mut().unwrap().plan.name = long.clone();
    status.rollback_in_progress.as_mut().unwrap().plan.name = long.clone();
    status.failed_upgrades[0].plan.name = long.clone();
    let text = status.text_at(T0);
    for key in [
        "applied upgrade",
        "pending upgrade",
        "in progress",
        "ROLLBACK",
        "FAILED upgrade",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line in {text}"));
        assert!(
            line.starts_with(&format!("{key:<20} {shown} ")),
            "{key}: {line}"
        );
        assert!(line.chars().count() < 400, "{key}: {line}");
    }
    let value = serde_json::to_value(StatusV1::from(&status)).unwrap();
    assert_eq!(value["pending"]["name"], json!(long));
    assert_eq!(value["current"]["applied_plan"]["name"], json!(long));
}

/// A name is escaped after it is shortened: a control character in what is shown stays one
/// escape, and the cut never splits one.
#[test]
fn shortened_names_are_escaped() {
    let mut status = empty();
    status.pending = Some(Pending {
        kind: "manual",
        name: format!("v2\n\x1b[2J{}", "y".repeat(100)),
        height: 9,
        blocked_by_failed_binary: None,
        blocked_binary_unreadable: None,
    });
    let text = status.text_at(T0);
    let expected = format!(
        "{:<20} v2\\n\\u{{1b}}[2J{}… at height 9 (manual)\n",
        "pending upgrade",
        "y".repeat(57)
    );
    assert!(text.contains(&expected), "{text}");
}

/// A plan that is not ready, from a record a stopped supervisor left: the reason, and when it
/// was seen.
#[test]
fn a_plan_not_ready_is_shown_with_its_reason_and_a_stale_record_says_so() {
    let mut status = empty();
    let mut ahead = ahead();
    ahead.live = false;
    ahead.upcoming[0].ready = Some(false);
    ahead.upcoming[0].reason = Some("upgrades/v3/bin/simd needs libwasmvm.x86_64.so".into());
    ahead.upcoming[0].source = Source::Chain;
    ahead.upcoming[0].eta_seconds = Some(90_061.0);
    status.ahead = Some(ahead);
    let text = status.text_at(T0);
    let line = text
        .lines()
        .find(|l| l.starts_with("next upgrade"))
        .unwrap();
    assert_eq!(
        line,
        "next upgrade         v3 at height 80 (chain), in about 25h1m1s: NOT READY: upgrades/v3/bin/simd needs libwasmvm.x86_64.so (as of 2023-11-14T22:12:20Z, by a supervisor no longer running)"
    );
    let value = serde_json::to_value(StatusV1::from(&status)).unwrap();
    assert_eq!(value["next_upgrade"]["ready"], json!(false));
    assert_eq!(value["next_upgrade"]["eta_seconds"], json!(90_061));
}

mod json;
