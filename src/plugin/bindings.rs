//! The Rust bindings of every contract version this host implements, one module per version
//! (each with one module per world, sharing that version's types), and the plugins compiled
//! into wasmvisor.
//!
//! The host works in the newest version's types (re-exported below); `compat.rs` converts an
//! older plugin's arguments and answers at the call.

/// `wit/plugin-0.1`.
pub mod v0_1 {
    pub mod resolver {
        wasmtime::component::bindgen!({
            path: "wit/plugin-0.1",
            world: "resolver",
            imports: { default: trappable },
            with: { "wasmvisor:plugin/http.response": crate::plugin::http::Response },
        });
    }
    pub mod source {
        wasmtime::component::bindgen!({
            path: "wit/plugin-0.1",
            world: "source",
            imports: { default: trappable },
            with: {
                "wasmvisor:plugin/types": super::resolver::wasmvisor::plugin::types,
                "wasmvisor:plugin/host": super::resolver::wasmvisor::plugin::host,
                "wasmvisor:plugin/http": super::resolver::wasmvisor::plugin::http,
                "wasmvisor:plugin/sink.output": crate::plugin::sink::Output,
            },
        });
    }
    pub mod health {
        wasmtime::component::bindgen!({
            path: "wit/plugin-0.1",
            world: "health",
            imports: { default: trappable },
            with: {
                "wasmvisor:plugin/types": super::resolver::wasmvisor::plugin::types,
                "wasmvisor:plugin/host": super::resolver::wasmvisor::plugin::host,
                "wasmvisor:plugin/http": super::resolver::wasmvisor::plugin::http,
            },
        });
    }
    pub use resolver::wasmvisor::plugin::types;
    pub use resolver::wasmvisor::plugin::{host, http};
    pub use source::wasmvisor::plugin::sink;
}

/// `wit/plugin-0.2`.
pub mod v0_2 {
    pub mod resolver {
        wasmtime::component::bindgen!({
            path: "wit/plugin-0.2",
            world: "resolver",
            imports: { default: trappable },
            with: { "wasmvisor:plugin/http.response": crate::plugin::http::Response },
        });
    }
    pub mod source {
        wasmtime::component::bindgen!({
            path: "wit/plugin-0.2",
            world: "source",
            imports: { default: trappable },
            with: {
                "wasmvisor:plugin/types": super::resolver::wasmvisor::plugin::types,
                "wasmvisor:plugin/host": super::resolver::wasmvisor::plugin::host,
                "wasmvisor:plugin/http": super::resolver::wasmvisor::plugin::http,
                "wasmvisor:plugin/sink.output": crate::plugin::sink::Output,
            },
        });
    }
    pub mod health {
        wasmtime::component::bindgen!({
            path: "wit/plugin-0.2",
            world: "health",
            imports: { default: trappable },
            with: {
                "wasmvisor:plugin/types": super::resolver::wasmvisor::plugin::types,
                "wasmvisor:plugin/host": super::resolver::wasmvisor::plugin::host,
                "wasmvisor:plugin/http": super::resolver::wasmvisor::plugin::http,
            },
        });
    }
    pub use resolver::wasmvisor::plugin::types;
    pub use resolver::wasmvisor::plugin::{host, http};
    pub use source::wasmvisor::plugin::sink;
}

pub use v0_2::types::{
    ArchiveFormat, Artifact, Checksum, Decision, Deferral, FetchError, HashAlgorithm, Health,
    HealthContext, Plan, Platform, Request, Staged,
};

static COSMOVISOR_WASM: &[u8] = include_bytes!(concat!(
    env!("WASMVISOR_PLUGINS_DIR"),
    "/wasmvisor_plugin_cosmovisor.wasm"
));
static HTTP_WASM: &[u8] = include_bytes!(concat!(
    env!("WASMVISOR_PLUGINS_DIR"),
    "/wasmvisor_plugin_http.wasm"
));

/// The plugins compiled into wasmvisor, by name.
pub fn bundled(name: &str) -> Option<(&'static str, &'static [u8])> {
    match name {
        "cosmovisor" => Some(("cosmovisor", COSMOVISOR_WASM)),
        "http" => Some(("http", HTTP_WASM)),
        _ => None,
    }
}
