//! {{name}}: a resolver plugin for wasmvisor (wasmvisor:plugin@0.2.0).
//!
//! It keeps the decision the resolvers before it made, and refuses the upgrades listed in its
//! `deny` setting. Change `decide`, keep it free of host calls, and test it natively.

wit_bindgen::generate!({ world: "resolver", path: "wit", generate_all });

use exports::wasmvisor::plugin::resolve::Guest;
use wasmvisor::plugin::host::{Level, log};
use wasmvisor::plugin::types::{Decision, Request, Settings};

struct Plugin;

impl Guest for Plugin {
    fn resolve(request: Request, previous: Option<Decision>, settings: Settings) -> Decision {
        log(Level::Info, &format!("asked about {}", request.plan.name));
        let deny: Vec<&str> = settings
            .iter()
            .filter(|(k, _)| k == "deny")
            .map(|(_, v)| v.as_str())
            .collect();
        decide(&request.plan.name, previous, &deny)
    }
}

fn decide(name: &str, previous: Option<Decision>, deny: &[&str]) -> Decision {
    if deny.iter().any(|d| d.eq_ignore_ascii_case(name)) {
        return Decision::Refuse(format!("{{name}}: upgrade {name} is denied"));
    }
    previous.unwrap_or_else(|| Decision::Unresolved("{{name}}: no resolver before this one".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denies_listed_names_and_keeps_the_rest() {
        assert!(matches!(decide("V3", Some(Decision::UseStaged), &["v3"]), Decision::Refuse(_)));
        assert!(matches!(decide("v2", Some(Decision::UseStaged), &["v3"]), Decision::UseStaged));
    }
}

#[cfg(target_arch = "wasm32")]
export!(Plugin);
