//! Asking the chain: x/upgrade's current plan, the upgrade proposals in voting, and its pace.
//! A chain that cannot be asked is said once, after a few polls; a pace or proposal listing
//! that fails is said once per distinct reason.

use std::time::Duration;

use super::{ChainState, Planner};
use crate::ahead::record::ChainSeen;
use crate::ahead::upcoming::{Source, Upcoming};
use crate::chain::plan::{current_plan, proposed_plans};
use crate::chain::rpc::Rpc;

/// How long the node has to answer each query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// The blocks the chain's pace is measured over.
const PACE_BLOCKS: u64 = 100;
/// Consecutive failed polls before the log says the chain cannot be asked: a node's RPC and
/// gRPC come up some time after its start.
const FAILURES_BEFORE_SAYING: u32 = 3;

/// Says `error` once: when it is new, or differs from the one said before other than in its
/// numbers (the height a request names moves with every poll).
fn say_once(said: &mut Option<String>, error: Option<String>, what: &str) {
    let error = error.map(|e| (shape(&e), e));
    match (&error, said.as_ref()) {
        (Some((shape, e)), last) if last != Some(shape) => tracing::warn!("{what}: {e}"),
        (None, Some(_)) => tracing::info!("{what}: answered again"),
        _ => {}
    }
    *said = error.map(|(shape, _)| shape);
}

/// `text` with each run of digits as `#`.
fn shape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

impl Planner {
    /// Asks the chain for its plan, the proposals in voting and its pace.
    pub(super) async fn ask_chain(&mut self) {
        let cfg = &self.ctx.cfg;
        let asked = current_plan(&cfg.grpc, &cfg.rpc, QUERY_TIMEOUT).await;
        let pace = Rpc::new(&cfg.rpc, QUERY_TIMEOUT).pace(PACE_BLOCKS).await;
        let pace_error = pace.as_ref().err().map(|e| e.to_string());
        self.chain.pace = pace.ok().or(self.chain.pace.take());
        let answer = match asked {
            Ok(answer) => answer,
            Err(e) => return self.unanswered(e.to_string()),
        };
        say_once(
            &mut self.chain.said_pace,
            pace_error.clone(),
            "cannot take the chain's pace for the upgrades' ETA (WASMVISOR_RPC_ADDRESS)",
        );
        if self.chain.said_unreachable {
            tracing::info!(from = %answer.from, "the chain answers again: upcoming upgrades are known again");
        }
        self.chain.failures = 0;
        self.chain.said_unreachable = false;
        self.chain.plan = answer
            .plan
            .into_iter()
            .map(|p| Upcoming::new(p, Source::Chain))
            .collect();
        self.chain.proposals = self.proposals().await;
        let pace = self.chain.pace.as_ref();
        self.chain.seen = ChainSeen {
            from: Some(answer.from),
            error: None,
            pace_error,
            answered_unix: Some(crate::clock::unix_secs()),
            height: pace.map(|p| p.height),
            block_seconds: pace.and_then(|p| p.block_ms).map(|ms| ms / 1000.0),
        };
        self.ctx.observer.plan_poll(true);
    }

    /// A poll the chain did not answer: counted, and said once after a few.
    fn unanswered(&mut self, error: String) {
        let chain: &mut ChainState = &mut self.chain;
        chain.failures += 1;
        chain.seen.error = Some(error.clone());
        self.ctx.observer.plan_poll(false);
        if chain.failures >= FAILURES_BEFORE_SAYING && !chain.said_unreachable {
            chain.said_unreachable = true;
            tracing::warn!(
                "cannot learn the next upgrades from the chain: {error}; nothing else changes: an upgrade is still applied when the node halts for it (WASMVISOR_PLAN_POLL=off stops asking)"
            );
        }
    }

    /// The upgrade proposals in voting; on a failure (said once), the last ones known.
    async fn proposals(&mut self) -> Vec<Upcoming> {
        let cfg = &self.ctx.cfg;
        let found = proposed_plans(&cfg.grpc, &cfg.rpc, QUERY_TIMEOUT).await;
        let what =
            "cannot read the upgrade proposals in voting (the chain's plan is still followed)";
        match found {
            Ok(found) => {
                say_once(&mut self.chain.said_proposals, None, what);
                found
                    .list
                    .into_iter()
                    .map(|p| Upcoming {
                        plan: p.plan,
                        source: Source::Proposal,
                        proposal: Some(p.id),
                        voting_end_unix: p.voting_end_unix,
                    })
                    .collect()
            }
            Err(e) => {
                say_once(&mut self.chain.said_proposals, Some(e.to_string()), what);
                std::mem::take(&mut self.chain.proposals)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_that_differs_only_in_its_heights_is_the_same() {
        let a = "/blockchain?minHeight=26073&maxHeight=26073: the node answered an error: Internal error (-32603)";
        let b = "/blockchain?minHeight=26074&maxHeight=26074: the node answered an error: Internal error (-32603)";
        assert_eq!(super::shape(a), super::shape(b));
        assert_ne!(
            super::shape(a),
            super::shape("/status: no latest_block_time in the answer")
        );
    }
}
