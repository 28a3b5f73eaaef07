//! A policy resolver: only binaries whose sha256 is in the configured list pass.
//!
//! Put it after the resolver that proposes the binary. Settings: `sha256` — one or more
//! lower-case hex digests, separated by commas or spaces (the key may repeat).
//!
//! - `use-staged`: the staged binary's sha256 must be listed;
//! - `fetch`: only artifacts whose declared sha256 is listed are kept (the host verifies the
//!   bytes against it); none left → refuse;
//! - no previous decision, or an empty list: refuse (fail closed).

use wasmvisor_plugin_support::setting_list;

wit_bindgen::generate!({ world: "resolver", path: "../../wit/plugin-0.1" });

use exports::wasmvisor::plugin::resolve::Guest;
use wasmvisor::plugin::types::{Artifact, Decision, HashAlgorithm, Request, Settings};

struct Allowlist;

impl Guest for Allowlist {
    fn resolve(request: Request, previous: Option<Decision>, settings: Settings) -> Decision {
        let allowed: Vec<String> = setting_list(&settings, "sha256")
            .into_iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if allowed.is_empty() {
            return Decision::Refuse("allowlist: no sha256 configured; refusing everything".into());
        }
        match previous {
            None => Decision::Refuse(
                "allowlist: nothing proposed a binary (put a resolver before this one)".into(),
            ),
            Some(Decision::Refuse(reason)) => Decision::Refuse(reason),
            Some(Decision::UseStaged) => {
                let sha = request.staged.and_then(|s| s.sha256).unwrap_or_default();
                if allowed.contains(&sha) {
                    Decision::UseStaged
                } else {
                    Decision::Refuse(format!(
                        "allowlist: the staged binary's sha256 {sha} is not allowed"
                    ))
                }
            }
            Some(Decision::Fetch(artifacts)) => {
                let kept: Vec<Artifact> = artifacts
                    .into_iter()
                    .filter(|a| {
                        a.checksum.as_ref().is_some_and(|c| {
                            matches!(c.algorithm, HashAlgorithm::Sha256)
                                && allowed.contains(&c.hex.to_ascii_lowercase())
                        })
                    })
                    .collect();
                if kept.is_empty() {
                    Decision::Refuse("allowlist: no proposed artifact has an allowed sha256".into())
                } else {
                    Decision::Fetch(kept)
                }
            }
        }
    }
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Allowlist);
