//! The systemd notify protocol (`Type=notify`), when `NOTIFY_SOCKET` is set: `READY=1` once the
//! node is launched, `STATUS=` with what the supervisor does, `STOPPING=1` on a stop request,
//! `EXTEND_TIMEOUT_USEC=` during long phases (a backup, a download, a rollback: systemd must not
//! kill an upgrade started before `READY`), and `WATCHDOG=1` at half of `WATCHDOG_USEC` when the
//! unit sets `WatchdogSec=` — sent from the supervisor's runtime, so a stuck supervisor misses it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;

use super::Observer;

/// How long each extension asks for, and how often it is renewed.
const EXTEND: Duration = Duration::from_secs(30);
const RENEW: Duration = Duration::from_secs(10);

/// The phases that may take long (a download of a few hundred MiB, a backup, a restore).
pub fn is_long(phase: &str) -> bool {
    // A `not-before` wait ("wait until …") may begin before READY (a restart during it).
    phase.starts_with("wait")
        || matches!(
            phase,
            "stop"
                | "delay"
                | "backup"
                | "custom-preupgrade"
                | "resolve"
                | "fetch"
                | "app-preupgrade"
        )
}

pub struct Notify {
    enabled: bool,
    watchdog: Option<Duration>,
    ready: AtomicBool,
    long: AtomicBool,
}

impl Notify {
    pub fn from_env() -> Notify {
        Notify {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty()),
            watchdog: sd_notify::watchdog_enabled(),
            ready: AtomicBool::new(false),
            long: AtomicBool::new(false),
        }
    }

    fn send(&self, states: &[NotifyState]) {
        if self.enabled
            && let Err(e) = sd_notify::notify(states)
        {
            tracing::debug!("cannot notify systemd: {e}");
        }
    }

    pub fn ready(&self) {
        if !self.ready.swap(true, Ordering::SeqCst) {
            self.send(&[NotifyState::Ready]);
        }
    }

    pub fn status(&self, text: &str) {
        // One line: a status is shown by `systemctl status`.
        let line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.send(&[NotifyState::Status(&line)]);
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// A long phase begins (`true`) or ends: extensions are sent while one runs.
    pub fn long_phase(&self, long: bool) {
        let was = self.long.swap(long, Ordering::SeqCst);
        if long && !was {
            self.extend();
        }
    }

    fn extend(&self) {
        self.send(&[NotifyState::ExtendTimeoutUsec(EXTEND.as_micros() as u32)]);
    }
}

/// The watchdog and the timeout extensions, on a timer, while the supervisor's loop is alive.
pub async fn keepalive(observer: Observer) {
    let n = &observer.0.notify;
    if !n.enabled {
        return;
    }
    let tick = n
        .watchdog
        .map_or(RENEW, |w| (w / 2).min(RENEW))
        .max(Duration::from_millis(10));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if !observer.alive() {
            return;
        }
        if n.watchdog.is_some() {
            n.send(&[NotifyState::Watchdog]);
        }
        if n.long.load(Ordering::SeqCst) {
            n.extend();
        }
    }
}
