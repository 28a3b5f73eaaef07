//! The software upgrades governance is voting on: the gov module's `Proposals` query for the
//! proposals in their voting period, over gRPC at `DAEMON_GRPC_ADDRESS` or through `abci_query`
//! at `WASMVISOR_RPC_ADDRESS` (the transports of the CurrentPlan query), page after page.
//!
//! gov v1 (Cosmos SDK 0.46 and later) carries an upgrade as a `MsgSoftwareUpgrade` message, or
//! as the legacy `SoftwareUpgradeProposal` content inside a `MsgExecLegacyContent`; a chain
//! without gov v1 (SDK 0.45 and earlier: gRPC UNIMPLEMENTED, or the SDK's "unknown query path")
//! is asked gov v1beta1, whose proposals hold that legacy content directly. Other messages
//! (text, parameters, spends, a `MsgCancelUpgrade`) are no upgrade and are passed over; a
//! message that is an upgrade but does not decode is an error naming its proposal. The
//! protobuf is read in `decode.rs`.

pub(super) mod decode;

use std::time::Duration;

use super::abci::{self, AbciError};
use super::grpc::{self, GrpcError};
use super::{DecodeError, PlanError};
use crate::config::{Endpoint, GrpcAddress};
use crate::tree::Plan;

use decode::{Gov, decode_page, request};

/// How many pages (of up to 100 proposals each) are read before the answer is refused: a
/// node whose `next_key` never ends must not keep the poll busy.
const MAX_PAGES: usize = 10;

/// A software upgrade a proposal in its voting period carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposed {
    /// The proposal's id.
    pub id: u64,
    /// The plan, as the chain will hold it if the proposal passes (its `info` is whatever text
    /// the proposer wrote: a binaries map, a URL, or prose).
    pub plan: Plan,
    /// The proposal's title (gov v1 from SDK 0.47), else the legacy content's; may be empty.
    pub title: String,
    /// When the voting period ends (Unix seconds), when the answer says.
    pub voting_end_unix: Option<i64>,
}

/// The upgrades in voting, and where the answer came from (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposals {
    pub list: Vec<Proposed>,
    /// "gRPC at …" or "abci_query at …", as `Answer::from`.
    pub from: String,
}

/// Why a `Proposals` answer cannot be read. The texts follow "cannot be read: " in the error
/// `PlanError::ProposalsUnreadable` shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// The page itself, or a proposal's own fields.
    #[error("{0}")]
    Listing(#[from] DecodeError),
    #[error("a proposal in its voting period has no id")]
    NoId,
    /// A message (a `google.protobuf.Any`) that does not decode: it could be an upgrade.
    #[error("proposal {id}: a message cannot be read: {source}")]
    Message { id: u64, source: DecodeError },
    /// A message that is an upgrade by its type and does not decode.
    #[error("proposal {id}: its {type_url} cannot be read: {source}")]
    Upgrade {
        id: u64,
        type_url: String,
        source: DecodeError,
    },
    #[error("more than {0} pages of proposals in their voting period (a next_key that never ends)")]
    TooManyPages(usize),
}

/// Asks the node for the software upgrades in governance's voting period: gRPC first, then
/// `abci_query`, each through gov v1 and, on a chain without it, gov v1beta1. Each request has
/// `timeout`. The error names both addresses and what each said, or the answer that does not
/// decode and where it came from.
pub async fn proposed_plans(
    grpc: &GrpcAddress,
    rpc: &Endpoint,
    timeout: Duration,
) -> Result<Proposals, PlanError> {
    let by_grpc = list(
        |method, request: Vec<u8>| async move {
            match tokio::time::timeout(timeout, grpc::ask(grpc, method, &request)).await {
                Ok(answer) => answer,
                Err(_) => Err(GrpcError::Timeout),
            }
        },
        GrpcError::unimplemented,
    )
    .await;
    let by_grpc = match by_grpc {
        Ok(listed) => {
            return answer(format!("gRPC at {grpc}"), "DAEMON_GRPC_ADDRESS", listed);
        }
        Err(e) => e,
    };
    let by_rpc = list(
        |method, request: Vec<u8>| async move {
            match tokio::time::timeout(timeout, abci::ask(rpc, method, &request)).await {
                Ok(answer) => answer,
                Err(_) => Err(AbciError::Timeout),
            }
        },
        AbciError::unknown_path,
    )
    .await;
    let by_rpc = match by_rpc {
        Ok(listed) => {
            tracing::debug!("gRPC at {grpc} did not answer ({by_grpc}); asked the RPC");
            let from = format!("abci_query at {}", rpc.address);
            return answer(from, "WASMVISOR_RPC_ADDRESS", listed);
        }
        Err(e) => e,
    };
    Err(PlanError::Unanswered {
        grpc: grpc.clone(),
        by_grpc: Box::new(by_grpc),
        rpc: rpc.address.clone(),
        by_rpc: Box::new(by_rpc),
    })
}

/// The upgrades that came `from` where `variable` points, or why they cannot be read.
fn answer(
    from: String,
    variable: &'static str,
    listed: Result<Vec<Proposed>, ProposalError>,
) -> Result<Proposals, PlanError> {
    match listed {
        Ok(list) => Ok(Proposals { list, from }),
        Err(source) => Err(PlanError::ProposalsUnreadable {
            from,
            variable,
            source: Box::new(source),
        }),
    }
}

/// What one way of asking gave: `Err`, no answer (the next way is tried); `Ok(Err)`, an answer
/// that does not decode.
type Listed<E> = Result<Result<Vec<Proposed>, ProposalError>, E>;

/// Every page `ask` gives, through gov v1 or, where the chain has none (`unimplemented`),
/// v1beta1.
async fn list<E, F, Fut>(ask: F, unimplemented: fn(&E) -> bool) -> Listed<E>
where
    F: Fn(&'static str, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, E>>,
{
    match pages(&ask, Gov::V1).await {
        Err(e) if unimplemented(&e) => pages(&ask, Gov::V1beta1).await,
        other => other,
    }
}

async fn pages<E, F, Fut>(ask: &F, gov: Gov) -> Listed<E>
where
    F: Fn(&'static str, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, E>>,
{
    let mut all = Vec::new();
    let mut key = Vec::new();
    for _ in 0..MAX_PAGES {
        let message = ask(gov.method(), request(&key)).await?;
        let page = match decode_page(&message, gov) {
            Ok(page) => page,
            Err(e) => return Ok(Err(e)),
        };
        all.extend(page.proposed);
        if page.next_key.is_empty() {
            return Ok(Ok(all));
        }
        key = page.next_key;
    }
    Ok(Err(ProposalError::TooManyPages(MAX_PAGES)))
}

#[cfg(test)]
pub(super) mod tests;
