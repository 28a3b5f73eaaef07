//! The plugin host: a sandbox that runs WebAssembly components of the `resolver`, `source` and
//! `health` worlds of `wit/plugin-0.1` and `wit/plugin-0.2`, and knows nothing of Cosmos or of
//! the home it serves.
//!
//! - `bindings.rs`: one module of bindings per contract version; `compat.rs` converts 0.1's.
//! - `inspect.rs`: what a component imports and exports, read before anything is compiled.
//! - `host.rs`: one engine, the linker, the compile cache and the hooks a host is built with;
//!   loading a component as a world.
//! - `store.rs`: the store of one call (grants, limits, host functions), `ticker.rs` its clock,
//!   `stdio.rs` its captured output.
//! - `call.rs`: the one calling routine, and a thin typed call per world and version.
//! - `http.rs`: the `http` host interface (allowlisted GET), `wasi_http.rs`: wasi:http's requests
//!   under the same rules, sent by the same client; `sink.rs`: the `output` resource.
//! - `spec.rs`: `plugins.toml`; `set.rs`: the configured plugins, loaded, and their chains.
//!
//! Every call gets a fresh store, so no state survives a call. A plugin failure is a
//! `PluginError`, never a panic of the host.

mod bindings;
mod cache;
mod call;
mod compat;
mod hint;
mod host;
mod http;
mod inspect;
pub mod set;
mod sink;
pub mod spec;
mod stdio;
mod store;
mod ticker;
mod wasi_http;

use std::time::{Duration, Instant};

pub use crate::cancel::Cancel;
pub use bindings::v0_2::notifier::exports::wasmvisor::plugin::notify as notice;
pub use bindings::{
    ArchiveFormat, Artifact, Checksum, Decision, Deferral, FetchError, GuestPlan, HashAlgorithm,
    Health, HealthContext, Platform, Request, Staged, bundled, bundled_name,
};
pub use call::{MAX_ARTIFACTS, MAX_TEXT, MAX_URL};
pub use host::{
    CallHook, CompileHook, HealthCheck, Host, HostConfig, HostError, Loaded, Notifier, Resolver,
    Source, WorldPre,
};
pub use set::{Compile, PluginSet, Resolution, ThreadError, off_runtime, start_off_runtime};
pub use sink::Sink;
pub use spec::{OnUnhealthy, Origin, PluginSpec, Plugins, World};

/// The versions of `wasmvisor:plugin` this host implements, newest first.
pub const INTERFACE_VERSIONS: [&str; 3] = ["0.2.1", "0.2.0", "0.1.0"];

/// Why a plugin call did not produce a usable answer.
#[derive(Debug, Clone)]
pub struct PluginError {
    pub plugin: String,
    pub world: World,
    pub kind: ErrorKind,
    /// The end of what the plugin wrote to stdout and stderr during the call.
    pub output: Option<String>,
}

impl PluginError {
    pub fn new(spec: &PluginSpec, kind: ErrorKind) -> PluginError {
        PluginError {
            plugin: spec.name.clone(),
            world: spec.world,
            kind,
            output: None,
        }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin {} ({}): {}", self.plugin, self.world, self.kind)?;
        match &self.output {
            Some(output) => write!(f, "; it wrote: {output}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for PluginError {}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot load: {0}")]
    Load(String),
    #[error(
        "the .wasm's sha256 is {actual}, but plugins.toml pins {expected}: rebuild or update the pin"
    )]
    Pin { expected: String, actual: String },
    #[error("trapped: {0}")]
    Trap(String),
    #[error(
        "exceeded its time limit of {0:?} and was stopped (its HTTP requests end a tenth of it, at most 1 s, earlier, so that it can answer: it kept working past that; raise `timeout`, or bound its own waits — wasi:http's request-options timeouts are honoured)"
    )]
    Timeout(Duration),
    #[error("exceeded its memory limit of {0} bytes and was stopped")]
    Memory(u64),
    #[error("gave an answer wasmvisor cannot use: {0}")]
    Answer(String),
    #[error("was stopped: wasmvisor is shutting down")]
    Cancelled,
    /// A notifier's own error: it could not deliver the notice.
    #[error("could not deliver the notice: {0}")]
    Undelivered(String),
}

impl ErrorKind {
    /// A word for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ErrorKind::Load(_) | ErrorKind::Pin { .. } => "load",
            ErrorKind::Trap(_) => "trap",
            ErrorKind::Timeout(_) => "timeout",
            ErrorKind::Memory(_) => "memory",
            ErrorKind::Answer(_) => "answer",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Undelivered(_) => "undelivered",
        }
    }
}

/// What bounds one call besides the plugin's own limits.
#[derive(Clone)]
pub struct Call {
    /// A stop request: the call ends at once.
    pub cancel: Cancel,
    /// An earlier deadline than the plugin's `timeout` (a source's retries share one budget).
    pub deadline: Option<Instant>,
}

impl Call {
    pub fn new(cancel: &Cancel) -> Call {
        Call {
            cancel: cancel.clone(),
            deadline: None,
        }
    }
}

/// The platform in Go's names.
pub fn platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    };
    Platform {
        os: std::env::consts::OS.to_string(),
        arch: arch.to_string(),
    }
}
