//! A health check: healthy once the node's validator signs blocks again after the upgrade. An
//! upgrade is over for a validator when its votes are back in the chain's commits, not when the
//! new binary starts: a remote signer not reconnected, a key file not found, a node that syncs
//! but never votes all pass a height check.
//!
//! Settings:
//! - `rpc` (default `http://127.0.0.1:26657`): the node's CometBFT RPC.
//! - `address` (default: the one the node's `/status` reports as `validator_info.address`): the
//!   validator, as hex (`7A1B…`, 40 digits) or its consensus address (`cosmosvalcons1…`).
//! - `blocks` (default 3): how many commits after the upgrade height must carry its signature
//!   (block `height` itself was decided, and its votes cast, before the old binary halted: the
//!   new binary's first votes are for the block after it).
//! - `window` (default 20): how many commits after the upgrade height without a single one of
//!   its signatures make the node unhealthy.
//! - `require-active` (default false): a node outside the active set (voting power 0) is
//!   healthy with that said; with `true` it is judged by its signatures like any other.
//!
//! Judged on the canonical commits (`/commit?height=h` for h below the node's latest height) of
//! the heights after the upgrade height, newest first, at most `window` of them: a signature is a
//! vote that is not absent, as x/slashing counts it (a nil vote signs too). Pending while the
//! chain has not committed `window` blocks past the upgrade height: after an upgrade, blocks
//! resume only once two thirds of the voting power is back, and a stalled chain is never held
//! against this validator. Requests per call: one `/status`, then one `/commit` per height
//! looked at (`blocks` of them when it signs).

mod address;
mod judge;

use wasmvisor_plugin_support::{read_all, setting};

wit_bindgen::generate!({ world: "health", path: "../../wit/plugin-0.2", generate_all });

use exports::wasmvisor::plugin::check::Guest;
use wasmvisor::plugin::http;
use wasmvisor::plugin::types::{Health, HealthContext, Settings};

use judge::{Settings as Judge, Verdict};

struct Signing;

impl Guest for Signing {
    fn check(context: HealthContext, settings: Settings) -> Health {
        let judge = match Judge::read(&settings) {
            Ok(j) => j,
            Err(e) => return Health::Unhealthy(format!("signing: {e}")),
        };
        let rpc = setting(&settings, "rpc")
            .unwrap_or("http://127.0.0.1:26657")
            .trim_end_matches('/')
            .to_string();
        let verdict = judge.judge(context.plan.height, |path| fetch(&format!("{rpc}{path}")));
        match verdict {
            Verdict::Healthy(t) => Health::Healthy(t),
            Verdict::Unhealthy(t) => Health::Unhealthy(t),
            Verdict::Pending(t) => Health::Pending(t),
        }
    }
}

/// One GET of the RPC: the body of a 200 answer, or why there is none (a JSON-RPC error comes
/// with HTTP 500 and is read for its reason).
fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let response = http::get(url, &[]).map_err(|e| format!("{url}: {e:?}"))?;
    let status = response.status();
    let body = read_all(url, 1 << 20, |n| response.read(n))?;
    if status == 200 {
        return Ok(body);
    }
    let why = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["data"].as_str().map(str::to_string))
        .unwrap_or_default();
    Err(format!("{url}: HTTP {status} {why}").trim_end().to_string())
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Signing);
