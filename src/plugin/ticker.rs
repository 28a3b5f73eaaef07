//! The epoch ticker: advances the engine's epoch every `TICK` while at least one call runs, and
//! sleeps otherwise (an idle supervisor has no timer wake-ups). Each call's deadline and stop
//! request are checked at every tick.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch advances while calls run.
const TICK: Duration = Duration::from_millis(10);

pub(super) struct Ticker {
    active: Mutex<usize>,
    wake: Condvar,
}

impl Ticker {
    pub(super) fn start(engine: Engine) -> std::io::Result<Arc<Ticker>> {
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
            })?;
        Ok(ticker)
    }

    pub(super) fn enter(self: &Arc<Ticker>) -> TickGuard {
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.wake.notify_one();
        TickGuard(self.clone())
    }
}

pub(super) struct TickGuard(Arc<Ticker>);

impl Drop for TickGuard {
    fn drop(&mut self) {
        *self.0.active.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
    }
}
