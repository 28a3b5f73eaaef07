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
/// The most characters a `STATUS=` line has: `systemctl status` shows it on one line.
const STATUS_CHARS: usize = 400;

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
        if self.enabled {
            self.send(&[NotifyState::Status(&status_line(text))]);
        }
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

/// `text` as a `STATUS=` line: one line (control characters become spaces), at most
/// `STATUS_CHARS` characters, with `…` when it was cut.
pub fn status_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len().min(STATUS_CHARS * 4));
    for (i, c) in text.chars().enumerate() {
        if i == STATUS_CHARS {
            line.push('…');
            break;
        }
        line.push(if c.is_control() { ' ' } else { c });
    }
    line
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
