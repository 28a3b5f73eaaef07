//! A health check: healthy once the node's CometBFT RPC reports a height past the upgrade height
//! and the node is not catching up.
//!
//! Settings:
//! - `rpc` (default `http://127.0.0.1:26657`): the RPC address; allowlist its host and port.
//! - `blocks` (default `2`): how many blocks past the upgrade height count as "advancing".
//! - `network` (optional): the chain id the node must report; another one is unhealthy.
//!
//! Until the RPC answers, or while the height has not advanced enough, the answer is `pending`;
//! the host asks again until its deadline.

use serde_json::Value;
use wasmvisor_plugin_support::{read_all, setting};

wit_bindgen::generate!({ world: "health", path: "../../wit/plugin-0.2", generate_all });

use exports::wasmvisor::plugin::check::Guest;
use wasmvisor::plugin::http;
use wasmvisor::plugin::types::{Health, HealthContext, Settings};

struct Cometbft;

impl Guest for Cometbft {
    fn check(context: HealthContext, settings: Settings) -> Health {
        let rpc = setting(&settings, "rpc").unwrap_or("http://127.0.0.1:26657");
        let blocks: u64 = match setting(&settings, "blocks").map(str::parse).transpose() {
            Ok(b) => b.unwrap_or(2),
            Err(_) => {
                return Health::Unhealthy("cometbft: the setting blocks is not a number".into());
            }
        };
        let url = format!("{}/status", rpc.trim_end_matches('/'));
        let body = match fetch(&url) {
            Ok(b) => b,
            Err(e) => return Health::Pending(e),
        };
        judge(
            &body,
            context.plan.height,
            blocks,
            setting(&settings, "network"),
        )
    }
}

fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let response = http::get(url, &[]).map_err(|e| format!("{url}: {e:?}"))?;
    if response.status() != 200 {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    read_all(url, 1 << 20, |n| response.read(n))
}

/// The verdict on one `/status` answer.
fn judge(body: &[u8], upgrade_height: u64, blocks: u64, network: Option<&str>) -> Health {
    let Ok(status) = serde_json::from_slice::<Value>(body) else {
        return Health::Pending("the RPC's /status is not JSON yet".into());
    };
    let result = &status["result"];
    if let Some(want) = network {
        let got = result["node_info"]["network"].as_str().unwrap_or("");
        if got != want {
            return Health::Unhealthy(format!(
                "the node reports network {got:?}, expected {want:?}"
            ));
        }
    }
    let sync = &result["sync_info"];
    let height = match &sync["latest_block_height"] {
        Value::String(s) => s.parse().ok(),
        v => v.as_u64(),
    };
    let Some(height) = height else {
        return Health::Pending("the RPC reports no latest_block_height".into());
    };
    let catching_up = sync["catching_up"].as_bool().unwrap_or(false);
    let target = upgrade_height + blocks.saturating_sub(1);
    if height >= target && !catching_up {
        Health::Healthy(format!(
            "height {height} (upgrade at {upgrade_height}), not catching up"
        ))
    } else {
        Health::Pending(format!(
            "height {height}, waiting for {target}{}",
            if catching_up { ", catching up" } else { "" }
        ))
    }
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Cometbft);

#[cfg(test)]
mod tests {
    use super::*;

    fn status(height: &str, catching_up: bool) -> Vec<u8> {
        format!(r#"{{"result":{{"node_info":{{"network":"sim-1"}},"sync_info":{{"latest_block_height":"{height}","catching_up":{catching_up}}}}}}}"#).into_bytes()
    }

    #[test]
    fn healthy_only_past_the_height_and_caught_up() {
        assert!(matches!(
            judge(&status("11", false), 10, 2, None),
            Health::Healthy(_)
        ));
        assert!(matches!(
            judge(&status("10", false), 10, 2, None),
            Health::Pending(_)
        ));
        assert!(matches!(
            judge(&status("12", true), 10, 2, None),
            Health::Pending(_)
        ));
        assert!(matches!(judge(b"nope", 10, 2, None), Health::Pending(_)));
        assert!(matches!(
            judge(&status("12", false), 10, 2, Some("other-1")),
            Health::Unhealthy(_)
        ));
        assert!(matches!(
            judge(&status("12", false), 10, 2, Some("sim-1")),
            Health::Healthy(_)
        ));
    }
}
