//! The store of one call: the plugin's grants (read-only directories, allowlisted hosts, named
//! environment variables), its limits (memory, a wall-clock deadline, a log budget), its captured
//! stdout and stderr, and the host functions it may call (`host.log`, `http.get`, the
//! `sink.output` resource) in every contract version, and wasi:http (`wasi_http.rs`).

use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{v0_1, v0_2};
use super::http::Outbound;
use super::sink::Output;
use super::stdio::{self, Captured};
use super::{Call, ErrorKind, PluginError, PluginSpec, http};

/// Log output a plugin may produce per call.
const LOG_BUDGET: usize = 64 * 1024;

/// The store data of one call.
pub struct CallState {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// The plugin's name, what its HTTP requests may reach and until when (both `http` and
    /// wasi:http), and the stop request.
    outbound: Outbound,
    http: WasiHttpCtx,
    memory_limit: u64,
    memory_hit: bool,
    log_left: usize,
    logs_dropped: usize,
    stdout: Captured,
    stderr: Captured,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl wasmtime::ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_limit {
            self.memory_hit = true;
            return Err(wasmtime::format_err!("memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// The host interfaces, identical in every contract version.
macro_rules! host_interfaces {
    ($v:ident) => {
        impl $v::host::Host for CallState {
            fn log(&mut self, level: $v::host::Level, message: String) -> wasmtime::Result<()> {
                if message.len() > self.log_left {
                    self.logs_dropped += 1;
                    return Ok(());
                }
                self.log_left -= message.len();
                let plugin = self.outbound.plugin.as_str();
                match level {
                    $v::host::Level::Trace => tracing::trace!(plugin, "{message}"),
                    $v::host::Level::Debug => tracing::debug!(plugin, "{message}"),
                    $v::host::Level::Info => tracing::info!(plugin, "{message}"),
                    $v::host::Level::Warn => tracing::warn!(plugin, "{message}"),
                    $v::host::Level::Error => tracing::error!(plugin, "{message}"),
                }
                Ok(())
            }
        }

        impl $v::http::Host for CallState {
            fn get(
                &mut self,
                url: String,
                headers: Vec<(String, String)>,
            ) -> wasmtime::Result<Result<Resource<http::Response>, $v::http::HttpError>> {
                Ok(match self.outbound.get(&url, &headers) {
                    Ok(response) => Ok(self.table.push(response)?),
                    Err(http::GetError::Denied(m)) => Err($v::http::HttpError::Denied(m)),
                    Err(http::GetError::Failed(m)) => Err($v::http::HttpError::Failed(m)),
                })
            }
        }

        impl $v::http::HostResponse for CallState {
            fn status(&mut self, this: Resource<http::Response>) -> wasmtime::Result<u16> {
                Ok(self.table.get(&this)?.status)
            }

            fn header(
                &mut self,
                this: Resource<http::Response>,
                name: String,
            ) -> wasmtime::Result<Option<String>> {
                Ok(http::header(self.table.get(&this)?, &name))
            }

            fn read(
                &mut self,
                this: Resource<http::Response>,
                max: u32,
            ) -> wasmtime::Result<Result<Vec<u8>, $v::http::HttpError>> {
                let response = self.table.get_mut(&this)?;
                Ok(http::read(response, max).map_err($v::http::HttpError::Failed))
            }

            fn drop(&mut self, this: Resource<http::Response>) -> wasmtime::Result<()> {
                self.table.delete(this)?;
                Ok(())
            }
        }

        impl $v::sink::Host for CallState {}

        impl $v::sink::HostOutput for CallState {
            fn write(
                &mut self,
                this: Resource<Output>,
                bytes: Vec<u8>,
            ) -> wasmtime::Result<Result<(), String>> {
                if self.outbound.cancel.is_cancelled() {
                    return Ok(Err("stopped: wasmvisor is shutting down".into()));
                }
                Ok(self.table.get_mut(&this)?.0.write(&bytes))
            }

            fn written(&mut self, this: Resource<Output>) -> wasmtime::Result<u64> {
                Ok(self.table.get(&this)?.0.written())
            }

            fn reset(&mut self, this: Resource<Output>) -> wasmtime::Result<()> {
                self.table.get_mut(&this)?.0.reset();
                Ok(())
            }

            fn drop(&mut self, _this: Resource<Output>) -> wasmtime::Result<()> {
                // The host owns the output and takes it back after the call.
                Ok(())
            }
        }
    };
}

host_interfaces!(v0_1);
host_interfaces!(v0_2);

/// The marker error of a call stopped at its deadline.
#[derive(Debug)]
struct DeadlineHit;

impl std::fmt::Display for DeadlineHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline reached")
    }
}

impl std::error::Error for DeadlineHit {}

/// The marker error of a call stopped by a stop request.
#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// A fresh store for one call of `spec`'s plugin.
pub(super) fn store(engine: &Engine, spec: &PluginSpec, call: &Call) -> Store<CallState> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let (stdout, stderr) = (Captured::default(), Captured::default());
    wasi.stdout(stdout.clone()).stderr(stderr.clone());
    for name in &spec.env {
        // Read at each call, so the value is the process's now; an unset variable stays unset.
        if let Some(value) = std::env::var_os(name).and_then(|v| v.into_string().ok()) {
            wasi.env(name, value);
        }
    }
    for (host_dir, guest) in &spec.dirs {
        if let Err(e) = wasi.preopened_dir(host_dir, guest, FsPerms::ReadOnly) {
            tracing::warn!(plugin = %spec.name, dir = %host_dir.display(), "cannot grant directory: {e:#}");
        }
    }
    let deadline = Instant::now() + spec.timeout;
    let state = CallState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        outbound: Outbound {
            plugin: spec.name.clone(),
            allow: http::Allow::new(&spec.allow_hosts),
            deadline: call.deadline.map_or(deadline, |d| d.min(deadline)),
            read_idle: spec.read_idle,
            cancel: call.cancel.clone(),
        },
        http: WasiHttpCtx::new(),
        memory_limit: spec.memory,
        memory_hit: false,
        log_left: LOG_BUDGET,
        logs_dropped: 0,
        stdout,
        stderr,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| s);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        if ctx.data().outbound.cancel.is_cancelled() {
            Err(wasmtime::Error::new(Cancelled))
        } else if Instant::now() >= ctx.data().outbound.deadline {
            Err(wasmtime::Error::new(DeadlineHit))
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
    store
}

/// Turns a failed call into a plugin error, by what the store saw.
pub(super) fn classify(
    spec: &PluginSpec,
    store: &Store<CallState>,
    e: wasmtime::Error,
) -> PluginError {
    let kind = if store.data().memory_hit {
        ErrorKind::Memory(spec.memory)
    } else if e.downcast_ref::<Cancelled>().is_some() || store.data().outbound.cancel.is_cancelled()
    {
        ErrorKind::Cancelled
    } else if e.downcast_ref::<DeadlineHit>().is_some() {
        ErrorKind::Timeout(spec.timeout)
    } else if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        ErrorKind::Trap(match trap {
            wasmtime::Trap::StackOverflow => "stack overflow (runaway recursion?)".into(),
            wasmtime::Trap::MemoryOutOfBounds => {
                "out of bounds memory access (the plugin overflowed its own stack, or has a bug)"
                    .into()
            }
            wasmtime::Trap::UnreachableCodeReached => {
                "unreachable code reached (a panic in the plugin?)".into()
            }
            other => other.to_string(),
        })
    } else {
        ErrorKind::Trap(format!("{e:#}"))
    };
    PluginError::new(spec, kind)
}

/// Logs what the call left behind (its stdout and stderr, dropped log lines) and returns its
/// output for an error to quote.
pub(super) fn after_call(spec: &PluginSpec, store: &Store<CallState>) -> Option<String> {
    let data = store.data();
    if data.logs_dropped > 0 {
        tracing::warn!(plugin = %spec.name, dropped = data.logs_dropped, "plugin log lines dropped over the per-call limit");
    }
    let mut quoted = String::new();
    for (stream, captured) in [("stdout", &data.stdout), ("stderr", &data.stderr)] {
        let (text, dropped) = captured.take();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let line = crate::output::escape_controls(line);
            tracing::info!(plugin = %spec.name, stream, "{line}");
        }
        if dropped > 0 {
            tracing::warn!(plugin = %spec.name, stream, dropped, "plugin output dropped: only the last {} bytes per call are kept", stdio::KEPT);
        }
        if !text.trim().is_empty() {
            quoted.push_str(text.trim());
            quoted.push('\n');
        }
    }
    (!quoted.is_empty()).then(|| crate::output::escape_controls(stdio::tail(&quoted)).into_owned())
}
