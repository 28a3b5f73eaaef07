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

/// `wit/plugin-0.2.1`, whose worlds import wasi:http (linked from wasmtime-wasi-http). Its
/// exports are found by semver: a 0.2.0 component's `check@0.2.0` is the `check@0.2.1` these
/// bindings look for, so 0.2.0 plugins load with them unchanged.
pub mod v0_2 {
    contract!(
        "wit/plugin-0.2.1",
        "wasi:http" => wasmtime_wasi_http::p2::bindings::http,
        "wasi:io" => wasmtime_wasi::p2::bindings::io,
        "wasi:clocks" => wasmtime_wasi::p2::bindings::clocks
    );
    /// 0.2.1's notifiers.
    pub mod notifier {
        wasmtime::component::bindgen!({
            path: "wit/plugin-0.2.1",
            world: "notifier",
            imports: { default: trappable },
            require_store_data_send: true,
            with: {
                "wasmvisor:plugin/types": super::resolver::wasmvisor::plugin::types,
                "wasmvisor:plugin/host": super::resolver::wasmvisor::plugin::host,
                "wasmvisor:plugin/http": super::resolver::wasmvisor::plugin::http,
                "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                "wasi:io": wasmtime_wasi::p2::bindings::io,
                "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            },
        });
    }
}

/// The contract's `plan` record is `GuestPlan` here: the plan as a plugin is shown it, which is
/// not the `tree::Plan` read from upgrade-info.json (that one is converted into this).
pub use v0_2::types::{
    ArchiveFormat, Artifact, Checksum, Decision, Deferral, FetchError, HashAlgorithm, Health,
    HealthContext, Plan as GuestPlan, Platform, Request, Staged,
};

use std::sync::OnceLock;

/// The bundled plugins, one xz stream (see build.rs), and where each one is in what it decodes
/// to: `(name, start, end)`.
static BUNDLED_XZ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bundled.xz"));
static BUNDLED: &[(&str, usize, usize)] = include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The name of a plugin compiled into wasmvisor, if `name` is one (nothing is decoded).
pub fn bundled_name(name: &str) -> Option<&'static str> {
    BUNDLED.iter().map(|(n, _, _)| *n).find(|b| *b == name)
}

/// A plugin compiled into wasmvisor, by name. The stream is decoded once, on first use (about
/// 8 ms for the three), and kept: the bytes are what a plugin's compiled code is looked up by.
pub fn bundled(name: &str) -> Option<(&'static str, &'static [u8])> {
    static DECODED: OnceLock<Vec<u8>> = OnceLock::new();
    let &(name, start, end) = BUNDLED.iter().find(|(n, _, _)| *n == name)?;
    let all = DECODED.get_or_init(|| {
        let size = BUNDLED.last().map_or(0, |(_, _, end)| *end);
        let mut all = Vec::with_capacity(size);
        std::io::Read::read_to_end(&mut lzma_rust2::XzReader::new(BUNDLED_XZ, false), &mut all)
            .expect("the bundled plugins were compressed by the build script");
        all
    });
    Some((name, &all[start..end]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_bundled_plugin_decodes_to_its_own_component() {
        let mut seen = std::collections::HashSet::new();
        for &(name, start, end) in super::BUNDLED {
            let started = std::time::Instant::now();
            let (found, bytes) = super::bundled(name).unwrap();
            eprintln!("{name}: {} bytes in {:?}", bytes.len(), started.elapsed());
            assert_eq!(found, name);
            assert_eq!(bytes.len(), end - start);
            // A component's preamble: magic, then version 0x0d and layer 1.
            assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "{name}");
            assert!(
                seen.insert(bytes),
                "{name} decodes to another plugin's bytes"
            );
        }
        assert!(super::bundled("nonesuch").is_none());
        assert_eq!(super::bundled_name("signing"), Some("signing"));
    }
}
