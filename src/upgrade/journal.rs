//! The upgrade journal: `$DAEMON_HOME/cosmovisor/wasmvisor-journal.json`.
//!
//! Before each phase of an upgrade starts, the phase is written here atomically, so a supervisor
//! killed anywhere knows on its next start which upgrade was under way and how far it got. The
//! finished upgrade stays as `last` (with each phase's duration) for `wasmvisor status`.

use std::path::PathBuf;
use std::time::Duration;

use cap_std::fs::Dir;

/// The clock the journal's records are stamped with.
pub use crate::clock::unix_ms;
use crate::fs;
use crate::kill_hook::{die_at, kill_at};
use crate::tree::Plan;

mod records;
pub use records::*;

pub const JOURNAL_FILE: &str = "wasmvisor-journal.json";
/// A journal is a few KiB; anything much larger was not written by wasmvisor.
const MAX_JOURNAL: u64 = 4 << 20;

pub struct Journal {
    dir: Dir,
    pub state: State,
    kill_at: Option<String>,
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Why the journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{JOURNAL_FILE}: {0}")]
    Io(#[from] fs::ReadError),
    #[error("{JOURNAL_FILE} is unreadable: {0}")]
    Format(#[from] serde_json::Error),
}

/// Reads the journal without opening it for writing (for `status`).
pub fn read(dir: &Dir) -> Result<State, ReadError> {
    match fs::read_regular(dir, JOURNAL_FILE, MAX_JOURNAL, fs::Follow::No)? {
        None => Ok(State::default()),
        Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
    }
}

impl Journal {
    /// Opens the journal of the tree `dir` (the cosmovisor root). An unreadable journal is
    /// reported and replaced: the decision made from the files still keeps the node safe.
    pub fn open(dir: Dir) -> (Journal, Option<String>) {
        let (state, warning) = match read(&dir) {
            Ok(s) => (s, None),
            Err(e) => (State::default(), Some(e.to_string())),
        };
        let kill_at = kill_at();
        (
            Journal {
                dir,
                state,
                kill_at,
            },
            warning,
        )
    }

    /// Writes the journal durably (temp file, fsync, rename, fsync of the folder).
    fn save(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.state).expect("journal serializes");
        fs::write_atomic(&self.dir, JOURNAL_FILE, &bytes)
    }

    /// Writes the journal atomically but without waiting for the disk. Used for the phase a
    /// running upgrade is in: a resume decides from the tree itself (where `current` points,
    /// which backup exists), so losing this record to a power cut loses nothing but the label,
    /// and the hot path saves two fsyncs per phase.
    fn save_fast(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.state).expect("journal serializes");
        fs::replace(&self.dir, JOURNAL_FILE, &bytes)
    }

    /// A named point outside the phases (`commit`, `launch`, `health`) where the test hook may
    /// kill the supervisor.
    pub fn checkpoint(&self, point: &str) {
        self.hook(point);
    }

    fn hook(&self, point: &str) {
        if self.kills_at(point) {
            die_at(point);
        }
    }

    /// Whether the test hook kills the supervisor at `point`.
    fn kills_at(&self, point: &str) -> bool {
        self.kill_at.as_deref() == Some(point)
    }

    pub fn active(&self) -> Option<&Active> {
        self.state.active.as_ref()
    }

    /// Starts (or restarts, after an interruption) the record of an upgrade.
    pub fn begin(&mut self, plan: &Plan, dir_name: &str, from: &str) -> std::io::Result<()> {
        let resumed = match &self.state.active {
            Some(a) if a.plan == *plan => a.resumed + 1,
            _ => 0,
        };
        let started = match &self.state.active {
            Some(a) if a.plan == *plan => a.started_unix_ms,
            _ => unix_ms(),
        };
        let backup = self
            .state
            .active
            .as_ref()
            .filter(|a| a.plan == *plan)
            .and_then(|a| a.backup.clone());
        self.state.active = Some(Active {
            plan: plan.clone(),
            dir_name: dir_name.to_string(),
            from: from.to_string(),
            phase: Phase::Detect,
            started_unix_ms: started,
            backup,
            phases: Vec::new(),
            resumed,
            refused: None,
            waiting: None,
        });
        // Durable: after a power cut that kept a switch of `current`, this record is what says
        // the switch is this upgrade's, whose pre-upgrade must still run.
        self.save()
    }

    /// Records that the upgrade under way was refused (durably: the next start reads it).
    pub fn refuse(&mut self, refusal: Refusal) -> std::io::Result<()> {
        if let Some(active) = self.state.active.as_mut() {
            active.refused = Some(refusal);
        }
        self.save()
    }

    /// Records that the switch waits (durably: `status` shows it), or no longer does.
    pub fn wait(&mut self, waiting: Option<Waiting>) -> std::io::Result<()> {
        if let Some(active) = self.state.active.as_mut() {
            active.waiting = waiting;
        }
        self.save()
    }

    /// Forgets the upgrade under way: the files no longer call for it.
    pub fn drop_active(&mut self) -> std::io::Result<()> {
        self.state.active = None;
        self.save()
    }

    /// Records (durably) that a rollback begins; the upgrade under way, if any, ends with it.
    pub fn begin_rollback(&mut self, rollback: Rollback) -> std::io::Result<()> {
        self.state.active = None;
        self.state.rollback = Some(rollback);
        self.save()?;
        self.hook("rollback");
        Ok(())
    }

    /// Records (durably) that the rollback is done with data/: restored, or, with `unrestored`
    /// saying why, left as it was.
    pub fn rollback_restored(&mut self, unrestored: Option<String>) -> std::io::Result<()> {
        if let Some(r) = self.state.rollback.as_mut() {
            r.restored = unrestored.is_none();
            r.unrestored = unrestored;
        }
        self.save()?;
        self.hook("rollback:restored");
        Ok(())
    }

    /// The rollback is complete: its upgrade is recorded as failed with its binary.
    pub fn finish_rollback(&mut self) -> std::io::Result<()> {
        if let Some(r) = self.state.rollback.take() {
            if let Some(last) = self.state.last.as_mut().filter(|l| l.plan == r.plan) {
                last.probation = false;
                last.rolled_back = true;
            }
            self.state.failed.push(Failed {
                plan: r.plan,
                dir: r.dir,
                sha256: r.sha256,
                fingerprint: r.fingerprint,
                reason: r.reason,
                restored: r.backup.filter(|_| r.restored),
                unrestored: r.unrestored,
                at_unix_ms: unix_ms(),
            });
        }
        self.save()?;
        self.hook("rollback:end");
        Ok(())
    }

    /// The failures recorded for `plan`, newest first.
    pub fn failures(&self, plan: &Plan) -> impl Iterator<Item = &Failed> {
        let plan = plan.clone();
        self.state
            .failed
            .iter()
            .rev()
            .filter(move |f| f.plan.name == plan.name && f.plan.height == plan.height)
    }

    /// Remembers the application height seen while `upgrade` is pending.
    pub fn record_seen(&mut self, seen: SeenHeight) -> std::io::Result<()> {
        if self.state.seen.as_ref() == Some(&seen) {
            return Ok(());
        }
        self.state.seen = Some(seen);
        self.save_fast()
    }

    /// Forgets the application height seen: the data it was read from is being replaced (a
    /// restored backup may be far below it), and a height that is not the data's could upgrade
    /// a node that has blocks left to execute. Durable before the data changes.
    pub fn forget_seen(&mut self) -> std::io::Result<()> {
        if self.state.seen.take().is_none() {
            return Ok(());
        }
        self.save()
    }

    /// Journals that `phase` starts. Must be called before the phase does anything.
    pub fn enter(&mut self, phase: Phase) -> std::io::Result<()> {
        let active = self
            .state
            .active
            .as_mut()
            .expect("enter() inside an upgrade");
        active.phase = phase;
        self.save_fast()?;
        self.hook(phase.name());
        Ok(())
    }

    /// Remembers a phase's duration (written with the next journal write).
    pub fn done(&mut self, phase: Phase, took: Duration) {
        if let Some(active) = self.state.active.as_mut() {
            active.phases.push(PhaseTiming {
                phase,
                ms: ms(took),
                end_unix_ms: unix_ms(),
            });
        }
        self.hook(&format!("{}:end", phase.name()));
    }

    pub fn set_backup(&mut self, path: Option<PathBuf>) -> std::io::Result<()> {
        if let Some(active) = self.state.active.as_mut() {
            active.backup = path;
        }
        self.save()
    }

    /// The upgrade is complete: the new binary is in place and prepared.
    pub fn commit(&mut self) -> std::io::Result<()> {
        let active = self
            .state
            .active
            .take()
            .expect("commit() inside an upgrade");
        self.state.last = Some(Finished {
            to: active.dir_name,
            plan: active.plan,
            from: active.from,
            started_unix_ms: active.started_unix_ms,
            finished_unix_ms: unix_ms(),
            phases: active.phases,
            backup: active.backup,
            resumed: active.resumed,
            health: None,
            probation: true,
            probation_until_unix_ms: None,
            rolled_back: false,
            first_block: None,
            first_vote: None,
            no_vote: None,
        });
        self.save()
    }

    /// The upgraded node proved itself (or its verdict is in): its probation is over, durably.
    pub fn end_probation(&mut self) -> std::io::Result<()> {
        match self.state.last.as_mut() {
            Some(last) if last.probation => {
                last.probation = false;
                self.save()
            }
            _ => Ok(()),
        }
    }

    /// Whether the last upgrade's binary, in `current`, is still on probation: it was launched
    /// (or not yet) and the window of its probation has not passed.
    pub fn on_probation(&self) -> Option<&Finished> {
        self.state.last.as_ref().filter(|l| {
            l.probation
                && l.probation_until_unix_ms
                    .is_none_or(|until| unix_ms() < until)
        })
    }

    /// What a rollback of `plan` goes back to: the upgrade folder it switched to, the folder
    /// `current` pointed at before, and its backup — from the upgrade under way, or the last one.
    pub fn rollback_source(&self, plan: &Plan) -> Option<(String, String, Option<PathBuf>)> {
        if let Some(a) = self.state.active.as_ref().filter(|a| a.plan == *plan) {
            return Some((a.dir_name.clone(), a.from.clone(), a.backup.clone()));
        }
        self.state
            .last
            .as_ref()
            .filter(|l| l.plan == *plan)
            .map(|l| (l.to.clone(), l.from.clone(), l.backup.clone()))
    }

    /// Records the health check's verdict on the last upgrade.
    pub fn record_health(&mut self, record: HealthRecord) -> std::io::Result<()> {
        if let Some(last) = self.state.last.as_mut() {
            last.phases.retain(|p| p.phase != Phase::Health);
            if let Some(first) = record.first_answer_ms {
                last.phases.push(PhaseTiming {
                    phase: Phase::Health,
                    ms: first,
                    end_unix_ms: unix_ms(),
                });
            }
            last.health = Some(record);
        }
        self.save_fast()
    }

    /// Records what the chain did after the last upgrade (a mark already recorded stays: a
    /// relaunch sees the same chain).
    pub fn record_resumed(&mut self, resumed: Resumed) -> std::io::Result<()> {
        let Some(last) = self.state.last.as_mut() else {
            return Ok(());
        };
        match resumed {
            Resumed::FirstBlock(mark) => {
                last.first_block.get_or_insert(mark);
            }
            Resumed::FirstVote(mark) => {
                last.first_vote.get_or_insert(mark);
            }
            Resumed::NoVote(why) => {
                last.no_vote.get_or_insert(why);
            }
        }
        self.save_fast()
    }

    /// Adds the launch of the upgraded node to the last upgrade's timings (a relaunch after a
    /// restarted supervisor replaces it), and when its probation ends.
    pub fn record_launch(&mut self, took: Duration, probation: Duration) -> std::io::Result<()> {
        if let Some(last) = self.state.last.as_mut() {
            last.probation_until_unix_ms = Some(unix_ms() + probation.as_millis() as u64);
            last.phases.retain(|p| p.phase != Phase::Launch);
            last.phases.push(PhaseTiming {
                phase: Phase::Launch,
                ms: ms(took),
                end_unix_ms: unix_ms(),
            });
            last.finished_unix_ms = unix_ms();
        }
        self.save_fast()
    }
}

#[cfg(test)]
mod tests;
