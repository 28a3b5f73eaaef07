//! The last upgrade as a validator counts its downtime: from the halt (the block the old binary
//! could not execute) through wasmvisor's phases to the new binary's start, then the chain's
//! first block after the upgrade height and this validator's first vote. Each moment is in
//! milliseconds after the halt; `status` prints it, `status --json` carries it and
//! `status --timeline FILE.svg` draws it (`svg.rs`).

use crate::upgrade::journal::{Finished, Phase};

/// One row: a phase (a bar) or a moment (`from_ms == to_ms`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub what: &'static str,
    pub from_ms: f64,
    pub to_ms: f64,
    /// The block it concerns (the halt, the first block, the first vote).
    pub height: Option<u64>,
}

impl Row {
    pub fn is_moment(&self) -> bool {
        self.from_ms == self.to_ms
    }
}

/// The downtime until each end a validator counts: the new binary's start, the chain's first
/// block after the upgrade height, this validator's first vote after it (ms after the halt).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Downtime {
    pub start: Option<f64>,
    pub first_block: Option<f64>,
    pub first_signature: Option<f64>,
}

/// The rows of `f`, in order. A journal written before phases kept their end times places them
/// one after the other.
pub fn rows(f: &Finished) -> Vec<Row> {
    let halt = f.started_unix_ms as f64;
    let mut rows = vec![Row {
        what: "halt",
        from_ms: 0.0,
        to_ms: 0.0,
        height: Some(f.plan.height),
    }];
    let mut cursor = 0.0f64;
    for p in f.phases.iter().filter(|p| p.phase != Phase::Health) {
        let to = if p.end_unix_ms > 0 {
            (p.end_unix_ms as f64 - halt).max(p.ms)
        } else {
            cursor + p.ms
        };
        cursor = to;
        rows.push(Row {
            what: p.phase.name(),
            from_ms: to - p.ms,
            to_ms: to,
            height: None,
        });
    }
    for (what, mark) in [
        ("first block", &f.first_block),
        ("first vote", &f.first_vote),
    ] {
        if let Some(m) = mark {
            let at = m.unix_ms as f64 - halt;
            rows.push(Row {
                what,
                from_ms: at,
                to_ms: at,
                height: Some(m.height),
            });
        }
    }
    rows
}

/// The downtime of `f` until each end that is known.
pub fn downtime(f: &Finished) -> Downtime {
    let rows = rows(f);
    let at = |what: &str| rows.iter().find(|r| r.what == what).map(|r| r.to_ms);
    Downtime {
        start: at("launch"),
        first_block: at("first block"),
        first_signature: at("first vote"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Plan;
    use crate::upgrade::journal::{Mark, PhaseTiming};

    fn finished(phases: Vec<PhaseTiming>) -> Finished {
        Finished {
            plan: Plan {
                name: "v2".into(),
                height: 100,
                info: String::new(),
            },
            from: "genesis".into(),
            to: "v2".into(),
            started_unix_ms: 1_000_000,
            finished_unix_ms: 1_000_050,
            phases,
            backup: None,
            resumed: 0,
            health: None,
            probation: false,
            probation_until_unix_ms: None,
            rolled_back: false,
            first_block: Some(Mark {
                height: 101,
                unix_ms: 1_004_000,
                validator: None,
            }),
            first_vote: Some(Mark {
                height: 102,
                unix_ms: 1_009_500,
                validator: Some("AB".into()),
            }),
            no_vote: None,
        }
    }

    fn phase(phase: Phase, ms: f64, end_unix_ms: u64) -> PhaseTiming {
        PhaseTiming {
            phase,
            ms,
            end_unix_ms,
        }
    }

    #[test]
    fn phases_sit_where_they_ended_and_the_chain_s_marks_after_them() {
        let f = finished(vec![
            phase(Phase::Detect, 1.0, 1_000_001),
            phase(Phase::Stop, 4.0, 1_000_005),
            // Resumed after a restart: a gap before the swap.
            phase(Phase::Swap, 1.0, 1_000_020),
            phase(Phase::Launch, 2.0, 1_000_030),
            phase(Phase::Health, 900.0, 1_000_930),
        ]);
        let rows = rows(&f);
        let names: Vec<&str> = rows.iter().map(|r| r.what).collect();
        assert_eq!(
            names,
            [
                "halt",
                "detect",
                "stop",
                "swap",
                "launch",
                "first block",
                "first vote"
            ]
        );
        assert_eq!((rows[3].from_ms, rows[3].to_ms), (19.0, 20.0));
        assert!(rows[5].is_moment() && rows[5].height == Some(101));
        assert_eq!(
            downtime(&f),
            Downtime {
                start: Some(30.0),
                first_block: Some(4000.0),
                first_signature: Some(9500.0)
            }
        );
    }

    #[test]
    fn an_older_journal_s_phases_follow_one_another() {
        let mut f = finished(vec![
            phase(Phase::Detect, 1.0, 0),
            phase(Phase::Stop, 4.0, 0),
            phase(Phase::Launch, 2.0, 0),
        ]);
        f.first_vote = None;
        let rows = rows(&f);
        assert_eq!((rows[2].from_ms, rows[2].to_ms), (1.0, 5.0));
        assert_eq!(downtime(&f).start, Some(7.0));
        assert_eq!(downtime(&f).first_signature, None);
    }
}
