//! One run of the node as a state machine: what the run holds besides the node (the halt it was
//! given, a probation, the signals passed on, when to look at the files again) and what each
//! event makes of it. The loop in `mod.rs` turns the node, the signals, the height poller, the
//! watcher and the timers into these calls and carries out what they return, so every
//! transition is tested here without a process.

use std::time::Duration;

use tokio::time::Instant;

use crate::node::Exit;
use crate::supervisor::decide::Next;
use crate::tree::Plan;
use crate::upgrade::probation::Probation;

/// The first wait after a half-written upgrade-info.json; it doubles up to the poll interval.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub(super) struct Run {
    /// The manual upgrade the node was launched to halt for.
    pub halt_at: Option<Plan>,
    /// The upgraded node, until it proves itself.
    pub probation: Option<Probation>,
    /// The node's own arguments carry a halt (`--halt-height`): its exit 0 there is no death.
    halts_by_itself: bool,
    /// Signals passed on to the node: its death by one of them is no crash.
    forwarded: Vec<i32>,
    /// When to read the files again.
    recheck: Option<Instant>,
    /// The wait before the next look at a half-written upgrade-info.json.
    backoff: Duration,
    poll_interval: Duration,
}

/// What a signal to wasmvisor does to the node.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OnSignal {
    /// Passed on; the node decides.
    Forward,
    /// A stop request: the node is stopped with it, and supervision ends.
    Stop,
}

/// What a look at the files makes of the run.
#[derive(Debug, PartialEq)]
pub(super) enum OnNext {
    /// A plan is due: the node gives way to the upgrade.
    Upgrade { plan: Plan, manual: bool },
    /// The halt height changed: the node is stopped and launched again. `ended_probation`: the
    /// upgraded node was still on probation, which the relaunch ends.
    Relaunch { ended_probation: bool },
    /// The plan cannot be applied (said, and the node runs on).
    Refused { plan: Plan, reason: String },
    /// Nothing changes.
    Stay,
}

impl Run {
    pub fn new(
        halt_at: Option<Plan>,
        probation: Option<Probation>,
        halts_by_itself: bool,
        poll_interval: Duration,
    ) -> Run {
        Run {
            halt_at,
            probation,
            halts_by_itself,
            forwarded: Vec::new(),
            recheck: None,
            backoff: FIRST_BACKOFF,
            poll_interval,
        }
    }

    /// A signal arrived; `stopping`: it is a stop request.
    pub fn signal(&mut self, sig: i32, stopping: bool) -> OnSignal {
        if stopping {
            return OnSignal::Stop;
        }
        self.forwarded.push(sig);
        OnSignal::Forward
    }

    /// Whether the node's exit is a death (not asked for): a failure status, or a signal
    /// wasmvisor did not pass on. A node's `start` ends with 0 only at a halt it was given; on
    /// probation, any other end is a failure (a binary that prints its usage and exits 0).
    pub fn died(&self, exit: Exit) -> bool {
        let died = match exit {
            Exit::Code(c) => c != 0,
            Exit::Signal(s) => !self.forwarded.contains(&s),
        };
        died || (self.probation.is_some() && self.halt_at.is_none() && !self.halts_by_itself)
    }

    /// When the probation ends by itself: only without health checks, which end it with their
    /// verdict instead.
    pub fn probation_ends(&self) -> Option<Instant> {
        self.probation.as_ref().and_then(|p| p.until)
    }

    /// The probation's time passed. Returns whether one was running.
    pub fn probation_passed(&mut self) -> bool {
        self.probation.take().is_some()
    }

    /// The health checks' verdict came: the probation is over either way. Returns the plan it
    /// judged, if the node was still on probation.
    pub fn verdict(&mut self) -> Option<Plan> {
        self.probation.take().map(|p| p.plan)
    }

    /// The files changed, or the node can go no further: look at them now.
    pub fn look_now(&mut self) {
        self.recheck = Some(Instant::now());
    }

    /// When to look at the files next (never, for `None`).
    pub fn next_look(&self) -> Option<Instant> {
        self.recheck
    }

    /// The files were read. `half_written`: upgrade-info.json is still being written, so look
    /// again shortly, waiting twice as long each time up to the poll interval. Returns whether
    /// they can be decided on.
    pub fn looked(&mut self, half_written: bool) -> bool {
        if half_written {
            self.recheck = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(self.poll_interval);
            return false;
        }
        self.recheck = None;
        self.backoff = FIRST_BACKOFF;
        true
    }

    /// What the decision from the files makes of this run.
    pub fn next(&mut self, next: Next) -> OnNext {
        match next {
            Next::Apply { plan, manual } => OnNext::Upgrade { plan, manual },
            Next::Launch { halt_at } if height(&halt_at) != height(&self.halt_at) => {
                OnNext::Relaunch {
                    ended_probation: self.probation.take().is_some(),
                }
            }
            Next::Launch { .. } => OnNext::Stay,
            Next::Refuse { plan, reason } => OnNext::Refused { plan, reason },
        }
    }
}

fn height(plan: &Option<Plan>) -> Option<u64> {
    plan.as_ref().map(|p| p.height)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probation(until: Option<Instant>) -> Probation {
        Probation {
            plan: Plan::manual("v2", 60),
            launched: std::time::Instant::now(),
            until,
        }
    }

    const POLL: Duration = Duration::from_millis(300);

    #[test]
    fn a_failure_status_or_a_signal_not_passed_on_is_a_death() {
        let mut run = Run::new(None, None, false, POLL);
        assert!(!run.died(Exit::Code(0)));
        assert!(run.died(Exit::Code(2)));
        assert!(run.died(Exit::Signal(15)));
        assert_eq!(run.signal(15, false), OnSignal::Forward);
        assert!(
            !run.died(Exit::Signal(15)),
            "a signal passed on is no crash"
        );
        assert!(run.died(Exit::Signal(9)));
    }

    #[test]
    fn on_probation_an_exit_0_without_a_halt_is_a_death() {
        let run = Run::new(None, Some(probation(None)), false, POLL);
        assert!(run.died(Exit::Code(0)));
        let given_a_halt = Run::new(
            Some(Plan::manual("v3", 90)),
            Some(probation(None)),
            false,
            POLL,
        );
        assert!(!given_a_halt.died(Exit::Code(0)));
        let halting_by_itself = Run::new(None, Some(probation(None)), true, POLL);
        assert!(!halting_by_itself.died(Exit::Code(0)));
    }

    #[test]
    fn a_stop_request_stops_and_is_not_remembered_as_passed_on() {
        let mut run = Run::new(None, None, false, POLL);
        assert_eq!(run.signal(2, true), OnSignal::Stop);
        assert!(run.died(Exit::Signal(2)));
    }

    #[test]
    fn the_probation_ends_by_time_only_without_health_checks() {
        let at = Instant::now() + Duration::from_secs(30);
        let mut timed = Run::new(None, Some(probation(Some(at))), false, POLL);
        assert_eq!(timed.probation_ends(), Some(at));
        assert!(timed.probation_passed());
        assert_eq!(timed.probation_ends(), None);
        assert!(!timed.probation_passed(), "it passes once");

        let mut judged = Run::new(None, Some(probation(None)), false, POLL);
        assert_eq!(judged.probation_ends(), None);
        assert_eq!(judged.verdict().map(|p| p.name), Some("v2".into()));
        assert_eq!(judged.verdict(), None, "one verdict ends it");
    }

    #[test]
    fn a_half_written_plan_is_looked_at_again_sooner_than_the_poll_interval() {
        let mut run = Run::new(None, None, false, POLL);
        assert_eq!(run.next_look(), None);
        run.look_now();
        assert!(run.next_look().unwrap() <= Instant::now());
        let mut waits = Vec::new();
        for _ in 0..7 {
            let before = Instant::now();
            assert!(!run.looked(true));
            waits.push(run.next_look().unwrap() - before);
        }
        let ms: Vec<u128> = waits.iter().map(|w| w.as_millis()).collect();
        for (w, expected) in ms.iter().zip([20, 40, 80, 160, 300, 300, 300]) {
            assert!(
                (expected..expected + 50).contains(w),
                "waits {ms:?}: doubling from 20 ms up to the poll interval"
            );
        }
        assert!(run.looked(false));
        assert_eq!(run.next_look(), None);
        assert!(!run.looked(true));
        let again = run.next_look().unwrap() - Instant::now();
        assert!(
            again <= Duration::from_millis(20),
            "settled resets the wait: {again:?}"
        );
    }

    #[test]
    fn the_decision_from_the_files_ends_the_run_only_when_it_changes_it() {
        let mut run = Run::new(Some(Plan::manual("v3", 90)), None, false, POLL);
        let launch = |p: Option<Plan>| Next::Launch { halt_at: p };
        assert_eq!(
            run.next(launch(Some(Plan::manual("v3-renamed", 90)))),
            OnNext::Stay
        );
        assert_eq!(
            run.next(launch(Some(Plan::manual("v3", 80)))),
            OnNext::Relaunch {
                ended_probation: false
            }
        );
        assert_eq!(
            run.next(launch(None)),
            OnNext::Relaunch {
                ended_probation: false
            }
        );
        assert_eq!(
            run.next(Next::Apply {
                plan: Plan::manual("v3", 90),
                manual: true
            }),
            OnNext::Upgrade {
                plan: Plan::manual("v3", 90),
                manual: true
            }
        );
        let refused = Next::Refuse {
            plan: Plan::manual("v3", 90),
            reason: "no binary".into(),
        };
        assert!(matches!(run.next(refused), OnNext::Refused { .. }));

        let mut upgraded = Run::new(None, Some(probation(None)), false, POLL);
        assert_eq!(upgraded.next(launch(None)), OnNext::Stay);
        assert_eq!(
            upgraded.next(launch(Some(Plan::manual("v3", 90)))),
            OnNext::Relaunch {
                ended_probation: true
            },
            "a relaunch ends the probation"
        );
        assert!(upgraded.probation.is_none());
    }
}
