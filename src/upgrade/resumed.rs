//! After the switch, the chain's side of the downtime, as a validator counts it: the first block
//! after the upgrade height (the chain runs again: two thirds of the voting power is back) and
//! the first one this node's validator voted for (it signs again). Read from the node's RPC
//! while the new binary runs, every second, one `/commit` per new final block; told to the run
//! as they are learnt, which journals them, logs them and sets the downtime metrics.
//!
//! Block `height` itself was decided, its votes cast, before the old binary failed to execute
//! it: the new binary's first block and first votes are the ones after it. The first block's
//! time is when it was committed: the header time of the block after it, which CometBFT's BFT
//! time makes the median time of that commit's votes (its own header's time is the median of
//! the votes cast before the halt, and says nothing of the downtime).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::journal::{Finished, Journal, Mark, Resumed};
use crate::chain::rpc::Rpc;
use crate::config::Endpoint;
use crate::observe::{Notice, Observer, Upgrade};

/// How long the first vote is waited for after the first block (a validator that does not vote
/// by then is the signing check's to judge; the timeline says so and stops asking).
const VOTE_WAIT: Duration = Duration::from_secs(3600);
/// At most this many commits read per round (a node catching up many blocks at once).
const COMMITS_PER_ROUND: u64 = 50;

/// The chain's marks after an upgrade, as they come; its task stops when this is dropped (the
/// run is over).
pub struct Follow {
    task: JoinHandle<()>,
    marks: mpsc::UnboundedReceiver<Resumed>,
}

impl Drop for Follow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Follows the chain on the node's RPC (`endpoint`) after the upgrade at `height`, the last
/// one journaled, skipping what it already recorded (a relaunch sees the same chain).
pub fn follow(endpoint: &Endpoint, height: u64, journal: &Journal) -> Option<Follow> {
    let last: &Finished = journal.state.last.as_ref()?;
    let known = (
        last.first_block.is_some(),
        last.first_vote.is_some() || last.no_vote.is_some(),
    );
    if known == (true, true) {
        return None;
    }
    let rpc = Rpc::new(endpoint, Duration::from_secs(5));
    let (tx, marks) = mpsc::unbounded_channel();
    let task = tokio::spawn(watch(rpc, height + 1, known, tx));
    Some(Follow { task, marks })
}

/// The next mark (none once the follower is done); never, without a follower.
pub async fn next(follow: Option<&mut Follow>) -> Option<Resumed> {
    match follow {
        Some(f) => f.marks.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends what it learns (a send fails only once the run stopped listening, and this task is
/// aborted with it).
async fn watch(
    rpc: Rpc,
    first: u64,
    (mut have_block, mut have_vote): (bool, bool),
    tx: mpsc::UnboundedSender<Resumed>,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The last height whose commit was read without this validator's vote.
    let mut read = first - 1;
    let mut since_block = None;
    while !(have_block && have_vote) {
        ticks.tick().await;
        let Ok(node) = rpc.validator().await else {
            continue;
        };
        if !have_block
            && node.height > first
            && let Ok(ms) = rpc.block_time_ms(first + 1).await
        {
            let _ = tx.send(Resumed::FirstBlock(mark(first, ms, None)));
            have_block = true;
            since_block = Some(tokio::time::Instant::now());
        }
        if have_vote {
            continue;
        }
        if node.address.is_empty() || node.power == 0 {
            let why = "the node is not in the active set (voting power 0): it has no block to sign";
            let _ = tx.send(Resumed::NoVote(why.into()));
            have_vote = true;
            continue;
        }
        // Commits are final below the latest stored block.
        let newest = node.height.saturating_sub(1).min(read + COMMITS_PER_ROUND);
        for h in read + 1..=newest {
            match rpc.vote_ms(h, &node.address).await {
                Ok(Some(ms)) => {
                    let vote = mark(h, ms, Some(node.address.clone()));
                    let _ = tx.send(Resumed::FirstVote(vote));
                    have_vote = true;
                    break;
                }
                Ok(None) => read = h,
                Err(_) => break,
            }
        }
        if !have_vote && since_block.is_some_and(|at| at.elapsed() > VOTE_WAIT) {
            let why = format!(
                "validator {} cast no vote in the {} blocks of the hour after the first one",
                node.address,
                read + 1 - first
            );
            let _ = tx.send(Resumed::NoVote(why));
            have_vote = true;
        }
    }
}

fn mark(height: u64, unix_ms: i64, validator: Option<String>) -> Mark {
    Mark {
        height,
        unix_ms: unix_ms.max(0) as u64,
        validator,
    }
}

/// A mark the run was told of: journaled, logged with the downtime it ends, and measured.
pub fn record(journal: &mut Journal, observer: &Observer, resumed: Resumed) {
    let halt = journal.state.last.as_ref().map(|l| l.started_unix_ms);
    let after = |mark: &Mark| {
        let ms = halt.map_or(0, |h| mark.unix_ms.saturating_sub(h));
        Duration::from_millis(ms)
    };
    match &resumed {
        Resumed::FirstBlock(m) => {
            let took = after(m);
            observer.downtime_until("first_block", took);
            tracing::info!(height = m.height, downtime = %crate::duration::format(took), "the chain runs again: its first block after the upgrade height");
        }
        Resumed::FirstVote(m) => {
            let took = after(m);
            observer.downtime_until("first_signature", took);
            if let Some(last) = &journal.state.last {
                observer.tell(Notice::SigningResumed {
                    upgrade: Upgrade::new(&last.plan.name, last.plan.height),
                    height: m.height,
                    validator: m.validator.clone().unwrap_or_default(),
                    downtime_ms: took.as_secs_f64() * 1000.0,
                });
            }
            tracing::info!(height = m.height, validator = m.validator.as_deref().unwrap_or(""), downtime = %crate::duration::format(took), "the validator signs again: its first vote after the upgrade");
        }
        Resumed::NoVote(why) => tracing::warn!("no first vote will be recorded: {why}"),
    }
    if let Err(e) = journal.record_resumed(resumed) {
        tracing::warn!("cannot journal what the chain did after the upgrade: {e}");
    }
}
