//! Manual upgrades (`add-upgrade --upgrade-height H`, batches), all in one place: the node is
//! launched with the `--halt-height` its SDK needs for the old binary's last block to be H − 1,
//! the application's height is followed on the RPC while the plan is pending, and the upgrade
//! is due once it reads H − 1 — the node can go no further, whether it exits or stays up. That
//! reading is believed only once confirmed ([`Confirm`]: the node's own socket, the same node, a
//! height that holds), since it stops the node for good. The height read near H is journaled, so
//! a restart knows how far the node got; the plan's binary is staged while the node runs
//! towards H.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::chain::rpc::{NodeInfo, Rpc};
use crate::chain::sockets::{self, Holder};
use crate::config::{Config, Endpoint, HaltHeight};
use crate::node::args;
use crate::plugin::PluginSet;
use crate::tree::Plan;
use crate::upgrade::journal::{Journal, SeenHeight};

/// Heights read within this many blocks of a manual upgrade are kept in the journal.
const KEPT_WITHIN: u64 = 4;

pub(super) struct Manual {
    rpc: Endpoint,
    halt: HaltHeight,
    /// The application height to decide with, last read in this run: one below the plan's last
    /// block as read, or at it once confirmed (see [`Confirm`]).
    pub height: Option<u64>,
    /// A reading of the plan's last block from the node's own socket that was not yet seen to
    /// hold: the node's exit confirms it (it stopped advancing).
    owned: Option<u64>,
    /// The application height a supervisor read for a pending plan, from the journal.
    seen: Option<SeenHeight>,
    /// Plans whose binary was already prepared ahead of their height.
    prepared: BTreeSet<String>,
}

impl Manual {
    pub fn new(cfg: &Config, seen: Option<SeenHeight>) -> Manual {
        Manual {
            rpc: cfg.rpc.clone(),
            halt: cfg.halt_height,
            height: None,
            owned: None,
            seen,
            prepared: BTreeSet::new(),
        }
    }

    /// The node's arguments for a run that must halt before `plan` (if any).
    pub fn args_for(&self, base: &[String], plan: Option<&Plan>) -> Vec<String> {
        let mut args = base.to_vec();
        if let Some(plan) = plan {
            let flag = self.halt.flag_for(plan.height);
            args::insert_halt_height(&mut args, flag);
            tracing::info!(
                upgrade = %plan.name,
                height = plan.height,
                halt_height = flag,
                semantics = self.halt.name(),
                "manual upgrade pending: the node will stop after block {}",
                plan.height - 1
            );
        }
        args
    }

    /// The application height to decide with: this run's, else what a previous supervisor read
    /// for a plan that is still in the batch (an application height never goes back).
    pub fn known_height(&self, batch: &[Plan]) -> Option<u64> {
        self.height.or_else(|| {
            let seen = self.seen.as_ref()?;
            batch
                .iter()
                .any(|p| p.name == seen.upgrade && p.height == seen.upgrade_height)
                .then_some(seen.app_height)
        })
    }

    /// Whether the application reported the last block before `plan`.
    pub fn reached(&self, plan: Option<&Plan>) -> bool {
        plan.is_some_and(|p| self.height.is_some_and(|h| h + 1 >= p.height))
    }

    /// Takes a reading the poller published, and journals the height to decide with while the
    /// plan is near. A reading of the plan's last block is journaled only once confirmed: a
    /// journaled height is believed by every later start.
    pub fn note(&mut self, reading: Option<Reading>, plan: Option<&Plan>, journal: &mut Journal) {
        let Some(reading) = reading else { return };
        match reading.trust {
            Trust::Owned => {
                self.owned = Some(reading.height);
                return;
            }
            Trust::Below | Trust::Confirmed => {
                self.owned = None;
                self.height = Some(reading.height);
            }
        }
        let h = reading.height;
        if let Some(plan) = plan
            && h.saturating_add(KEPT_WITHIN) >= plan.height
        {
            let seen = SeenHeight {
                upgrade: plan.name.clone(),
                upgrade_height: plan.height,
                app_height: h,
            };
            if let Err(e) = journal.record_seen(seen.clone()) {
                tracing::warn!("cannot journal the node's height: {e}");
            }
            self.seen = Some(seen);
        }
    }

    /// Whether a reading that may decide `plan` could still be on its way: the node was last
    /// read near its last block, and no reading of it was believed yet.
    pub fn awaits_last_reading(&self, plan: Option<&Plan>) -> bool {
        plan.is_some_and(|p| !self.reached(Some(p)) && !self.far_from(p))
    }

    /// Whether the node was last seen far from `plan`'s last block (more than
    /// [`KEPT_WITHIN`] blocks below it, nothing near it read): a relaunch then cannot reach it
    /// unseen.
    pub fn far_from(&self, plan: &Plan) -> bool {
        self.owned.is_none()
            && self
                .height
                .is_some_and(|h| h.saturating_add(KEPT_WITHIN) < plan.height)
    }

    /// The node exited: a last block its own socket reported is confirmed by the exit (it can
    /// advance no further).
    pub fn node_exited(&mut self, plan: Option<&Plan>, journal: &mut Journal) {
        if let Some(height) = self.owned.take() {
            tracing::info!(
                height,
                "the node reported its last block before the upgrade, then exited"
            );
            let reading = Reading {
                height,
                trust: Trust::Confirmed,
            };
            self.note(Some(reading), plan, journal);
        }
    }

    /// Starts following the application's height for `plan`.
    pub fn follow(
        &self,
        plan: &Plan,
        node: Pid,
    ) -> (JoinHandle<()>, watch::Receiver<Option<Reading>>) {
        self.follow_after(plan, node, Duration::ZERO)
    }

    /// [`Manual::follow`], starting after `delay` (a poller started again after it ended).
    pub fn follow_after(
        &self,
        plan: &Plan,
        node: Pid,
        delay: Duration,
    ) -> (JoinHandle<()>, watch::Receiver<Option<Reading>>) {
        let (tx, rx) = watch::channel(None);
        let (rpc, height) = (self.rpc.clone(), plan.height);
        let poller = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            poll_height(rpc, height, node, tx).await;
        });
        (poller, rx)
    }

    /// Stages `plan`'s binary in the background while the node runs towards its height, so
    /// the upgrade finds it there (once per plan and supervisor).
    pub fn prepare_ahead(&mut self, plan: &Plan, plugins: &Arc<PluginSet>, cfg: &Config) {
        if !self.prepared.insert(plan.name.clone()) {
            return;
        }
        let (set, cfg, plan) = (plugins.clone(), cfg.clone(), plan.clone());
        tokio::spawn(async move {
            let name = plan.name.clone();
            let result =
                crate::plugin::off_runtime(move || crate::upgrade::prepare(&set, &cfg, &plan))
                    .await
                    .and_then(|r| r);
            match result {
                Ok(done) => tracing::info!(upgrade = %name, "prepared ahead of the halt: {done}"),
                Err(e) => {
                    tracing::warn!(upgrade = %name, "cannot prepare ahead of the halt (the upgrade will try again): {e}")
                }
            }
        });
    }
}

/// How far a height read on the RPC is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trust {
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
pub(super) struct Reading {
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
pub(super) struct Confirm {
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
pub(super) struct Evidence {
    pub holder: Holder,
    /// Whether `/status` named the node first seen in this run (`None`: unknown).
    pub same_node: Option<bool>,
}

/// Why a reading is not believed, for the log.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Doubt {
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

/// Follows the application's height while a manual upgrade is pending, faster as the height
/// nears, so the last block before the upgrade (H - 1) is seen at once. Until this run's RPC first
/// answers (for up to a minute), it polls quickly: a node that halts and exits (SDK v0.47) keeps
/// its RPC up only briefly. A failed poll is only that: the next one is tried.
async fn poll_height(
    endpoint: Endpoint,
    upgrade_height: u64,
    node: Pid,
    tx: watch::Sender<Option<Reading>>,
) {
    let rpc = Rpc::new(&endpoint, Duration::from_millis(500));
    let started = Instant::now();
    let mut answered = false;
    let mut confirm = Confirm::new(upgrade_height);
    let mut identity: Option<NodeInfo> = None;
    let mut identity_tries = 0u32;
    // Whether the port was seen held by the node in this run: a node closes its listener as it
    // halts, and a check that then finds no listener is no reason to doubt it.
    let mut owner = OwnerSeen::default();
    let mut doubted = false;
    let mut warned: Option<std::mem::Discriminant<Doubt>> = None;
    loop {
        let period = match tx.borrow().map(|r| r.height) {
            // A refused answer is asked again, but not at the pace of the halt's last blocks.
            _ if doubted => Duration::from_secs(1),
            _ if !answered && started.elapsed() < Duration::from_secs(60) => {
                Duration::from_millis(25)
            }
            Some(h) if h.saturating_add(4) >= upgrade_height => Duration::from_millis(25),
            Some(h) if h.saturating_add(20) >= upgrade_height => Duration::from_millis(250),
            _ => Duration::from_secs(1),
        };
        match rpc.app_height().await {
            Ok(h) => {
                answered = true;
                // While the node starts, `/status` may not answer yet: asked again a while.
                if identity.is_none() && identity_tries < IDENTITY_TRIES {
                    identity_tries += 1;
                    identity = rpc.node_info().await.ok();
                }
                doubted = false;
                let reading = if confirm.decisive(h) {
                    let mut evidence = evidence(&rpc, node, identity.as_ref()).await;
                    owner.note(&evidence.holder);
                    if matches!(evidence.holder, Holder::Unknown(_)) && owner.seen {
                        evidence.holder = Holder::Node;
                    }
                    match confirm.decisive_reading(h, Instant::now(), &evidence) {
                        Ok(reading) => Some(reading),
                        Err(doubt) => {
                            doubted = doubt != Doubt::Pending;
                            // Said once for each kind of doubt, not at every poll.
                            let kind = std::mem::discriminant(&doubt);
                            if doubt != Doubt::Pending && warned != Some(kind) {
                                warn_doubt(&endpoint, h, &doubt, node);
                                warned = Some(kind);
                            }
                            None
                        }
                    }
                } else {
                    owner.look(rpc.endpoint(), node).await;
                    Some(confirm.below(h, Instant::now()))
                };
                if let Some(reading) = reading {
                    tx.send_if_modified(|old| {
                        let changed = *old != Some(reading);
                        *old = Some(reading);
                        changed
                    });
                }
            }
            Err(e) => tracing::debug!(rpc = %endpoint, "no height on the node's RPC: {e}"),
        }
        tokio::time::sleep(period).await;
    }
}

/// How many answers `/status` is asked for the node's identity before doing without it.
const IDENTITY_TRIES: u32 = 20;

/// Whether the node was seen holding the RPC's port in this run, looked up at most every
/// [`OwnerSeen::EVERY`] until it was.
#[derive(Default)]
struct OwnerSeen {
    seen: bool,
    looked: Option<Instant>,
}

impl OwnerSeen {
    const EVERY: Duration = Duration::from_secs(2);

    /// Looks, on a reading below the last block (a decisive one looks anyway: [`evidence`]).
    async fn look(&mut self, endpoint: &Endpoint, node: Pid) {
        if self.seen || self.looked.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        self.looked = Some(Instant::now());
        self.note(&holder(endpoint, node).await);
    }

    fn note(&mut self, holder: &Holder) {
        self.seen |= *holder == Holder::Node;
    }
}

/// Who holds the RPC's port ([`sockets::holder`], off the runtime: it reads `/proc`).
async fn holder(endpoint: &Endpoint, node: Pid) -> Holder {
    let endpoint = endpoint.clone();
    tokio::task::spawn_blocking(move || sockets::holder(&endpoint.host, endpoint.port, node))
        .await
        .unwrap_or_else(|e| Holder::Unknown(format!("the check failed: {e}")))
}

/// What comes with a decisive reading: who listens on the port, and who answers `/status`.
async fn evidence(rpc: &Rpc, node: Pid, first: Option<&NodeInfo>) -> Evidence {
    let holder = holder(rpc.endpoint(), node).await;
    let same_node = match (first, rpc.node_info().await) {
        (Some(first), Ok(now)) => Some(*first == now),
        _ => None,
    };
    Evidence { holder, same_node }
}

fn warn_doubt(endpoint: &Endpoint, height: u64, doubt: &Doubt, node: Pid) {
    let why = match doubt {
        Doubt::OtherProcess(who) => format!(
            "its port is not the supervised node's (pid {node}): {who}; point WASMVISOR_RPC_ADDRESS at the node's own RPC (its config.toml [rpc] laddr)"
        ),
        Doubt::OtherNode => "/status names another node than the one that answered first in this run (another node or a proxy answers on that address)".to_string(),
        Doubt::WentBack { believed } => format!("it is below the height {believed} already read"),
        Doubt::TooFast { from, seconds, pace } => format!(
            "the node read {from} {seconds:.1} s ago, and the chain went at {pace:.1} blocks/s: a stale or foreign answer"
        ),
        Doubt::Pending => return,
    };
    tracing::warn!(
        rpc = %endpoint,
        height,
        "not stopping the node for the manual upgrade on this answer: {why}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: Evidence = Evidence {
        holder: Holder::Node,
        same_node: Some(true),
    };

    fn unknown() -> Evidence {
        Evidence {
            holder: Holder::Unknown("a name".into()),
            same_node: None,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A run that read heights 1..=`to`, one every 100 ms (10 blocks/s), from `t0`.
    fn followed(to: u64, t0: Instant) -> Confirm {
        let mut c = Confirm::new(60);
        for h in 1..=to {
            assert_eq!(c.below(h, t0 + ms(100 * h)).trust, Trust::Below);
        }
        c
    }

    #[test]
    fn the_last_block_from_the_nodes_socket_is_believed_once_it_holds() {
        let t0 = Instant::now();
        let mut c = followed(58, t0);
        let t = t0 + ms(5_900);
        let first = c.decisive_reading(59, t, &NODE).unwrap();
        assert_eq!(first.trust, Trust::Owned);
        assert_eq!(
            c.decisive_reading(59, t + ms(25), &NODE).unwrap().trust,
            Trust::Owned
        );
        let held = c.decisive_reading(59, t + ms(500), &NODE).unwrap();
        assert_eq!(
            held,
            Reading {
                height: 59,
                trust: Trust::Confirmed
            }
        );
    }

    #[test]
    fn a_jump_from_the_middle_of_the_run_to_the_last_block_is_not_believed() {
        let t0 = Instant::now();
        let mut c = followed(11, t0);
        let t = t0 + ms(1_200);
        // Every reading of a 1.2 s lie, from the node's own socket.
        for i in 0..48 {
            let doubt = c.decisive_reading(59, t + ms(25 * i), &NODE).unwrap_err();
            assert!(
                matches!(doubt, Doubt::TooFast { from: 11, .. }),
                "{doubt:?}"
            );
        }
        // The honest answers go on, and the real last block is believed when it comes.
        for h in 12..=58 {
            c.below(h, t0 + ms(100 * h + 300));
        }
        let t = t0 + ms(6_200);
        c.decisive_reading(59, t, &NODE).unwrap();
        assert_eq!(
            c.decisive_reading(59, t + ms(600), &NODE).unwrap().trust,
            Trust::Confirmed
        );
    }

    #[test]
    fn a_short_lie_at_the_first_reading_does_not_hold() {
        let t = Instant::now();
        let mut c = Confirm::new(60);
        assert_eq!(
            c.decisive_reading(59, t, &NODE).unwrap().trust,
            Trust::Owned
        );
        assert_eq!(
            c.decisive_reading(59, t + ms(300), &NODE).unwrap().trust,
            Trust::Owned
        );
        // The lie ended: the node is at 12.
        c.below(12, t + ms(325));
        assert!(c.decisive_reading(59, t + ms(350), &NODE).is_err());
    }

    #[test]
    fn another_process_or_another_node_is_never_believed() {
        let t0 = Instant::now();
        let mut c = followed(58, t0);
        let other = Evidence {
            holder: Holder::Other("held by pid 7 (gaiad)".into()),
            same_node: Some(true),
        };
        let foreign = Evidence {
            holder: Holder::Node,
            same_node: Some(false),
        };
        for i in 0..100 {
            let t = t0 + ms(5_900 + 25 * i);
            assert!(matches!(
                c.decisive_reading(59, t, &other),
                Err(Doubt::OtherProcess(_))
            ));
            assert_eq!(c.decisive_reading(59, t, &foreign), Err(Doubt::OtherNode));
        }
    }

    #[test]
    fn an_unknown_owner_needs_more_readings_over_a_longer_time() {
        let t0 = Instant::now();
        let mut c = followed(58, t0);
        let t = t0 + ms(5_900);
        assert_eq!(c.decisive_reading(59, t, &unknown()), Err(Doubt::Pending));
        assert_eq!(
            c.decisive_reading(59, t + ms(700), &unknown()),
            Err(Doubt::Pending)
        );
        assert_eq!(
            c.decisive_reading(59, t + ms(1_400), &unknown()),
            Err(Doubt::Pending)
        );
        assert_eq!(
            c.decisive_reading(59, t + ms(1_500), &unknown()),
            Ok(Reading {
                height: 59,
                trust: Trust::Confirmed
            })
        );
    }

    #[test]
    fn an_unknown_owner_with_the_same_node_is_believable_for_the_nodes_exit_to_confirm() {
        let t0 = Instant::now();
        let mut c = followed(58, t0);
        let same = Evidence {
            holder: Holder::Unknown("a name".into()),
            same_node: Some(true),
        };
        let t = t0 + ms(5_900);
        assert_eq!(
            c.decisive_reading(59, t, &same).unwrap().trust,
            Trust::Owned
        );
        assert_eq!(
            c.decisive_reading(59, t + ms(700), &same).unwrap().trust,
            Trust::Owned,
            "held for longer where the owner cannot be told"
        );
        assert_eq!(
            c.decisive_reading(59, t + ms(1_500), &same).unwrap().trust,
            Trust::Confirmed
        );
    }

    #[test]
    fn a_height_below_one_already_believed_is_refused() {
        let t0 = Instant::now();
        let mut c = Confirm::new(60);
        c.decisive_reading(61, t0, &NODE).unwrap();
        c.decisive_reading(61, t0 + ms(600), &NODE).unwrap();
        assert_eq!(
            c.decisive_reading(59, t0 + ms(700), &NODE),
            Err(Doubt::WentBack { believed: 61 })
        );
    }
}
