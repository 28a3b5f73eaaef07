//! What wasmvisor asks of the chain, through the node that serves it: the height the application
//! last committed and who answers on the CometBFT RPC (`rpc.rs`), whether the socket answering on
//! that port is the supervised node's own (`sockets.rs`), and the chain's current upgrade plan
//! (`plan/`, the `CurrentPlan` query over gRPC or `abci_query`, with the minimal HTTP/2 client
//! it needs in `http2/`).
//!
//! Not here: the supervised process itself — spawning, reaping, signals, its arguments and its
//! record on disk are `node`'s. This module reads the chain and knows nothing of how the node is
//! run: `sockets.rs` is given the node's process group as a pid, it does not ask `node` for it.

mod http2;
pub mod plan;
pub mod rpc;
pub mod sockets;

/// Byte edits for the property tests of the chain's decoders: a valid answer with bytes flipped,
/// cut out or inserted.
#[cfg(test)]
mod edits {
    use proptest::prelude::*;

    /// Where (an index into whatever length), with which byte, and how (flip, cut, insert).
    pub type Edit = (prop::sample::Index, u8, u8);

    pub fn edit() -> impl Strategy<Value = Edit> {
        (any::<prop::sample::Index>(), any::<u8>(), 0..3u8)
    }

    /// Applies `edits` to `bytes` in turn (a flip always changes the byte).
    pub fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
        for &(at, byte, how) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] ^= byte | 1,
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, byte),
            }
        }
    }
}
