//! The store of one call: the plugin's grants (read-only directories, allowlisted hosts), its
//! limits (memory, a wall-clock deadline, a log budget) and the host functions it may call
//! (`host.log`, `http.get`, the `sink.output` resource).

use std::time::{Duration, Instant};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::resolver::wasmvisor::plugin::{host as wit_host, http as wit_http};
use super::bindings::source::wasmvisor::plugin::sink as wit_sink;
use super::sink::Output;
use super::{Call, ErrorKind, PluginError, PluginSpec, http};
use crate::cancel::Cancel;

/// Log output a plugin may produce per call.
const LOG_BUDGET: usize = 64 * 1024;

/// The store data of one call.
pub struct State {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    plugin: String,
    allow: http::Allow,
    deadline: Instant,
    read_idle: Duration,
    cancel: Cancel,
    memory_limit: u64,
    memory_hit: bool,
    log_left: usize,
    logs_dropped: usize,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime::ResourceLimiter for State {
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

impl wit_host::Host for State {
    fn log(&mut self, level: wit_host::Level, message: String) -> wasmtime::Result<()> {
        if message.len() > self.log_left {
            self.logs_dropped += 1;
            return Ok(());
        }
        self.log_left -= message.len();
        let plugin = self.plugin.as_str();
        match level {
            wit_host::Level::Trace => tracing::trace!(plugin, "{message}"),
            wit_host::Level::Debug => tracing::debug!(plugin, "{message}"),
            wit_host::Level::Info => tracing::info!(plugin, "{message}"),
            wit_host::Level::Warn => tracing::warn!(plugin, "{message}"),
            wit_host::Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl wit_http::Host for State {
    fn get(
        &mut self,
        url: String,
        headers: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<Resource<http::Response>, wit_http::HttpError>> {
        let bounds = http::Bounds {
            deadline: self.deadline,
            read_idle: self.read_idle,
            cancel: &self.cancel,
        };
        Ok(
            match http::get(&self.allow, &self.plugin, &url, &headers, &bounds) {
                Ok(response) => Ok(self.table.push(response)?),
                Err(http::GetError::Denied(m)) => Err(wit_http::HttpError::Denied(m)),
                Err(http::GetError::Failed(m)) => Err(wit_http::HttpError::Failed(m)),
            },
        )
    }
}

impl wit_http::HostResponse for State {
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
    ) -> wasmtime::Result<Result<Vec<u8>, wit_http::HttpError>> {
        let response = self.table.get_mut(&this)?;
        Ok(http::read(response, max).map_err(wit_http::HttpError::Failed))
    }

    fn drop(&mut self, this: Resource<http::Response>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl wit_sink::Host for State {}

impl wit_sink::HostOutput for State {
    fn write(
        &mut self,
        this: Resource<Output>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        if self.cancel.is_cancelled() {
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
pub(super) fn store(engine: &Engine, spec: &PluginSpec, call: &Call) -> Store<State> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (host_dir, guest) in &spec.dirs {
        if let Err(e) = wasi.preopened_dir(host_dir, guest, FsPerms::ReadOnly) {
            tracing::warn!(plugin = %spec.name, dir = %host_dir.display(), "cannot grant directory: {e:#}");
        }
    }
    let state = State {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        plugin: spec.name.clone(),
        allow: http::Allow::new(&spec.allow_hosts),
        deadline: call.deadline.map_or(Instant::now() + spec.timeout, |d| {
            d.min(Instant::now() + spec.timeout)
        }),
        read_idle: spec.read_idle,
        cancel: call.cancel.clone(),
        memory_limit: spec.memory,
        memory_hit: false,
        log_left: LOG_BUDGET,
        logs_dropped: 0,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| s);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        if ctx.data().cancel.is_cancelled() {
            Err(wasmtime::Error::new(Cancelled))
        } else if Instant::now() >= ctx.data().deadline {
            Err(wasmtime::Error::new(DeadlineHit))
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
    store
}

/// Turns a failed call into a plugin error, by what the store saw.
pub(super) fn classify(spec: &PluginSpec, store: &Store<State>, e: wasmtime::Error) -> PluginError {
    let kind = if store.data().memory_hit {
        ErrorKind::Memory(spec.memory)
    } else if e.downcast_ref::<Cancelled>().is_some() || store.data().cancel.is_cancelled() {
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
    PluginError {
        plugin: spec.name.clone(),
        world: spec.world,
        kind,
    }
}

pub(super) fn after_call(spec: &PluginSpec, store: &Store<State>) {
    if store.data().logs_dropped > 0 {
        tracing::warn!(plugin = %spec.name, dropped = store.data().logs_dropped, "plugin log lines dropped over the per-call limit");
    }
}
