//! What wasmvisor asks of the chain, through the node that serves it: the height the application
//! last committed and who answers on the CometBFT RPC (`rpc.rs`), whether the socket answering on
//! that port is the supervised node's own (`sockets.rs`), and the chain's current upgrade plan
//! (`plan.rs`, the `CurrentPlan` query over gRPC or `abci_query`, with the minimal HTTP/2 client
//! it needs in `http2.rs`).
//!
//! Not here: the supervised process itself — spawning, reaping, signals, its arguments and its
//! record on disk are `node`'s. This module reads the chain and knows nothing of how the node is
//! run: `sockets.rs` is given the node's process group as a pid, it does not ask `node` for it.

mod http2;
pub mod plan;
pub mod rpc;
pub mod sockets;
