//! Following the application's height on the node's RPC while a manual plan is pending.

use std::time::{Duration, Instant};

use nix::unistd::Pid;
use tokio::sync::watch;

use crate::chain::rpc::{NodeInfo, Rpc};
use crate::chain::sockets::{self, Holder};
use crate::config::Endpoint;

use super::confirm::{Confirm, Doubt, Evidence, Reading};

/// Follows the application's height while a manual upgrade is pending, faster as the height
/// nears, so the last block before the upgrade (H - 1) is seen at once. Until this run's RPC first
/// answers (for up to a minute), it polls quickly: a node that halts and exits (SDK v0.47) keeps
/// its RPC up only briefly. A failed poll is only that: the next one is tried.
pub(super) async fn poll_height(
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
