//! The wall clock as wasmvisor keeps it: time since the Unix epoch (zero for a clock set before
//! it). The one reading of `SystemTime` outside the tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time since the Unix epoch.
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch, as the journal and the backup manifests stamp them.
pub fn unix_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// Seconds since the Unix epoch, as the resolvers' deferrals name a time.
pub fn unix_secs() -> u64 {
    since_epoch().as_secs()
}
