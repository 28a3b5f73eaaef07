//! The Rust bindings of every contract version this host implements, one module per version
//! (each with one module per world, sharing that version's types), and the plugins compiled
//! into wasmvisor.
//!
//! The host works in the newest version's types (re-exported below); `compat.rs` converts an
//! older plugin's arguments and answers at the call.

/// One contract version's bindings: a module per world, sharing that version's types, and the
/// host's own `http.response` and `sink.output` resources.
macro_rules! contract {
    ($path:literal $(, $wasi:literal => $module:path)*) => {
        pub mod resolver {
            wasmtime::component::bindgen!({
                path: $path,
                world: "resolver",
                imports: { default: trappable },
                require_store_data_send: true,
                // Decisions are compared as values (did asking again change the answer?).
                additional_derives: [PartialEq],
                with: {
                    "wasmvisor:plugin/http.response": crate::plugin::http::Response,
                    $($wasi: $module,)*
                },
            });
        }
        pub mod source {
            wasmtime::component::bindgen!({
                path: $path,
                world: "source",
                imports: { default: trappable },
                require_store_data_send: true,
                with: {
                    "wasmvisor:plugin/types": super::resolver::wasmvisor::plugin::types,
                    "wasmvisor:plugin/host": super::resolver::wasmvisor::plugin::host,
                    "wasmvisor:plugin/http": super::resolver::wasmvisor::plugin::http,
                    "wasmvisor:plugin/sink.output": crate::plugin::sink::Output,
                    $($wasi: $module,)*
                },
            });
        }
        pub mod health {
            wasmtime::component::bindgen!({
                path: $path,
                world: "health",
                imports: { default: trappable },
                require_store_data_send: true,
                with: {
                    "wasmvisor:plugin/types": super::resolver::wasmvisor::plugin::types,
                    "wasmvisor:plugin/host": super::resolver::wasmvisor::plugin::host,
                    "wasmvisor:plugin/http": super::resolver::wasmvisor::plugin::http,
                    $($wasi: $module,)*
                },
            });
        }
        pub use resolver::wasmvisor::plugin::types;
        pub use resolver::wasmvisor::plugin::{host, http};
        pub use source::wasmvisor::plugin::sink;
    };
}

/// `wit/plugin-0.1`.
pub mod v0_1 {
    contract!("wit/plugin-0.1");
}

/// `wit/plugin-0.2`, whose worlds import wasi:http (linked from wasmtime-wasi-http).
pub mod v0_2 {
    contract!(
        "wit/plugin-0.2",
        "wasi:http" => wasmtime_wasi_http::p2::bindings::http,
        "wasi:io" => wasmtime_wasi::p2::bindings::io,
        "wasi:clocks" => wasmtime_wasi::p2::bindings::clocks
    );
}

use std::sync::OnceLock;

/// The contract's `plan` record is `GuestPlan` here: the plan as a plugin is shown it, which is
/// not the `tree::Plan` read from upgrade-info.json (that one is converted into this).
pub use v0_2::types::{
    ArchiveFormat, Artifact, Checksum, Decision, Deferral, FetchError, HashAlgorithm, Health,
    HealthContext, Plan as GuestPlan, Platform, Request, Staged,
};

static COSMOVISOR_WASM: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/wasmvisor_plugin_cosmovisor.wasm.deflate"
));
static HTTP_WASM: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/wasmvisor_plugin_http.wasm.deflate"
));

/// The name of a plugin compiled into wasmvisor, if `name` is one (nothing is inflated).
pub fn bundled_name(name: &str) -> Option<&'static str> {
    ["cosmovisor", "http"].into_iter().find(|b| *b == name)
}

/// The plugins compiled into wasmvisor, by name: embedded compressed, inflated on first use.
pub fn bundled(name: &str) -> Option<(&'static str, &'static [u8])> {
    static COSMOVISOR: OnceLock<Vec<u8>> = OnceLock::new();
    static HTTP: OnceLock<Vec<u8>> = OnceLock::new();
    let name = bundled_name(name)?;
    let (packed, cell) = match name {
        "cosmovisor" => (COSMOVISOR_WASM, &COSMOVISOR),
        _ => (HTTP_WASM, &HTTP),
    };
    Some((name, cell.get_or_init(|| inflate(packed)).as_slice()))
}

fn inflate(packed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packed.len() * 3);
    std::io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(packed), &mut out)
        .expect("the bundled plugins were compressed by the build script");
    out
}
