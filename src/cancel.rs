//! Stopping work at once: a stop request reaches a running plugin call (its next epoch tick
//! traps it), an HTTP request blocked on a silent server (its connection is shut down), a
//! back-off between retries and a backup's copy (each checks it between chunks).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Inner {
    cancelled: bool,
    /// HTTP agents in use, shut down on cancel so their blocked reads return at once.
    agents: Vec<(u64, ureq::Agent)>,
    next_id: u64,
}

/// A cancellation token shared by everything one supervisor runs. Cloning shares it.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<(Mutex<Inner>, Condvar)>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels: every call checking the token stops, every registered connection is shut down.
    pub fn cancel(&self) {
        let agents = {
            let mut inner = self.lock();
            inner.cancelled = true;
            std::mem::take(&mut inner.agents)
        };
        for (_, agent) in agents {
            agent.shutdown();
        }
        self.inner.1.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        self.lock().cancelled
    }

    /// Registers an HTTP agent to shut down on cancel, until the returned guard is dropped.
    /// `None` (nothing registered) when the token is already cancelled.
    pub(crate) fn register(&self, agent: &ureq::Agent) -> Option<Registered> {
        let mut inner = self.lock();
        if inner.cancelled {
            return None;
        }
        inner.next_id += 1;
        let id = inner.next_id;
        inner.agents.push((id, agent.clone()));
        Some(Registered {
            cancel: self.clone(),
            id,
        })
    }

    /// Sleeps for `d`, or less if cancelled meanwhile. Returns false when cancelled.
    pub fn sleep(&self, d: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .inner
            .1
            .wait_timeout_while(guard, d, |inner| !inner.cancelled)
            .unwrap_or_else(|p| p.into_inner());
        !guard.cancelled
    }
}

/// Keeps an agent registered with a [`Cancel`] while a request uses it.
pub(crate) struct Registered {
    cancel: Cancel,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.cancel.lock().agents.retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_cancel_ends_a_sleep_at_once() {
        let cancel = Cancel::new();
        let registered = cancel.register(&ureq::Agent::new_with_defaults());
        assert_eq!(cancel.lock().agents.len(), 1);
        drop(registered);
        assert!(cancel.lock().agents.is_empty());
        let other = cancel.clone();
        let t = Instant::now();
        let waiter = std::thread::spawn(move || other.sleep(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        cancel.cancel();
        assert!(!waiter.join().unwrap());
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(cancel.is_cancelled());
        assert!(cancel.register(&ureq::Agent::new_with_defaults()).is_none());
    }
}
