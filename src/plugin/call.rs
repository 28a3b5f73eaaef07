//! Calling a plugin: one routine instantiates the pre-instantiated component into a fresh store
//! with the call's limits, runs it, and turns what went wrong into a `PluginError` (quoting what
//! the plugin wrote); one thin function per world passes the arguments in the plugin's contract
//! version and bounds the answer.

use wasmtime::Store;
use wasmtime::component::Resource;

use super::bindings::v0_2::notifier::exports::wasmvisor::plugin::notify::Notice;
use super::bindings::{Decision, FetchError, HashAlgorithm, Health, HealthContext, Request};
use super::compat;
use super::host::{HealthPre, Loaded, NotifierPre, ResolverPre, SourcePre};
use super::sink::{Output, Sink};
use super::store::{self, CallState};
use super::{Artifact, Call, ErrorKind, Host, PluginError};

/// Limits on what a plugin may answer.
pub const MAX_TEXT: usize = 4096;
pub const MAX_ARTIFACTS: usize = 32;
pub const MAX_URL: usize = 8192;
/// The latest time a `not-before` may name: 9999-12-31T23:59:59Z.
pub const MAX_NOT_BEFORE: u64 = 253_402_300_799;
/// How far ahead of now a `not-before` may name: a year and a day. While a deferral holds, the
/// node stays halted at the upgrade height and nobody is asked again until the time, so a
/// deferral to a wrong year or in a wrong unit (milliseconds) is a silent outage that looks like
/// a plan. A maintenance window or a change freeze is hours to weeks; what is meant to hold an
/// upgrade for good is a `refuse`. Past this the answer is refused, naming the plugin, so the
/// operator sees at once what to fix (a host clock far behind would be refused too — and should be
/// seen).
pub const MAX_DEFERRAL: u64 = 366 * 24 * 60 * 60;

impl Host {
    /// Runs `body` against a fresh instance's store, under the call's deadline and stop request.
    fn run<P, T>(
        &self,
        plugin: &Loaded<P>,
        call: &Call,
        body: impl FnOnce(&mut Store<CallState>, &P) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        let spec = &plugin.spec;
        let pre = plugin.pre()?;
        let started = std::time::Instant::now();
        let _tick = self.ticker.enter();
        let mut store = store::store(&self.engine, spec, call);
        let result = body(&mut store, pre);
        let output = store::after_call(spec, &store);
        let result = result.map_err(|e| {
            let mut error = store::classify(spec, &store, e);
            if let (ErrorKind::Trap(why), Some(out)) = (&mut error.kind, &output)
                && let Some(hint) = super::hint::for_trap(spec.world, out)
            {
                why.push_str("; ");
                why.push_str(&hint);
            }
            PluginError { output, ..error }
        });
        if let Some(hook) = &self.on_call {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.kind.label(),
            };
            hook(&spec.name, spec.world, outcome, started.elapsed());
        }
        result
    }

    /// Asks a resolver.
    pub fn resolve(
        &self,
        plugin: &Loaded<ResolverPre>,
        request: &Request,
        previous: Option<&Decision>,
        call: &Call,
    ) -> Result<Decision, PluginError> {
        let settings = &plugin.spec.settings;
        let decision = self.run(plugin, call, |store, pre| match pre {
            ResolverPre::V0_1(pre) => pre
                .instantiate(&mut *store)?
                .wasmvisor_plugin_resolve()
                .call_resolve(
                    store,
                    &compat::request(request),
                    previous.map(compat::previous).as_ref(),
                    settings,
                )
                .map(compat::decision),
            ResolverPre::V0_2(pre) => pre
                .instantiate(&mut *store)?
                .wasmvisor_plugin_resolve()
                .call_resolve(store, request, previous, settings),
        })?;
        validate_decision(&decision, crate::clock::unix_secs()).map_err(|m| answer(plugin, m))?;
        // A reason is shown to the operator: it cannot add lines or drive a terminal.
        Ok(match decision {
            Decision::Refuse(reason) => Decision::Refuse(plain(reason)),
            Decision::Unresolved(reason) => Decision::Unresolved(plain(reason)),
            Decision::NotBefore(d) => Decision::NotBefore(super::Deferral {
                at: d.at,
                reason: plain(d.reason),
            }),
            other => other,
        })
    }

    /// Asks a source to write an artifact into `sink`, which comes back (unless the store could
    /// not hold it) whatever the outcome.
    pub fn fetch<S: Sink>(
        &self,
        plugin: &Loaded<SourcePre>,
        artifact: &Artifact,
        sink: S,
        call: &Call,
    ) -> (Option<S>, Result<Result<(), FetchError>, PluginError>) {
        let settings = &plugin.spec.settings;
        let mut back = None;
        let result = self.run(plugin, call, |store, pre| {
            let handle = store.data_mut().table.push(Output::new(sink))?;
            let borrowed = Resource::<Output>::new_borrow(handle.rep());
            let result = match pre {
                SourcePre::V0_1(pre) => pre.instantiate(&mut *store).and_then(|s| {
                    s.wasmvisor_plugin_fetch()
                        .call_fetch(&mut *store, &compat::artifact(artifact), settings, borrowed)
                        .map(|r| r.map_err(compat::fetch_error))
                }),
                SourcePre::V0_2(pre) => pre.instantiate(&mut *store).and_then(|s| {
                    s.wasmvisor_plugin_fetch()
                        .call_fetch(&mut *store, artifact, settings, borrowed)
                }),
            };
            back = store
                .data_mut()
                .table
                .delete(handle)
                .ok()
                .and_then(Output::into_inner);
            result
        });
        let result = result.and_then(|r| match r {
            Err(FetchError::Retryable(m) | FetchError::Failed(m)) if m.len() > MAX_TEXT => Err(
                answer(plugin, format!("an error message of {} bytes", m.len())),
            ),
            Err(FetchError::Retryable(m)) => Ok(Err(FetchError::Retryable(plain(m)))),
            Err(FetchError::Failed(m)) => Ok(Err(FetchError::Failed(plain(m)))),
            other => Ok(other),
        });
        (back, result)
    }

    /// Asks a health check once.
    pub fn check(
        &self,
        plugin: &Loaded<HealthPre>,
        context: &HealthContext,
        call: &Call,
    ) -> Result<Health, PluginError> {
        let settings = &plugin.spec.settings;
        let health = self.run(plugin, call, |store, pre| match pre {
            HealthPre::V0_1(pre) => pre
                .instantiate(&mut *store)?
                .wasmvisor_plugin_check()
                .call_check(store, &compat::health_context(context), settings)
                .map(compat::health),
            HealthPre::V0_2(pre) => pre
                .instantiate(&mut *store)?
                .wasmvisor_plugin_check()
                .call_check(store, context, settings),
        })?;
        let (Health::Healthy(t) | Health::Unhealthy(t) | Health::Pending(t)) = &health;
        if t.len() > MAX_TEXT {
            return Err(answer(
                plugin,
                format!("a health text of {} bytes", t.len()),
            ));
        }
        Ok(match health {
            Health::Healthy(t) => Health::Healthy(plain(t)),
            Health::Unhealthy(t) => Health::Unhealthy(plain(t)),
            Health::Pending(t) => Health::Pending(plain(t)),
        })
    }
}

impl Host {
    /// Tells a notifier one notice.
    pub fn notify(
        &self,
        plugin: &Loaded<NotifierPre>,
        notice: &Notice,
        call: &Call,
    ) -> Result<(), PluginError> {
        let settings = &plugin.spec.settings;
        let told = self.run(plugin, call, |store, pre| {
            pre.0
                .instantiate(&mut *store)?
                .wasmvisor_plugin_notify()
                .call_notify(store, notice, settings)
        })?;
        told.map_err(|why| {
            let why = if why.len() > MAX_TEXT {
                format!("{}…", &why[..why.floor_char_boundary(MAX_TEXT)])
            } else {
                why
            };
            PluginError::new(&plugin.spec, ErrorKind::Undelivered(plain(why)))
        })
    }
}

/// An answer the host cannot use.
fn answer<P>(plugin: &Loaded<P>, what: String) -> PluginError {
    PluginError::new(&plugin.spec, ErrorKind::Answer(what))
}

/// A plugin's text with its control characters escaped.
fn plain(text: String) -> String {
    crate::output::escape_controls(&text).into_owned()
}

/// Bounds every part of a resolver's answer, given at `now` (Unix seconds). The reason is text:
/// it becomes the answer error the operator is shown (`ErrorKind::Answer`), naming the part.
fn validate_decision(decision: &Decision, now: u64) -> Result<(), String> {
    match decision {
        Decision::UseStaged => Ok(()),
        Decision::Refuse(reason) | Decision::Unresolved(reason) if reason.len() > MAX_TEXT => {
            Err(format!(
                "a reason of {} bytes (the limit is {MAX_TEXT})",
                reason.len()
            ))
        }
        Decision::Refuse(_) | Decision::Unresolved(_) => Ok(()),
        Decision::NotBefore(d) if d.reason.len() > MAX_TEXT => Err(format!(
            "a deferral reason of {} bytes (the limit is {MAX_TEXT})",
            d.reason.len()
        )),
        // Beyond the year 9999 a time is a bug, not a window.
        Decision::NotBefore(d) if d.at > MAX_NOT_BEFORE => Err(format!(
            "a deferral to {} seconds after 1970, past the year 9999",
            d.at
        )),
        Decision::NotBefore(d) if d.at > now.saturating_add(MAX_DEFERRAL) => Err(format!(
            "a deferral to {}, more than a year ahead (it is {}): the node would stay halted until then; fix the plugin or its settings (a wrong year, milliseconds for seconds?), or have it refuse the upgrade",
            crate::logging::rfc3339(d.at),
            crate::logging::rfc3339(now)
        )),
        Decision::NotBefore(_) => Ok(()),
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

#[cfg(test)]
mod fuzz;
