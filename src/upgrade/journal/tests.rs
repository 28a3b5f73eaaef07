//! The journal's records, read back from a real folder: what each method writes, what it leaves
//! alone, and what an unreadable journal becomes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::*;

fn open_dir(path: &Path) -> Dir {
    Dir::open_ambient_dir(path, ambient_authority()).unwrap()
}

/// A journal in a fresh folder, with the kill hook off whatever the environment says.
fn journal() -> (tempfile::TempDir, Journal) {
    let tmp = tempfile::tempdir().unwrap();
    let (mut journal, warning) = Journal::open(open_dir(tmp.path()));
    assert_eq!(warning, None);
    journal.kill_at = None;
    (tmp, journal)
}

/// The journal as it is on disk.
fn on_disk(tmp: &tempfile::TempDir) -> State {
    read(&open_dir(tmp.path())).unwrap()
}

fn file(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join(JOURNAL_FILE)
}

/// A state with every record and every optional field set.
fn full_state() -> State {
    let timing = |phase, ms| PhaseTiming {
        phase,
        ms,
        end_unix_ms: 0,
    };
    State {
        active: Some(Active {
            plan: Plan::manual("v3", 300),
            dir_name: "v3".into(),
            from: "upgrades/v2".into(),
            phase: Phase::Wait,
            started_unix_ms: 1_700_000_000_000,
            backup: Some(PathBuf::from("/backups/data-backup-v3")),
            phases: vec![timing(Phase::Detect, 0.25), timing(Phase::Stop, 812.5)],
            resumed: 2,
            refused: Some(Refusal {
                reason: "no binary".into(),
                at_unix_ms: 1_700_000_000_100,
                inputs: "ab12".into(),
            }),
            waiting: Some(Waiting {
                until_unix: 1_700_000_100,
                by: "resolver.wasm".into(),
                reason: "the release is not out".into(),
            }),
        }),
        last: Some(Finished {
            plan: Plan::manual("v2", 200),
            from: "genesis".into(),
            to: "v2".into(),
            started_unix_ms: 1_600_000_000_000,
            finished_unix_ms: 1_600_000_001_000,
            phases: vec![timing(Phase::Swap, 1.5), timing(Phase::Launch, 40.0)],
            backup: None,
            resumed: 0,
            health: Some(HealthRecord {
                healthy: true,
                detail: "blocks advance".into(),
                after_ms: 3000.0,
                first_answer_ms: Some(120.5),
                checks: 3,
                by: None,
            }),
            probation: true,
            probation_until_unix_ms: Some(1_600_000_600_000),
            rolled_back: true,
            first_block: None,
            first_vote: None,
            no_vote: None,
        }),
        seen: Some(SeenHeight {
            upgrade: "v3".into(),
            upgrade_height: 300,
            app_height: 299,
        }),
        rollback: Some(Rollback {
            plan: Plan::manual("v2", 200),
            dir: "v2".into(),
            from: "genesis".into(),
            backup: Some(PathBuf::from("/backups/data-backup-v2")),
            sha256: "00ff".into(),
            fingerprint: "1:2:3:4".into(),
            reason: "exited with status 1".into(),
            restored: true,
            unrestored: Some("no backup".into()),
            started_unix_ms: 1_600_000_002_000,
        }),
        failed: vec![Failed {
            plan: Plan::manual("v1", 100),
            dir: "v1".into(),
            sha256: "ee".into(),
            fingerprint: "5:6:7:8".into(),
            reason: "unhealthy".into(),
            restored: None,
            unrestored: Some("the backup is from another height".into()),
            at_unix_ms: 1_500_000_000_000,
        }],
    }
}

#[test]
fn a_state_saved_reads_back_equal() {
    for state in [State::default(), full_state()] {
        let (tmp, mut journal) = journal();
        journal.state = state.clone();
        journal.save().unwrap();
        assert_eq!(on_disk(&tmp), state);
        let (reopened, warning) = Journal::open(open_dir(tmp.path()));
        assert_eq!(warning, None);
        assert_eq!(reopened.state, state);
        // The quick write writes the same bytes as the durable one.
        let durable = std::fs::read(file(&tmp)).unwrap();
        journal.save_fast().unwrap();
        assert_eq!(std::fs::read(file(&tmp)).unwrap(), durable);
    }
}

/// The on-disk format, pinned: `status` of an older wasmvisor and a resume after an upgrade of
/// wasmvisor read these names.
#[test]
fn the_format_on_disk_is_the_journals() {
    let mut state = State {
        active: full_state().active,
        ..State::default()
    };
    if let Some(active) = state.active.as_mut() {
        active.refused = None;
        active.phases.truncate(1);
    }
    let (tmp, mut journal) = journal();
    journal.state = state;
    journal.save().unwrap();
    let text = std::fs::read_to_string(file(&tmp)).unwrap();
    assert_eq!(
        text,
        r#"{
  "active": {
    "plan": {
      "name": "v3",
      "height": 300
    },
    "dir_name": "v3",
    "from": "upgrades/v2",
    "phase": "wait",
    "started_unix_ms": 1700000000000,
    "backup": "/backups/data-backup-v3",
    "phases": [
      {
        "phase": "detect",
        "ms": 0.25
      }
    ],
    "resumed": 2,
    "waiting": {
      "until_unix": 1700000100,
      "by": "resolver.wasm",
      "reason": "the release is not out"
    }
  },
  "last": null
}"#
    );
}

#[test]
fn record_seen_writes_a_new_height_and_not_the_same_one_again() {
    let (tmp, mut journal) = journal();
    let seen = SeenHeight {
        upgrade: "v2".into(),
        upgrade_height: 200,
        app_height: 199,
    };
    journal.record_seen(seen.clone()).unwrap();
    assert_eq!(on_disk(&tmp).seen, Some(seen.clone()));

    // The same value again leaves the file alone: a marker put in its place survives.
    std::fs::write(file(&tmp), b"marker").unwrap();
    journal.record_seen(seen.clone()).unwrap();
    assert_eq!(std::fs::read(file(&tmp)).unwrap(), b"marker");

    let higher = SeenHeight {
        app_height: 200,
        ..seen
    };
    journal.record_seen(higher.clone()).unwrap();
    assert_eq!(on_disk(&tmp).seen, Some(higher));
}

#[test]
fn forget_seen_removes_the_height_and_writes_nothing_when_there_is_none() {
    let (tmp, mut journal) = journal();
    journal
        .record_seen(SeenHeight {
            upgrade: "v2".into(),
            upgrade_height: 200,
            app_height: 199,
        })
        .unwrap();
    journal.forget_seen().unwrap();
    assert_eq!(journal.state.seen, None);
    assert_eq!(on_disk(&tmp).seen, None);

    std::fs::write(file(&tmp), b"marker").unwrap();
    journal.forget_seen().unwrap();
    assert_eq!(std::fs::read(file(&tmp)).unwrap(), b"marker");
}

/// The phases `Upgrade::apply` journals, in its order.
const PIPELINE: [Phase; 10] = [
    Phase::Detect,
    Phase::Stop,
    Phase::Delay,
    Phase::Backup,
    Phase::CustomPreupgrade,
    Phase::Resolve,
    Phase::Fetch,
    Phase::Wait,
    Phase::Swap,
    Phase::AppPreupgrade,
];

#[test]
fn each_phase_is_on_disk_before_it_runs_and_its_time_after_it() {
    let (tmp, mut journal) = journal();
    let v2 = Plan::manual("v2", 200);
    journal.begin(&v2, "v2", "genesis").unwrap();
    let begun = on_disk(&tmp).active.unwrap();
    assert_eq!((begun.phase, begun.resumed), (Phase::Detect, 0));
    assert!(begun.phases.is_empty());

    for (i, phase) in PIPELINE.into_iter().enumerate() {
        journal.enter(phase).unwrap();
        let active = on_disk(&tmp).active.unwrap();
        assert_eq!(active.phase, phase);
        // The timings of the phases before it were written with it.
        let timed: Vec<Phase> = active.phases.iter().map(|t| t.phase).collect();
        assert_eq!(timed, PIPELINE[..i]);
        journal.done(phase, Duration::from_micros(1_500 * (i as u64 + 1)));
    }

    journal.commit().unwrap();
    let state = on_disk(&tmp);
    assert_eq!(state.active, None);
    let last = state.last.unwrap();
    assert_eq!(
        (last.plan, last.to, last.from),
        (v2, "v2".into(), "genesis".into())
    );
    assert!(last.probation);
    let timings: Vec<(Phase, f64)> = last.phases.iter().map(|t| (t.phase, t.ms)).collect();
    let expected: Vec<(Phase, f64)> = PIPELINE
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p, 1.5 * (i + 1) as f64))
        .collect();
    assert_eq!(timings, expected);
}

#[test]
fn a_restarted_upgrade_counts_the_resume_and_keeps_its_start_and_backup() {
    let (tmp, mut journal) = journal();
    let v2 = Plan::manual("v2", 200);
    journal.begin(&v2, "v2", "genesis").unwrap();
    journal
        .set_backup(Some(PathBuf::from("/backups/data-backup-v2")))
        .unwrap();
    let first = on_disk(&tmp).active.unwrap();

    journal.begin(&v2, "v2", "genesis").unwrap();
    let again = on_disk(&tmp).active.unwrap();
    assert_eq!(again.resumed, 1);
    assert_eq!(again.started_unix_ms, first.started_unix_ms);
    assert_eq!(again.backup, first.backup);

    // Another plan starts afresh.
    journal.begin(&Plan::manual("v3", 300), "v3", "v2").unwrap();
    let other = on_disk(&tmp).active.unwrap();
    assert_eq!((other.resumed, other.backup), (0, None));
}

#[test]
fn an_unreadable_journal_is_reported_and_replaced_by_a_fresh_one() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(file(&tmp), b"{\"active\": {\"plan\":").unwrap();
    let (mut journal, warning) = Journal::open(open_dir(tmp.path()));
    journal.kill_at = None;
    let warning = warning.expect("a warning for the unreadable journal");
    assert!(
        warning.starts_with("wasmvisor-journal.json is unreadable: "),
        "{warning}"
    );
    assert_eq!(journal.state, State::default());
    assert!(read(&open_dir(tmp.path())).is_err());

    journal
        .begin(&Plan::manual("v2", 200), "v2", "genesis")
        .unwrap();
    let state = on_disk(&tmp);
    assert_eq!(state.active.map(|a| a.plan), Some(Plan::manual("v2", 200)));
}

#[test]
fn a_missing_journal_is_an_empty_one() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(read(&open_dir(tmp.path())).unwrap(), State::default());
    let (journal, warning) = Journal::open(open_dir(tmp.path()));
    assert_eq!((journal.state, warning), (State::default(), None));
    assert!(!file(&tmp).exists(), "opening writes nothing");
}

/// Every point the journal offers the kill hook, for an upgrade and a rollback.
fn every_point() -> Vec<String> {
    let mut points: Vec<String> = PIPELINE
        .iter()
        .chain([Phase::Launch, Phase::Health].iter())
        .flat_map(|p| [p.name().to_string(), format!("{}:end", p.name())])
        .collect();
    points.extend(
        [
            "commit",
            "launch",
            "health",
            "rollback",
            "rollback:restored",
            "rollback:end",
        ]
        .map(String::from),
    );
    points
}

#[test]
fn the_kill_hook_fires_only_at_the_point_it_names() {
    let (_tmp, mut journal) = journal();
    for point in every_point() {
        assert!(!journal.kills_at(&point), "unset, it killed at {point}");
    }
    journal.kill_at = Some("swap".into());
    let killing: Vec<String> = every_point()
        .into_iter()
        .filter(|p| journal.kills_at(p))
        .collect();
    assert_eq!(killing, ["swap"]);
}

#[test]
fn unset_the_kill_hook_lets_a_whole_upgrade_and_rollback_run() {
    // Were the hook to fire, SIGKILL would end this test binary and the run would fail.
    let (tmp, mut journal) = journal();
    let v2 = Plan::manual("v2", 200);
    journal.begin(&v2, "v2", "genesis").unwrap();
    for phase in PIPELINE {
        journal.enter(phase).unwrap();
        journal.done(phase, Duration::from_millis(1));
    }
    journal.commit().unwrap();
    journal.checkpoint("commit");
    journal
        .record_launch(Duration::from_millis(40), Duration::from_secs(600))
        .unwrap();
    journal.checkpoint("launch");
    journal.checkpoint("health");
    let (dir, from, backup) = journal.rollback_source(&v2).unwrap();
    journal
        .begin_rollback(Rollback {
            plan: v2.clone(),
            dir,
            from,
            backup,
            sha256: "00ff".into(),
            fingerprint: String::new(),
            reason: "exited".into(),
            restored: false,
            unrestored: None,
            started_unix_ms: unix_ms(),
        })
        .unwrap();
    journal.rollback_restored(Some("no backup".into())).unwrap();
    journal.finish_rollback().unwrap();

    let state = on_disk(&tmp);
    assert_eq!(state.rollback, None);
    let failed: Vec<&Failed> = journal.failures(&v2).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(state.failed[0].unrestored.as_deref(), Some("no backup"));
    let last = state.last.unwrap();
    assert!(last.rolled_back && !last.probation);
}
