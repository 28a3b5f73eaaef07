//! A starting point for a resolver plugin: copy this crate, rename it, change `decide`.
//!
//! This one keeps the previous resolver's decision, and refuses upgrades whose name is listed
//! in the `deny` setting (comma-separated) — a small but real policy to build on.
//!
//! Build: `cargo build --release --target wasm32-wasip2` (from `plugins/`), then point a
//! `[[resolver]]` entry of plugins.toml at `target/wasm32-wasip2/release/<crate>.wasm` and try
//! it with `wasmvisor plugin call resolver <name> --plan upgrade-info.json`.

use wasmvisor_plugin_support::setting_list;

wit_bindgen::generate!({ world: "resolver", path: "../../wit/plugin-0.2", generate_all });

use exports::wasmvisor::plugin::resolve::Guest;
use wasmvisor::plugin::host::{Level, log};
use wasmvisor::plugin::types::{Decision, Request, Settings};

struct Template;

impl Guest for Template {
    fn resolve(request: Request, previous: Option<Decision>, settings: Settings) -> Decision {
        log(Level::Debug, &format!("asked about {}", request.plan.name));
        decide(
            &request.plan.name,
            previous,
            &setting_list(&settings, "deny"),
        )
    }
}

/// The policy, kept free of host calls so it can be unit tested natively.
fn decide(name: &str, previous: Option<Decision>, deny: &[String]) -> Decision {
    if deny.iter().any(|d| d.eq_ignore_ascii_case(name)) {
        return Decision::Refuse(format!(
            "template: upgrade {name} is denied by configuration"
        ));
    }
    previous.unwrap_or_else(|| Decision::Unresolved("template: no resolver before this one".into()))
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Template);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denies_listed_names_and_keeps_the_rest() {
        let deny = vec!["v3".to_string()];
        assert!(matches!(
            decide("V3", Some(Decision::UseStaged), &deny),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            decide("v2", Some(Decision::UseStaged), &deny),
            Decision::UseStaged
        ));
        assert!(matches!(decide("v2", None, &deny), Decision::Unresolved(_)));
    }
}
