//! The host: one wasmtime `Engine` for the process, one linker with the host interfaces, and a
//! compile cache. A component is compiled once and cached on disk, keyed by the engine's
//! compatibility hash and the wasm's sha256; what is kept in memory is an `InstancePre` of the
//! world's bindings, instantiated into a fresh store by every call (`call.rs`).

use std::hash::{Hash, Hasher as _};
use std::sync::{Arc, OnceLock};

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

use super::bindings::bundled;
use super::bindings::health::HealthPre;
use super::bindings::resolver::ResolverPre;
use super::bindings::resolver::wasmvisor::plugin::{host as wit_host, http as wit_http};
use super::bindings::source::SourcePre;
use super::bindings::source::wasmvisor::plugin::sink as wit_sink;
use super::store::State;
use super::ticker::Ticker;
use super::{ErrorKind, INTERFACE_VERSION, Origin, PluginError, PluginSpec, World};

/// Wasm stack per call: enough for real plugins, small enough that runaway recursion traps fast.
const WASM_STACK: usize = 512 * 1024;

/// What loading a plugin of a world produces: that world's pre-instantiated bindings.
pub trait WorldPre: Sized + Send + Sync + 'static {
    const WORLD: World;
    fn new(pre: InstancePre<State>) -> wasmtime::Result<Self>;
}

impl WorldPre for ResolverPre<State> {
    const WORLD: World = World::Resolver;
    fn new(pre: InstancePre<State>) -> wasmtime::Result<Self> {
        ResolverPre::new(pre)
    }
}

impl WorldPre for SourcePre<State> {
    const WORLD: World = World::Source;
    fn new(pre: InstancePre<State>) -> wasmtime::Result<Self> {
        SourcePre::new(pre)
    }
}

impl WorldPre for HealthPre<State> {
    const WORLD: World = World::Health;
    fn new(pre: InstancePre<State>) -> wasmtime::Result<Self> {
        HealthPre::new(pre)
    }
}

/// A loaded plugin of one world: its spec and what is needed to instantiate it.
pub struct Loaded<P> {
    pub spec: PluginSpec,
    /// sha256 of the .wasm.
    pub digest: String,
    /// Whether the compiled code came from the cache.
    pub cached: bool,
    pub(super) pre: P,
}

pub type Resolver = Loaded<ResolverPre<State>>;
pub type Source = Loaded<SourcePre<State>>;
pub type HealthCheck = Loaded<HealthPre<State>>;

/// The host: one engine, one linker, a compile cache.
pub struct Host {
    pub(super) engine: Engine,
    linker: Linker<State>,
    cache: Option<Dir>,
    pub(super) ticker: Arc<Ticker>,
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
        link(wit_sink::add_to_linker::<State, HasSelf<State>>(
            &mut linker,
            |s| s,
        ))?;
        let ticker = Ticker::start(engine.clone())?;
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

    /// Reads, verifies, compiles (or loads from the cache) and pre-instantiates a plugin of the
    /// world `P` belongs to.
    pub fn load<P: WorldPre>(&self, spec: &PluginSpec) -> Result<Loaded<P>, PluginError> {
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
                owned = crate::fs::read_regular_path(path, MAX_COMPONENT).map_err(|e| {
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
        check_world(&self.engine, &component, P::WORLD).map_err(|e| fail(ErrorKind::Load(e)))?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            fail(ErrorKind::Load(format!(
                "it needs an import wasmvisor does not provide: {e:#}"
            )))
        })?;
        let pre = P::new(pre).map_err(|e| fail(ErrorKind::Load(format!("{e:#}"))))?;
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
        match crate::fs::read_regular(dir, &name, MAX_COMPILED, crate::fs::Follow::No) {
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
        if let Err(e) = crate::fs::replace(dir, &name, &compiled) {
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
