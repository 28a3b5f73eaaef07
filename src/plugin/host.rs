//! The host: one wasmtime `Engine`, one linker with the host interfaces, a compile cache, and
//! whom it tells of calls and failed compilations — all given when it is built (`HostConfig`),
//! none of it process-wide, so every run (and every test) has a host of its own. A component is compiled once and cached on disk, keyed by the engine's
//! compatibility hash and the wasm's sha256; what is kept in memory is an `InstancePre` of the
//! world's bindings, instantiated into a fresh store by every call (`call.rs`).

use std::borrow::Cow;
use std::hash::{Hash, Hasher as _};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::bindings::{bundled, v0_1, v0_2};
use super::store::CallState;
use super::ticker::Ticker;
use super::{ErrorKind, Origin, PluginError, PluginSpec, World, inspect};

/// Wasm stack per call: enough for real plugins, small enough that runaway recursion traps fast.
const WASM_STACK: usize = 512 * 1024;

/// What loading a plugin of a world produces: that world's pre-instantiated bindings, in the
/// contract version the component implements.
pub trait WorldPre: Sized + Send + Sync + 'static {
    const WORLD: World;
    fn new(pre: InstancePre<CallState>, version: &str) -> wasmtime::Result<Self>;
}

macro_rules! world_pre {
    ($name:ident, $world:ident, $module:ident, $pre:ident) => {
        /// A loaded component of this world, in its contract version.
        pub enum $name {
            V0_1(v0_1::$module::$pre<CallState>),
            V0_2(v0_2::$module::$pre<CallState>),
        }

        impl WorldPre for $name {
            const WORLD: World = World::$world;
            fn new(pre: InstancePre<CallState>, version: &str) -> wasmtime::Result<Self> {
                Ok(match version {
                    "0.1.0" => $name::V0_1(v0_1::$module::$pre::new(pre)?),
                    _ => $name::V0_2(v0_2::$module::$pre::new(pre)?),
                })
            }
        }
    };
}

world_pre!(ResolverPre, Resolver, resolver, ResolverPre);
world_pre!(SourcePre, Source, source, SourcePre);
world_pre!(HealthPre, Health, health, HealthPre);

/// A loaded notifier: the world exists from 0.2.1 on, so there is one version of it.
pub struct NotifierPre(pub(super) v0_2::notifier::NotifierPre<CallState>);

impl WorldPre for NotifierPre {
    const WORLD: World = World::Notifier;
    fn new(pre: InstancePre<CallState>, _version: &str) -> wasmtime::Result<Self> {
        Ok(NotifierPre(v0_2::notifier::NotifierPre::new(pre)?))
    }
}

/// A loaded plugin of one world: its spec, its digest and contract version (known once the
/// file is read), and its compiled code (ready now, or once its compilation ends).
pub struct Loaded<P> {
    pub spec: PluginSpec,
    /// sha256 of the .wasm.
    pub digest: String,
    /// The contract version it implements (`0.1.0`, `0.2.0`).
    pub version: &'static str,
    compiled: Arc<Slot<P>>,
}

/// Where a compilation leaves its result (once), and waiters wait for it.
struct Slot<P> {
    result: OnceLock<Result<Compiled<P>, PluginError>>,
    lock: Mutex<()>,
    ready: Condvar,
}

impl<P> Slot<P> {
    fn new() -> Slot<P> {
        Slot {
            result: OnceLock::new(),
            lock: Mutex::new(()),
            ready: Condvar::new(),
        }
    }

    fn fill(&self, result: Result<Compiled<P>, PluginError>) {
        let _ = self.result.set(result);
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.ready.notify_all();
    }

    fn wait(&self) -> &Result<Compiled<P>, PluginError> {
        if let Some(r) = self.result.get() {
            return r;
        }
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(r) = self.result.get() {
                return r;
            }
            guard = self
                .ready
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct Compiled<P> {
    pre: P,
    cached: bool,
}

impl<P> Loaded<P> {
    /// The compiled code, waiting for its compilation if it still runs.
    pub(super) fn pre(&self) -> Result<&P, PluginError> {
        match self.compiled.wait() {
            Ok(c) => Ok(&c.pre),
            Err(e) => Err(e.clone()),
        }
    }

    /// Whether its compiled code came from the cache (waits for the compilation), or why it
    /// could not be compiled.
    pub fn cached(&self) -> Result<bool, PluginError> {
        match self.compiled.wait() {
            Ok(c) => Ok(c.cached),
            Err(e) => Err(e.clone()),
        }
    }
}

/// A checked plugin whose compilation is still to run (`Host::compile_unit`).
pub struct Unit<P> {
    spec: PluginSpec,
    bytes: Cow<'static, [u8]>,
    digest: String,
    version: &'static str,
    slot: Arc<Slot<P>>,
}

impl<P> Unit<P> {
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

impl<P> Drop for Unit<P> {
    /// A compilation that never ran (its thread could not start, or it panicked) still ends:
    /// whoever waits for it gets an error, not a wait without end.
    fn drop(&mut self) {
        if self.slot.result.get().is_none() {
            self.slot.fill(Err(PluginError::new(
                &self.spec,
                ErrorKind::Load("its compilation ended without a result".into()),
            )));
        }
    }
}

pub type Resolver = Loaded<ResolverPre>;
pub type Source = Loaded<SourcePre>;
pub type HealthCheck = Loaded<HealthPre>;
pub type Notifier = Loaded<NotifierPre>;

/// Told of every call: the plugin, its world, how it ended and how long it took.
pub type CallHook = Box<dyn Fn(&str, World, &'static str, Duration) + Send + Sync>;

/// Told of every plugin whose compilation failed.
pub type CompileHook = Box<dyn Fn(&PluginError) + Send + Sync>;

/// What a host is built with.
#[derive(Default)]
pub struct HostConfig {
    /// The folder for compiled plugins (none: compile in memory).
    pub cache: Option<Dir>,
    /// Told of every call (the supervisor's metrics).
    pub on_call: Option<CallHook>,
    /// Told of every failed compilation (the supervisor's metrics).
    pub on_compile_failure: Option<CompileHook>,
}

/// Why a host could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot create the wasm engine: {0}")]
    Engine(#[source] wasmtime::Error),
    #[error("cannot link the host interfaces: {0}")]
    Link(#[source] wasmtime::Error),
    #[error("cannot start the epoch thread: {0}")]
    Ticker(#[source] std::io::Error),
}

/// The host: one engine, one linker, a compile cache, its hooks.
pub struct Host {
    pub(super) engine: Engine,
    linker: Linker<CallState>,
    cache: Option<Dir>,
    pub(super) ticker: Arc<Ticker>,
    pub(super) on_call: Option<CallHook>,
    pub(super) on_compile_failure: Option<CompileHook>,
    compiled: super::cache::Compiled,
}

/// The largest component file read (a JavaScript or Python component is tens of MiB).
const MAX_COMPONENT: u64 = 256 << 20;

impl Host {
    /// Creates the engine and links the host interfaces.
    pub fn new(config: HostConfig) -> Result<Host, HostError> {
        let mut engine_config = wasmtime::Config::new();
        engine_config
            .epoch_interruption(true)
            .max_wasm_stack(WASM_STACK)
            .wasm_component_model(true);
        let engine = Engine::new(&engine_config).map_err(HostError::Engine)?;
        let mut linker = Linker::new(&engine);
        let link = |r: wasmtime::Result<()>| r.map_err(HostError::Link);
        link(wasmtime_wasi::p2::add_to_linker_sync(&mut linker))?;
        link(wasmtime_wasi_http::p2::add_only_http_to_linker_sync(
            &mut linker,
        ))?;
        link(v0_1::host::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |s| s,
        ))?;
        link(v0_1::http::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |s| s,
        ))?;
        link(v0_1::sink::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |s| s,
        ))?;
        link(v0_2::host::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |s| s,
        ))?;
        link(v0_2::http::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |s| s,
        ))?;
        link(v0_2::sink::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |s| s,
        ))?;
        let ticker = Ticker::start(engine.clone()).map_err(HostError::Ticker)?;
        Ok(Host {
            engine,
            linker,
            cache: config.cache,
            ticker,
            on_call: config.on_call,
            on_compile_failure: config.on_compile_failure,
            compiled: super::cache::Compiled::default(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The time this host spent compiling plugins (loading them from the cache is not counted).
    pub fn compiling(&self) -> Duration {
        self.compiled.compiling()
    }

    /// Reads, verifies, compiles (or loads from the cache) and pre-instantiates a plugin of the
    /// world `P` belongs to.
    pub fn load<P: WorldPre>(&self, spec: &PluginSpec) -> Result<Loaded<P>, PluginError> {
        let (loaded, unit) = self.prepare::<P>(spec)?;
        self.compile_unit(unit)?;
        Ok(loaded)
    }

    /// Reads a plugin and checks all that can be checked before compiling it: its pin, the
    /// world and contract version it exports, the imports it needs. Returns it with its
    /// compilation still to run (`compile_unit`), which its first call waits for.
    pub fn prepare<P: WorldPre>(
        &self,
        spec: &PluginSpec,
    ) -> Result<(Loaded<P>, Unit<P>), PluginError> {
        let fail = |kind| PluginError::new(spec, kind);
        let bytes: Cow<'static, [u8]> = match &spec.origin {
            Origin::Bundled(name) => {
                Cow::Borrowed(bundled(name).map(|(_, b)| b).ok_or_else(|| {
                    fail(ErrorKind::Load(format!("no bundled plugin named {name}")))
                })?)
            }
            Origin::File(path) => Cow::Owned(
                crate::fs::read_regular_path(path, MAX_COMPONENT).map_err(|e| {
                    fail(ErrorKind::Load(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )))
                })?,
            ),
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        if let Some(expected) = &spec.sha256
            && *expected != digest
        {
            return Err(fail(ErrorKind::Pin {
                expected: expected.clone(),
                actual: digest,
            }));
        }
        let version = inspect::read(&bytes)
            .and_then(|found| inspect::check(&found, P::WORLD))
            .map_err(|e| fail(ErrorKind::Load(e.to_string())))?;
        let slot = Arc::new(Slot::new());
        let loaded = Loaded {
            spec: spec.clone(),
            digest: digest.clone(),
            version,
            compiled: slot.clone(),
        };
        let unit = Unit {
            spec: spec.clone(),
            bytes,
            digest,
            version,
            slot,
        };
        Ok((loaded, unit))
    }

    /// Compiles (or loads from the cache) and pre-instantiates a checked plugin, and hands the
    /// result to whoever waits for it. Compiled code is cached only once it linked.
    pub fn compile_unit<P: WorldPre>(&self, unit: Unit<P>) -> Result<bool, PluginError> {
        let spec = &unit.spec;
        let fail = |kind| PluginError::new(spec, kind);
        let result = (|| {
            let got = self
                .compiled
                .get(
                    &self.engine,
                    self.cache.as_ref(),
                    (&unit.bytes, &unit.digest, &spec.name),
                    &self.compat_key(),
                )
                .map_err(|e| fail(ErrorKind::Load(e)))?;
            let (component, cached) = (got.component, got.cached);
            let pre = self.linker.instantiate_pre(&component).map_err(|e| {
                fail(ErrorKind::Load(format!(
                    "it needs an import wasmvisor does not provide: {e:#}"
                )))
            })?;
            let pre =
                P::new(pre, unit.version).map_err(|e| fail(ErrorKind::Load(format!("{e:#}"))))?;
            if let (Some(dir), Some((file, compiled))) = (&self.cache, got.fresh) {
                super::cache::store(dir, &file, &compiled);
            }
            Ok(Compiled { pre, cached })
        })();
        let outcome = result.as_ref().map(|c| c.cached).map_err(Clone::clone);
        unit.slot.fill(result);
        outcome
    }

    /// A short key of everything that makes compiled code loadable by this engine.
    pub fn compat_key(&self) -> String {
        let mut h = std::hash::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

#[cfg(test)]
mod tests;
