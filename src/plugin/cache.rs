//! Compiled plugins: one compilation per component however many entries name it, kept in the
//! compile cache (`<compat>-<digest>.cwasm`), which is kept under [`MAX_CACHE`] by removing the
//! least recently used entries — every rebuild of a JavaScript or Python plugin leaves tens of
//! MiB behind otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use cap_std::fs::Dir;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The most the cache folder holds before its oldest entries go.
pub const MAX_CACHE: u64 = 512 << 20;
/// The largest compiled artifact read back from the cache.
const MAX_COMPILED: u64 = 1 << 30;

/// The components compiled (or loaded) by one host, by digest, and a gate per digest so that
/// the same component listed twice is compiled once.
#[derive(Default)]
pub struct Compiled {
    gates: Mutex<HashMap<String, Arc<Mutex<Option<Component>>>>>,
    /// Time spent compiling (not loading from the cache), for `plugin call`'s `compile_ms`.
    compiling: Mutex<Duration>,
}

/// How a component was obtained.
pub struct Got {
    pub component: Component,
    /// From the cache or this host's earlier compilation: nothing was compiled now.
    pub cached: bool,
    /// What to write to the cache once it proved linkable.
    pub fresh: Option<(String, Vec<u8>)>,
}

impl Compiled {
    /// The compiled component of `bytes` (`digest` its sha256, `name` the plugin's, for the log).
    pub fn get(
        &self,
        engine: &Engine,
        cache: Option<&Dir>,
        (bytes, digest, name): (&[u8], &str, &str),
        compat: &str,
    ) -> Result<Got, String> {
        let gate = self
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(digest.to_string())
            .or_default()
            .clone();
        let mut slot = gate.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(component) = slot.as_ref() {
            return Ok(Got {
                component: component.clone(),
                cached: true,
                fresh: None,
            });
        }
        let file = format!("{compat}-{}.cwasm", &digest[..32]);
        if let Some(dir) = cache
            && let Some(component) = load(engine, dir, &file)
        {
            *slot = Some(component.clone());
            return Ok(Got {
                component,
                cached: true,
                fresh: None,
            });
        }
        tracing::info!(
            plugin = name,
            bytes = bytes.len(),
            "compiling the plugin (it is not in the compile cache; a JavaScript or Python plugin takes seconds, once)"
        );
        let started = Instant::now();
        let compiled = engine
            .precompile_component(bytes)
            .map_err(|e| format!("not a valid component: {e:#}"))?;
        *self
            .compiling
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += started.elapsed();
        // SAFETY: these bytes were produced by this engine a moment ago.
        let component = unsafe { Component::deserialize(engine, &compiled) }
            .map_err(|e| format!("cannot load the compiled plugin: {e:#}"))?;
        *slot = Some(component.clone());
        Ok(Got {
            component,
            cached: false,
            fresh: cache.map(|_| (file, compiled)),
        })
    }

    /// The time this host spent compiling.
    pub fn compiling(&self) -> Duration {
        *self
            .compiling
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A cached artifact, if there is a usable one (its use makes it the newest).
fn load(engine: &Engine, dir: &Dir, file: &str) -> Option<Component> {
    match crate::fs::read_regular(dir, file, MAX_COMPILED, crate::fs::Follow::No) {
        // SAFETY: the cache folder is the operator's or wasmvisor's own (a link there is
        // refused) and holds only what this build wrote, per the compatibility key.
        Ok(Some(cached)) => match unsafe { Component::deserialize(engine, &cached) } {
            Ok(c) => {
                touch(dir, file);
                Some(c)
            }
            Err(e) => {
                tracing::warn!(file, "ignoring an unusable compiled plugin: {e:#}");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(file, "ignoring the cached compiled plugin: {e}");
            None
        }
    }
}

fn touch(dir: &Dir, file: &str) {
    if let Ok(f) = dir.open(file) {
        let now = cap_std::time::SystemTime::from_std(SystemTime::now());
        let _ = f.into_std().set_modified(now.into_std());
    }
}

/// Writes `compiled` as `file`, then removes the least recently used entries (never `file`)
/// while the folder holds more than [`MAX_CACHE`].
pub fn store(dir: &Dir, file: &str, compiled: &[u8]) {
    if let Err(e) = crate::fs::replace(dir, file, compiled) {
        tracing::warn!(file, "cannot cache the compiled plugin: {e}");
        return;
    }
    prune(dir, file, MAX_CACHE);
}

/// Removes the oldest `.cwasm` entries but `keep` until the folder holds at most `max` bytes.
pub fn prune(dir: &Dir, keep: &str, max: u64) -> (usize, u64) {
    let Ok(entries) = dir.entries() else {
        return (0, 0);
    };
    let mut files: Vec<(SystemTime, u64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let meta = e.metadata().ok()?;
            (name.ends_with(".cwasm") && meta.is_file()).then(|| {
                (
                    meta.modified()
                        .ok()
                        .map_or(SystemTime::UNIX_EPOCH, |m| m.into_std()),
                    meta.len(),
                    name,
                )
            })
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    let (mut removed, mut freed) = (0, 0);
    for (_, len, name) in files {
        if total <= max {
            break;
        }
        if name != keep && dir.remove_file(&name).is_ok() {
            total -= len;
            removed += 1;
            freed += len;
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            freed_mib = freed >> 20,
            "the plugin compile cache dropped its least recently used entries"
        );
    }
    (removed, freed)
}
