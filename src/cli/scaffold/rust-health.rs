//! {{name}}: a health check plugin for wasmvisor (wasmvisor:plugin@0.2.0).
//!
//! Healthy once the node's CometBFT RPC (`rpc` setting, default http://127.0.0.1:26657)
//! answers `/status`; pending until then. Allowlist the RPC's host:port in plugins.toml.

wit_bindgen::generate!({ world: "health", path: "wit", generate_all });

use exports::wasmvisor::plugin::check::Guest;
use wasmvisor::plugin::http;
use wasmvisor::plugin::types::{Health, HealthContext, Settings};

struct Plugin;

impl Guest for Plugin {
    fn check(context: HealthContext, settings: Settings) -> Health {
        let rpc = settings
            .iter()
            .rev()
            .find(|(k, _)| k == "rpc")
            .map_or("http://127.0.0.1:26657", |(_, v)| v.as_str());
        let url = format!("{}/status", rpc.trim_end_matches('/'));
        match http::get(&url, &[]) {
            Ok(r) if r.status() == 200 => Health::Healthy(format!(
                "{url} answers, {} ms after the launch",
                context.elapsed_ms
            )),
            Ok(r) => Health::Pending(format!("{url}: HTTP {}", r.status())),
            Err(e) => Health::Pending(format!("{url}: {e:?}")),
        }
    }
}

#[cfg(target_arch = "wasm32")]
export!(Plugin);
