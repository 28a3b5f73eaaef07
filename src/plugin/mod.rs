//! The plugin host: wasmtime components for the `resolver`, `source` and `health` worlds of
//! `wit/plugin-0.1`.
//!
//! One `Engine` for the process. A component is compiled once and cached on disk, keyed by the
//! engine's compatibility hash and the wasm's sha256; what is kept in memory is an
//! `InstancePre`, and every call instantiates it into a fresh `Store`, so no state survives a
//! call. A store carries the plugin's grants (read-only directories, allowlisted hosts) and
//! limits (memory via a `ResourceLimiter`, a wall-clock deadline via epoch interruption, the
//! size of every answer). A plugin failure is a `PluginError`, never a panic of the host.

pub mod artifact;
pub mod config;
mod http;
pub mod set;
pub mod sink;

use std::hash::{Hash, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use cap_std::fs::Dir;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use crate::cancel::Cancel;
pub use config::{OnUnhealthy, Origin, PluginSpec, Plugins, World};
pub use set::{PluginSet, off_runtime};
pub use sink::Output;

/// The version of `wasmvisor:plugin` this host implements.
pub const INTERFACE_VERSION: &str = "0.1.0";

pub mod bindings {
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
}

pub use bindings::resolver::wasmvisor::plugin::types::{
    ArchiveFormat, Artifact, Checksum, Decision, FetchError, HashAlgorithm, Health, HealthContext,
    Plan, Platform, Request, Staged,
};
use bindings::resolver::wasmvisor::plugin::{host as wit_host, http as wit_http};

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

/// Limits on what a plugin may answer.
pub const MAX_TEXT: usize = 4096;
pub const MAX_ARTIFACTS: usize = 32;
pub const MAX_URL: usize = 8192;
/// Log output a plugin may produce per call.
const LOG_BUDGET: usize = 64 * 1024;
/// How often the epoch advances while calls run.
const TICK: Duration = Duration::from_millis(10);
/// Wasm stack per call: enough for real plugins, small enough that runaway recursion traps fast.
const WASM_STACK: usize = 512 * 1024;

/// Why a plugin call did not produce a usable answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin {plugin} ({world}): {kind}")]
pub struct PluginError {
    pub plugin: String,
    pub world: World,
    pub kind: ErrorKind,
}

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
    #[error("exceeded its time limit of {0:?} and was stopped")]
    Timeout(Duration),
    #[error("exceeded its memory limit of {0} bytes and was stopped")]
    Memory(u64),
    #[error("gave an answer wasmvisor cannot use: {0}")]
    Answer(String),
    #[error("was stopped: wasmvisor is shutting down")]
    Cancelled,
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

/// The store data of one call.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
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

impl bindings::source::wasmvisor::plugin::sink::Host for State {}

impl bindings::source::wasmvisor::plugin::sink::HostOutput for State {
    fn write(
        &mut self,
        this: Resource<Output>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        if self.cancel.is_cancelled() {
            return Ok(Err("stopped: wasmvisor is shutting down".into()));
        }
        Ok(self.table.get_mut(&this)?.write(&bytes))
    }

    fn written(&mut self, this: Resource<Output>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.written())
    }

    fn reset(&mut self, this: Resource<Output>) -> wasmtime::Result<()> {
        self.table.get_mut(&this)?.reset();
        Ok(())
    }

    fn drop(&mut self, _this: Resource<Output>) -> wasmtime::Result<()> {
        // The host owns the output and takes it back after the call.
        Ok(())
    }
}

/// Advances the engine's epoch every `TICK` while at least one call runs, and sleeps otherwise
/// (an idle supervisor has no timer wake-ups).
struct Ticker {
    active: Mutex<usize>,
    wake: Condvar,
}

impl Ticker {
    fn start(engine: Engine) -> Arc<Ticker> {
        let ticker = Arc::new(Ticker {
            active: Mutex::new(0),
            wake: Condvar::new(),
        });
        let t = ticker.clone();
        std::thread::Builder::new()
            .name("wasmvisor-epoch".into())
            .spawn(move || {
                loop {
                    let mut active = t.active.lock().unwrap_or_else(|p| p.into_inner());
                    while *active == 0 {
                        active = t.wake.wait(active).unwrap_or_else(|p| p.into_inner());
                    }
                    drop(active);
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .expect("cannot start the epoch thread");
        ticker
    }

    fn enter(self: &Arc<Ticker>) -> TickGuard {
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.wake.notify_one();
        TickGuard(self.clone())
    }
}

struct TickGuard(Arc<Ticker>);

impl Drop for TickGuard {
    fn drop(&mut self) {
        *self.0.active.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
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

/// A loaded plugin: its spec and what is needed to instantiate it.
pub struct Loaded {
    pub spec: PluginSpec,
    /// sha256 of the .wasm.
    pub digest: String,
    /// Whether the compiled code came from the cache.
    pub cached: bool,
    pre: Pre,
}

enum Pre {
    Resolver(bindings::resolver::ResolverPre<State>),
    Source(bindings::source::SourcePre<State>),
    Health(bindings::health::HealthPre<State>),
}

/// The host: one engine, one linker, a compile cache.
pub struct Host {
    engine: Engine,
    linker: Linker<State>,
    cache: Option<Dir>,
    ticker: Arc<Ticker>,
}

/// The largest component file read (a JavaScript or Python component is tens of MiB).
const MAX_COMPONENT: u64 = 256 << 20;
/// The largest compiled artifact read back from the cache.
const MAX_COMPILED: u64 = 1 << 30;

impl Host {
    /// Creates the engine. `cache` is the folder for compiled plugins (none: compile in memory).
    pub fn new(cache: Option<Dir>) -> Result<Host, String> {
        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .max_wasm_stack(WASM_STACK)
            .wasm_component_model(true);
        let engine =
            Engine::new(&config).map_err(|e| format!("cannot create the wasm engine: {e}"))?;
        let mut linker = Linker::new(&engine);
        let link = |r: wasmtime::Result<()>| {
            r.map_err(|e| format!("cannot link the host interfaces: {e}"))
        };
        link(wasmtime_wasi::p2::add_to_linker_sync(&mut linker))?;
        link(wit_host::add_to_linker::<State, HasSelf<State>>(
            &mut linker,
            |s| s,
        ))?;
        link(wit_http::add_to_linker::<State, HasSelf<State>>(
            &mut linker,
            |s| s,
        ))?;
        link(bindings::source::wasmvisor::plugin::sink::add_to_linker::<
            State,
            HasSelf<State>,
        >(&mut linker, |s| s))?;
        let ticker = Ticker::start(engine.clone());
        Ok(Host {
            engine,
            linker,
            cache,
            ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The shared host for the process, created on first use with the given cache folder.
    pub fn shared(cache: Option<Dir>) -> Result<&'static Host, String> {
        static HOST: OnceLock<Result<Host, String>> = OnceLock::new();
        HOST.get_or_init(|| Host::new(cache))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Reads, verifies, compiles (or loads from the cache) and pre-instantiates a plugin.
    pub fn load(&self, spec: &PluginSpec) -> Result<Loaded, PluginError> {
        let fail = |kind| PluginError {
            plugin: spec.name.clone(),
            world: spec.world,
            kind,
        };
        let owned;
        let bytes: &[u8] = match &spec.origin {
            Origin::Bundled(name) => bundled(name)
                .map(|(_, b)| b)
                .ok_or_else(|| fail(ErrorKind::Load(format!("no bundled plugin named {name}"))))?,
            Origin::File(path) => {
                owned = crate::fsutil::read_regular_path(path, MAX_COMPONENT).map_err(|e| {
                    fail(ErrorKind::Load(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )))
                })?;
                &owned
            }
        };
        let digest = hex::encode(Sha256::digest(bytes));
        if let Some(expected) = &spec.sha256
            && *expected != digest
        {
            return Err(fail(ErrorKind::Pin {
                expected: expected.clone(),
                actual: digest,
            }));
        }
        let (component, cached) = self
            .compile(bytes, &digest)
            .map_err(|e| fail(ErrorKind::Load(e)))?;
        check_world(&self.engine, &component, spec.world).map_err(|e| fail(ErrorKind::Load(e)))?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            fail(ErrorKind::Load(format!(
                "it needs an import wasmvisor does not provide: {e:#}"
            )))
        })?;
        let load_err = |e: wasmtime::Error| fail(ErrorKind::Load(format!("{e:#}")));
        let pre = match spec.world {
            World::Resolver => {
                Pre::Resolver(bindings::resolver::ResolverPre::new(pre).map_err(load_err)?)
            }
            World::Source => Pre::Source(bindings::source::SourcePre::new(pre).map_err(load_err)?),
            World::Health => Pre::Health(bindings::health::HealthPre::new(pre).map_err(load_err)?),
        };
        Ok(Loaded {
            spec: spec.clone(),
            digest,
            cached,
            pre,
        })
    }

    /// The compiled component, from the cache when it holds a compatible artifact.
    fn compile(&self, bytes: &[u8], digest: &str) -> Result<(Component, bool), String> {
        let Some(dir) = &self.cache else {
            return Component::new(&self.engine, bytes)
                .map(|c| (c, false))
                .map_err(|e| format!("not a valid component: {e:#}"));
        };
        let name = format!("{}-{}.cwasm", self.compat_key(), &digest[..32]);
        match crate::fsutil::read_regular(dir, &name, MAX_COMPILED, crate::fsutil::Follow::No) {
            // SAFETY: the cache folder is wasmvisor's own (a link there is refused) and holds
            // only what this build wrote, per the compatibility key in the name.
            Ok(Some(cached)) => match unsafe { Component::deserialize(&self.engine, &cached) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!(file = %name, "ignoring an unusable compiled plugin: {e:#}")
                }
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(file = %name, "ignoring the cached compiled plugin: {e}"),
        }
        let compiled = self
            .engine
            .precompile_component(bytes)
            .map_err(|e| format!("not a valid component: {e:#}"))?;
        if let Err(e) = crate::fsutil::replace(dir, &name, &compiled) {
            tracing::warn!(file = %name, "cannot cache the compiled plugin: {e}");
        }
        // SAFETY: these bytes were produced by this engine a moment ago.
        let component = unsafe { Component::deserialize(&self.engine, &compiled) }
            .map_err(|e| format!("cannot load the compiled plugin: {e:#}"))?;
        Ok((component, false))
    }

    /// A short key of everything that makes compiled code loadable by this engine.
    pub fn compat_key(&self) -> String {
        let mut h = std::hash::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        format!("{:016x}", h.finish())
    }

    fn store(&self, spec: &PluginSpec, call: &Call) -> Store<State> {
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
        let mut store = Store::new(&self.engine, state);
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
    fn classify(spec: &PluginSpec, store: &Store<State>, e: wasmtime::Error) -> PluginError {
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

    fn after_call(spec: &PluginSpec, store: &Store<State>) {
        if store.data().logs_dropped > 0 {
            tracing::warn!(plugin = %spec.name, dropped = store.data().logs_dropped, "plugin log lines dropped over the per-call limit");
        }
    }

    /// Asks a resolver.
    pub fn resolve(
        &self,
        plugin: &Loaded,
        request: &Request,
        previous: Option<&Decision>,
        call: &Call,
    ) -> Result<Decision, PluginError> {
        let Pre::Resolver(pre) = &plugin.pre else {
            unreachable!("checked at load")
        };
        let spec = &plugin.spec;
        let _tick = self.ticker.enter();
        let mut store = self.store(spec, call);
        let result = pre.instantiate(&mut store).and_then(|r| {
            r.wasmvisor_plugin_resolve()
                .call_resolve(&mut store, request, previous, &spec.settings)
        });
        Self::after_call(spec, &store);
        let decision = result.map_err(|e| Self::classify(spec, &store, e))?;
        validate_decision(&decision).map_err(|m| PluginError {
            plugin: spec.name.clone(),
            world: spec.world,
            kind: ErrorKind::Answer(m),
        })?;
        // A reason is shown to the operator: it cannot add lines or drive a terminal.
        Ok(match decision {
            Decision::Refuse(reason) => Decision::Refuse(plain(reason)),
            other => other,
        })
    }

    /// Asks a source to write an artifact into `output`. The output comes back in every case.
    pub fn fetch(
        &self,
        plugin: &Loaded,
        artifact: &Artifact,
        output: Output,
        call: &Call,
    ) -> (Output, Result<Result<(), FetchError>, PluginError>) {
        let Pre::Source(pre) = &plugin.pre else {
            unreachable!("checked at load")
        };
        let spec = &plugin.spec;
        let _tick = self.ticker.enter();
        let mut store = self.store(spec, call);
        let handle = store
            .data_mut()
            .table
            .push(output)
            .expect("a fresh table has room");
        let borrowed = Resource::<Output>::new_borrow(handle.rep());
        let result = pre.instantiate(&mut store).and_then(|s| {
            s.wasmvisor_plugin_fetch()
                .call_fetch(&mut store, artifact, &spec.settings, borrowed)
        });
        Self::after_call(spec, &store);
        let result = result.map_err(|e| Self::classify(spec, &store, e));
        let output = store
            .data_mut()
            .table
            .delete(handle)
            .expect("the host's output stays in the table");
        let result = result.and_then(|r| match &r {
            Err(FetchError::Retryable(m) | FetchError::Failed(m)) if m.len() > MAX_TEXT => {
                Err(PluginError {
                    plugin: spec.name.clone(),
                    world: spec.world,
                    kind: ErrorKind::Answer(format!("an error message of {} bytes", m.len())),
                })
            }
            Err(FetchError::Retryable(m)) => Ok(Err(FetchError::Retryable(plain(m.clone())))),
            Err(FetchError::Failed(m)) => Ok(Err(FetchError::Failed(plain(m.clone())))),
            _ => Ok(r),
        });
        (output, result)
    }

    /// Asks a health check once.
    pub fn check(
        &self,
        plugin: &Loaded,
        context: &HealthContext,
        call: &Call,
    ) -> Result<Health, PluginError> {
        let Pre::Health(pre) = &plugin.pre else {
            unreachable!("checked at load")
        };
        let spec = &plugin.spec;
        let _tick = self.ticker.enter();
        let mut store = self.store(spec, call);
        let result = pre.instantiate(&mut store).and_then(|h| {
            h.wasmvisor_plugin_check()
                .call_check(&mut store, context, &spec.settings)
        });
        Self::after_call(spec, &store);
        let health = result.map_err(|e| Self::classify(spec, &store, e))?;
        let (Health::Healthy(t) | Health::Unhealthy(t) | Health::Pending(t)) = &health;
        if t.len() > MAX_TEXT {
            return Err(PluginError {
                plugin: spec.name.clone(),
                world: spec.world,
                kind: ErrorKind::Answer(format!("a health text of {} bytes", t.len())),
            });
        }
        Ok(match health {
            Health::Healthy(t) => Health::Healthy(plain(t)),
            Health::Unhealthy(t) => Health::Unhealthy(plain(t)),
            Health::Pending(t) => Health::Pending(plain(t)),
        })
    }
}

/// A plugin's text with its control characters escaped.
fn plain(text: String) -> String {
    crate::output::escape_controls(&text).into_owned()
}

/// Checks that a component exports this world's interface at the version this host implements,
/// and names what it is otherwise.
fn check_world(engine: &Engine, component: &Component, world: World) -> Result<(), String> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let want = format!("{}@{INTERFACE_VERSION}", world.export());
    if exports.contains(&want) {
        return Ok(());
    }
    for e in &exports {
        let (iface, version) = e.split_once('@').unwrap_or((e, "?"));
        if iface == world.export() {
            return Err(format!(
                "it implements {iface} version {version}; this wasmvisor implements version {INTERFACE_VERSION}: rebuild it against wit/plugin-0.1"
            ));
        }
        if let Some(other) = World::ALL.into_iter().find(|w| w.export() == iface) {
            return Err(format!(
                "it is a {other} plugin (exports {e}), configured as a {world}"
            ));
        }
    }
    Err(format!(
        "it exports no wasmvisor plugin interface (expected {want}; found {})",
        if exports.is_empty() {
            "nothing".into()
        } else {
            exports.join(", ")
        }
    ))
}

/// Bounds every part of a resolver's answer.
fn validate_decision(decision: &Decision) -> Result<(), String> {
    match decision {
        Decision::UseStaged => Ok(()),
        Decision::Refuse(reason) if reason.len() > MAX_TEXT => Err(format!(
            "a refusal reason of {} bytes (the limit is {MAX_TEXT})",
            reason.len()
        )),
        Decision::Refuse(_) => Ok(()),
        Decision::Fetch(list) => {
            if list.is_empty() {
                return Err("fetch with no artifact".into());
            }
            if list.len() > MAX_ARTIFACTS {
                return Err(format!(
                    "{} artifacts (the limit is {MAX_ARTIFACTS})",
                    list.len()
                ));
            }
            for a in list {
                if a.url.is_empty() || a.url.len() > MAX_URL {
                    return Err(format!("an artifact URL of {} bytes", a.url.len()));
                }
                if let Some(c) = &a.checksum {
                    let want = match c.algorithm {
                        HashAlgorithm::Sha256 => 64,
                        HashAlgorithm::Sha512 => 128,
                    };
                    if c.hex.len() != want || !c.hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(format!("checksum {:?} is not {want} hex digits", c.hex));
                    }
                }
            }
            Ok(())
        }
    }
}

impl From<&crate::plan::Plan> for Plan {
    fn from(plan: &crate::plan::Plan) -> Plan {
        Plan {
            name: plan.name.clone(),
            height: plan.height,
            info: plan.info.clone(),
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

/// The compile cache's folder name under a cosmovisor root.
pub const CACHE_DIR: &str = ".wasmvisor-cache";

/// The cache folder for compiled plugins under a cosmovisor root.
pub fn cache_dir(root: &Path) -> PathBuf {
    root.join(CACHE_DIR)
}
