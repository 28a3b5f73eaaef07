//! The crash tests' hook: `WASMVISOR_TEST_KILL_AT=<point>` makes wasmvisor SIGKILL itself at
//! that point. The journal names its points (each phase, `<phase>:end`, `commit`, the rollback's
//! steps); a restore names its own (`restore:aside`, `restore:swapped`). A leaf of its own so
//! that the disk code and the upgrade's journal share it without depending on each other.
//!
//! Only in builds with the `test-hooks` feature (the tests' own): elsewhere no point is ever
//! named, the variable is not read, and neither its name nor the kill is in the binary.

/// Test hook: `<phase>` kills the supervisor with SIGKILL right after that phase is journaled,
/// `<phase>:end` right after the phase's work is done. Used by the crash-convergence tests.
#[cfg(feature = "test-hooks")]
pub const KILL_HOOK_ENV: &str = "WASMVISOR_TEST_KILL_AT";

/// The point the hook kills at, read once (none when unset or empty).
#[cfg(feature = "test-hooks")]
pub fn kill_at() -> Option<String> {
    std::env::var(KILL_HOOK_ENV).ok().filter(|v| !v.is_empty())
}

/// Without the `test-hooks` feature, no point is ever named.
#[cfg(not(feature = "test-hooks"))]
pub fn kill_at() -> Option<String> {
    None
}

/// The test hook outside the journal's own points (inside a restore): kills the process when
/// `WASMVISOR_TEST_KILL_AT` names `point`.
pub fn kill_hook(point: &str) {
    if kill_at().is_some_and(|v| v == point) {
        die_at(point);
    }
}

/// Says why, then SIGKILLs the process: no destructor, no flush, as a power cut would.
#[cfg(feature = "test-hooks")]
pub fn die_at(point: &str) {
    crate::output::error(format!(
        "wasmvisor: {KILL_HOOK_ENV}={point}: killing myself"
    ));
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
}

/// Without the `test-hooks` feature there is nothing to kill for.
#[cfg(not(feature = "test-hooks"))]
pub fn die_at(_point: &str) {}
