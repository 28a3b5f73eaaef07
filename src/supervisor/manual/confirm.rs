//! When a height read on the node's RPC is believed: [`Confirm`].

use std::time::{Duration, Instant};

use crate::chain::sockets::Holder;

/// How far a height read on the RPC is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Below the plan's last block: it decides nothing, only how often to look.
    Below,
    /// The plan's last block (or past it), believable — read on a socket of the node's own
    /// process group, or, where the owner cannot be told, from the node `/status` named first —
    /// but not yet seen to hold. The node's exit confirms it.
    Owned,
    /// The plan's last block (or past it), confirmed: see [`Confirm`].
    Confirmed,
}

/// A height the poller read and what it is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    pub height: u64,
    pub trust: Trust,
}

/// How long, and for how many readings in a row, the plan's last block must be read from the
/// node's own socket before it is believed: a node that reached its halt stays there, a stale
/// or confused answer does not last.
const OWNED_HOLD: (u32, Duration) = (2, Duration::from_millis(500));
/// The same where the socket's owner cannot be told: longer, for lack of the stronger proof.
const UNKNOWN_HOLD: (u32, Duration) = (3, Duration::from_millis(1500));
/// A chain's pace is taken as at least this many blocks a second, and a jump may be this many
/// times what the pace allows, plus [`JUMP_SLACK`] blocks: generous for any real node, and still
/// far below a jump from the middle of a run to the plan's height.
const MIN_PACE: f64 = 1.0;
const PACE_FACTOR: f64 = 2.0;
const JUMP_SLACK: f64 = 2.0;

/// Whether a height that would stop the node for a manual upgrade is the node's. One reading is
/// never enough. A reading of the plan's last block (or beyond) is believed when:
/// - it comes from a socket of the node's process group (where the host can tell: never from
///   another process's),
/// - `/status` names the node first seen in this run,
/// - it is no lower than what this run already read, and plausible for the time since (at most
///   [`PACE_FACTOR`] times the chain's pace seen in this run, plus [`JUMP_SLACK`]),
/// - and it holds — the node stopped advancing — for [`OWNED_HOLD`] (or [`UNKNOWN_HOLD`] where
///   the socket's owner cannot be told); a node that exits after one reading from its own
///   socket has stopped too ([`Manual::node_exited`]).
///
/// Pure: the poller does the reading.
pub(crate) struct Confirm {
    /// The plan's height: its last block is one below.
    upgrade_height: u64,
    /// The first and the last height believed in this run, and when: the chain's pace.
    first: Option<(u64, Instant)>,
    last: Option<(u64, Instant)>,
    /// The reading being confirmed: its height, when first read, how many times in a row.
    candidate: Option<(u64, Instant, u32)>,
}

/// What one reading at the plan's last block came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Evidence {
    pub holder: Holder,
    /// Whether `/status` named the node first seen in this run (`None`: unknown).
    pub same_node: Option<bool>,
}

/// Why a reading is not believed, for the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Doubt {
    OtherProcess(String),
    OtherNode,
    WentBack {
        believed: u64,
    },
    TooFast {
        from: u64,
        seconds: f64,
        pace: f64,
    },
    /// Still being confirmed.
    Pending,
}

impl Confirm {
    pub fn new(upgrade_height: u64) -> Confirm {
        Confirm {
            upgrade_height,
            first: None,
            last: None,
            candidate: None,
        }
    }

    /// Whether `height` would stop the node (the plan's last block or beyond).
    pub fn decisive(&self, height: u64) -> bool {
        height.saturating_add(1) >= self.upgrade_height
    }

    /// Takes a reading below the plan's last block.
    pub fn below(&mut self, height: u64, at: Instant) -> Reading {
        self.candidate = None;
        match self.last {
            // A height that went back is another history (a restored node): its pace anew.
            Some((last, _)) if height < last => self.first = Some((height, at)),
            None => self.first = Some((height, at)),
            Some(_) => {}
        }
        self.last = Some((height, at));
        Reading {
            height,
            trust: Trust::Below,
        }
    }

    /// Takes a reading at the plan's last block (or beyond) with what came with it.
    pub fn decisive_reading(
        &mut self,
        height: u64,
        at: Instant,
        evidence: &Evidence,
    ) -> Result<Reading, Doubt> {
        if let Err(doubt) = self.check(height, at, evidence) {
            self.candidate = None;
            return Err(doubt);
        }
        let (since, count) = match self.candidate {
            Some((h, since, count)) if h == height => (since, count.saturating_add(1)),
            _ => (at, 1),
        };
        self.candidate = Some((height, since, count));
        let owned = evidence.holder == Holder::Node;
        let (readings, span) = if owned { OWNED_HOLD } else { UNKNOWN_HOLD };
        if count >= readings && at.duration_since(since) >= span {
            self.first.get_or_insert((height, at));
            self.last = Some((height, at));
            return Ok(Reading {
                height,
                trust: Trust::Confirmed,
            });
        }
        if owned || evidence.same_node == Some(true) {
            Ok(Reading {
                height,
                trust: Trust::Owned,
            })
        } else {
            Err(Doubt::Pending)
        }
    }

    fn check(&self, height: u64, at: Instant, evidence: &Evidence) -> Result<(), Doubt> {
        if let Holder::Other(who) = &evidence.holder {
            return Err(Doubt::OtherProcess(who.clone()));
        }
        if evidence.same_node == Some(false) {
            return Err(Doubt::OtherNode);
        }
        let Some((last, last_at)) = self.last else {
            return Ok(());
        };
        if height < last {
            return Err(Doubt::WentBack { believed: last });
        }
        let pace = match self.first {
            Some((first, first_at)) if last_at > first_at => {
                (last - first) as f64 / last_at.duration_since(first_at).as_secs_f64()
            }
            _ => 0.0,
        }
        .max(MIN_PACE);
        let seconds = at.saturating_duration_since(last_at).as_secs_f64();
        if (height - last) as f64 > JUMP_SLACK + PACE_FACTOR * pace * seconds {
            return Err(Doubt::TooFast {
                from: last,
                seconds,
                pace,
            });
        }
        Ok(())
    }
}
