//! What one version of the simulator is (`sim.json`) and what it keeps on disk: the plans
//! governance passed (`data/sim-chain.json`), the proposals in their voting period
//! (`data/sim-proposals.json`) and its state (`data/sim-state.json`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, Clone)]
#[serde(default)]
pub(crate) struct SimConfig {
    pub(crate) version: String,
    pub(crate) ordinal: u32,
    /// The upgrade this binary carries the handler for (none for genesis).
    pub(crate) handles: Option<String>,
    pub(crate) block_ms: u64,
    /// "exit" (older SDKs) or "stay" (newer SDKs keep the process alive in a failed state).
    pub(crate) halt: String,
    pub(crate) halt_exit_code: i32,
    pub(crate) term_flush_ms: u64,
    pub(crate) term_exit_code: i32,
    pub(crate) trap_term: bool,
    pub(crate) preupgrade_exit_codes: Vec<i32>,
    pub(crate) rpc_port: u16,
    pub(crate) info_write_pause_ms: u64,
    /// Refuse to start when the next block would be below this height (a manual upgrade's binary).
    pub(crate) min_start_height: u64,
    /// Exit on its own with `exit_code` after committing this height (a crash, or a clean end).
    pub(crate) exit_after_height: Option<u64>,
    pub(crate) exit_code: i32,
    /// For its first `rpc_lag_runs` runs, the RPC reports the heights of `rpc_lag_ms` ago (a
    /// node whose RPC lags behind consensus).
    pub(crate) rpc_lag_ms: u64,
    pub(crate) rpc_lag_runs: u32,
    /// How `--halt-height` behaves: "before", "stay-after" or "exit-after" (see above).
    pub(crate) sdk_halt: String,
    /// For `exit-after`: how long the RPC stays up between the halt and the exit.
    pub(crate) shutdown_ms: u64,
    /// For `exit-after`: the status the halt exits with (v0.47 exits 0; v0.46 and earlier halt
    /// by SIGINT and exit 130).
    pub(crate) halt_height_exit_code: i32,
    /// Start a helper that leaves the node's process group and session (`setsid`), as a
    /// daemonising child would.
    pub(crate) spawn_daemon: bool,
    /// Exit with this status right after starting, as a release that cannot run does.
    pub(crate) fail_at_start: Option<i32>,
    /// Serve the gRPC `CurrentPlan` query here (0: no gRPC server).
    pub(crate) grpc_port: u16,
    /// Answer every gRPC call with this status (as a node whose query service is broken does).
    pub(crate) grpc_error: Option<u32>,
    /// Once the application reaches `lie_from_height`, `/abci_info` answers `lie_height` (a raw
    /// JSON value, such as `"59"`) for `lie_ms`, once per run: a stale or confused RPC.
    pub(crate) lie_from_height: Option<u64>,
    pub(crate) lie_height: Value,
    pub(crate) lie_ms: u64,
    /// Serve gov v1's `Proposals` (SDK 0.46 and later); false answers it as a v0.45 chain
    /// does — gRPC UNIMPLEMENTED, abci_query "unknown query path" — and only v1beta1 serves.
    pub(crate) gov_v1: bool,
    /// At most this many proposals a page (0: as the request asks, 100 by default).
    pub(crate) gov_page_size: u64,
    /// Whether this version's validator signs the blocks it commits (false: a remote signer
    /// not reconnected, a key not found: the node follows the chain and never votes).
    pub(crate) signs: bool,
    /// The validator's voting power as `/status` reports it (0: not in the active set, its
    /// address in no commit).
    pub(crate) voting_power: u64,
    /// After starting, commit nothing for this long: the chain waits for two thirds of the
    /// voting power to run the new binary.
    pub(crate) stall_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            version: "genesis".into(),
            ordinal: 1,
            handles: None,
            block_ms: 100,
            halt: "stay".into(),
            halt_exit_code: 1,
            term_flush_ms: 0,
            term_exit_code: 0,
            trap_term: true,
            preupgrade_exit_codes: vec![0],
            rpc_port: 0,
            info_write_pause_ms: 0,
            min_start_height: 0,
            exit_after_height: None,
            exit_code: 0,
            rpc_lag_ms: 0,
            rpc_lag_runs: 0,
            sdk_halt: "before".into(),
            shutdown_ms: 300,
            halt_height_exit_code: 0,
            spawn_daemon: false,
            fail_at_start: None,
            grpc_port: 0,
            grpc_error: None,
            lie_from_height: None,
            lie_height: Value::Null,
            lie_ms: 0,
            gov_v1: true,
            gov_page_size: 0,
            signs: true,
            voting_power: 10,
            stall_ms: 0,
        }
    }
}

#[derive(Deserialize, Serialize, Clone)]
pub(crate) struct ChainPlan {
    pub(crate) name: String,
    pub(crate) height: u64,
    #[serde(default)]
    pub(crate) info: String,
}

/// A proposal in its voting period that carries a software upgrade: a `MsgSoftwareUpgrade`,
/// or (`legacy`) a `SoftwareUpgradeProposal` content in a `MsgExecLegacyContent`. gov v1beta1
/// serves every one as that content. `voting_end`: Unix seconds.
#[derive(Deserialize, Clone)]
pub(crate) struct SimProposal {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) height: u64,
    #[serde(default)]
    pub(crate) info: String,
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) legacy: bool,
    #[serde(default)]
    pub(crate) voting_end: Option<i64>,
}

#[derive(Deserialize, Default)]
pub(crate) struct Chain {
    #[serde(default)]
    pub(crate) plans: Vec<ChainPlan>,
}

#[derive(Deserialize, Serialize, Clone)]
pub(crate) struct Span {
    pub(crate) version: String,
    pub(crate) from: u64,
    pub(crate) to: u64,
}

#[derive(Deserialize, Serialize, Default, Clone)]
pub(crate) struct State {
    pub(crate) height: u64,
    pub(crate) ordinal: u32,
    #[serde(default)]
    pub(crate) applied: Vec<String>,
    #[serde(default)]
    pub(crate) history: Vec<Span>,
    /// The heights committed without this validator's signature, as `[from, to]` ranges.
    #[serde(default)]
    pub(crate) unsigned: Vec<[u64; 2]>,
}

impl State {
    /// Whether this validator signed block `h`.
    pub(crate) fn signed(&self, h: u64) -> bool {
        !self
            .unsigned
            .iter()
            .any(|[from, to]| (*from..=*to).contains(&h))
    }

    /// Records `h`, just committed, as not signed by this validator.
    pub(crate) fn unsigned_at(&mut self, h: u64) {
        match self.unsigned.last_mut() {
            Some([_, to]) if *to + 1 == h => *to = h,
            _ => self.unsigned.push([h, h]),
        }
    }
}
