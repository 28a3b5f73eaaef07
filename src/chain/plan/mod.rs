//! The chain's current upgrade plan, asked of the node: the query
//! `cosmos.upgrade.v1beta1.Query/CurrentPlan`, over gRPC at `DAEMON_GRPC_ADDRESS` as Cosmovisor
//! asks it (`grpc.rs`), or through CometBFT's `abci_query` at `WASMVISOR_RPC_ADDRESS`
//! (`abci.rs`), which reaches the same query in the application (for a node whose gRPC server
//! is off).
//!
//! The answer is protobuf: `QueryCurrentPlanResponse { Plan plan = 1; }`, with
//! `Plan { string name = 1; Timestamp time = 2; int64 height = 3; string info = 4; … }`; an empty
//! message means no plan. Decoded by hand in `proto.rs`: five fields are not worth a code
//! generator.
//!
//! The upgrades governance is still voting on come from the gov module's `Proposals` query, by
//! the same two ways (`proposals/`).

mod abci;
mod grpc;
mod proposals;
mod proto;

use std::time::Duration;

use crate::config::{Endpoint, GrpcAddress};
use crate::tree::Plan;

pub use abci::AbciError;
pub use grpc::GrpcError;
pub use proposals::{ProposalError, proposed_plans};
pub use proto::DecodeError;

/// The gRPC method, and the `abci_query` path that routes to it.
const METHOD: &str = "/cosmos.upgrade.v1beta1.Query/CurrentPlan";
/// A plan is a few KiB (its `info` is a JSON document at most).
const MAX_ANSWER: usize = 1 << 20;

/// Where the answer came from, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub plan: Option<Plan>,
    pub from: String,
}

/// Why the chain's plan is not known: the texts `prepare` prints.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// An answer came but does not decode: where it came from, and the variable naming that.
    #[error(
        "the CurrentPlan answer of {from} ({variable}) cannot be read: {source}; is {variable} the node's own address?"
    )]
    Unreadable {
        from: String,
        variable: &'static str,
        source: DecodeError,
    },
    /// A `Proposals` answer came but does not decode (boxed: the rare path).
    #[error(
        "the gov Proposals answer of {from} ({variable}) cannot be read: {source}; is {variable} the node's own address?"
    )]
    ProposalsUnreadable {
        from: String,
        variable: &'static str,
        source: Box<ProposalError>,
    },
    /// Neither way answered: both addresses and what each said (boxed: the errors are large
    /// and this is the rare path).
    #[error(
        "the node answers neither on gRPC at {grpc} (DAEMON_GRPC_ADDRESS: {by_grpc}) nor on its RPC at {rpc} (WASMVISOR_RPC_ADDRESS: {by_rpc}); start the node, or point these at its gRPC (app.toml [grpc]) or RPC (config.toml [rpc] laddr)"
    )]
    Unanswered {
        grpc: GrpcAddress,
        by_grpc: Box<GrpcError>,
        /// The RPC address as configured.
        rpc: String,
        by_rpc: Box<AbciError>,
    },
}

/// Asks the node for the chain's current plan: gRPC first, then `abci_query`. The error names
/// both addresses and what each said.
pub async fn current_plan(
    grpc: &GrpcAddress,
    rpc: &Endpoint,
    timeout: Duration,
) -> Result<Answer, PlanError> {
    let by_grpc = match tokio::time::timeout(timeout, grpc::ask(grpc, METHOD, &[])).await {
        Ok(Ok(message)) => {
            return answer(&message, format!("gRPC at {grpc}"), "DAEMON_GRPC_ADDRESS");
        }
        Ok(Err(e)) => e,
        Err(_) => GrpcError::Timeout,
    };
    let by_rpc = match tokio::time::timeout(timeout, abci::ask(rpc, METHOD, &[])).await {
        Ok(Ok(message)) => {
            tracing::debug!("gRPC at {grpc} did not answer ({by_grpc}); asked the RPC");
            let from = format!("abci_query at {}", rpc.address);
            return answer(&message, from, "WASMVISOR_RPC_ADDRESS");
        }
        Ok(Err(e)) => e,
        Err(_) => AbciError::Timeout,
    };
    Err(PlanError::Unanswered {
        grpc: grpc.clone(),
        by_grpc: Box::new(by_grpc),
        rpc: rpc.address.clone(),
        by_rpc: Box::new(by_rpc),
    })
}

/// The plan in the `message` that came `from` where `variable` points.
fn answer(message: &[u8], from: String, variable: &'static str) -> Result<Answer, PlanError> {
    match proto::decode_response(message) {
        Ok(plan) => Ok(Answer { plan, from }),
        Err(source) => Err(PlanError::Unreadable {
            from,
            variable,
            source,
        }),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
