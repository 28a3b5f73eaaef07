//! The notices, delivered to the `[[notifier]]` plugins. A notifier can never delay or block an
//! upgrade: the observer's sink only puts the notice in each notifier's bounded queue (the
//! oldest dropped and counted when it is full), and a task per notifier takes them out in order
//! and calls it off the runtime, every call bounded by its `timeout` — one that hangs delays
//! only its own notices. A failure is logged and
//! counted (`wasmvisor_notifications_failed_total{notifier}`), never retried: a notice that
//! arrives late is worse than one that says it failed. At the end the queue gets a short grace
//! ([`STOP_GRACE`]) to drain, then the call in flight is cut.
//!
//! Each notice names the chain (the node's `node_info.network`, asked once it answers),
//! `DAEMON_NAME` and the host, so one channel can serve a fleet.

mod wit;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cancel::Cancel;
use crate::config::Endpoint;
use crate::observe::{Notice, Observer};
use crate::plugin::{Call, PluginSet};

/// How many notices wait at most: an upgrade tells about twenty.
pub const CAPACITY: usize = 256;
/// How long the end of supervision waits for the notices still queued.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

pub use wit::{Context, Identity, KINDS, sample, to_wit};

/// The running queues: one per notifier, so one that hangs delays only itself.
pub struct Notifiers {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    lanes: Vec<Lane>,
    closing: AtomicBool,
    /// Cuts the calls in flight once the grace is over.
    cancel: Cancel,
}

/// One notifier's queue.
struct Lane {
    queue: Mutex<VecDeque<(Notice, u64)>>,
    wake: Notify,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
        }
    }

    /// Queues a notice; true when the queue was full and its oldest was dropped for it.
    fn push(&self, notice: Notice, at: u64) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let full = q.len() >= CAPACITY;
        if full {
            q.pop_front();
        }
        q.push_back((notice, at));
        drop(q);
        self.wake.notify_one();
        full
    }
}

/// Starts delivering to `set`'s notifiers what `observer` is told (nothing without any).
pub fn start(
    set: &Arc<PluginSet>,
    observer: &Observer,
    daemon: &str,
    rpc: &Endpoint,
) -> Option<Notifiers> {
    if set.notifiers.is_empty() {
        return None;
    }
    observer.notifiers(set.notifiers.iter().map(|n| n.spec.name.as_str()));
    let lanes = set.notifiers.iter().map(|_| Lane::new()).collect();
    let shared = Arc::new(Shared {
        lanes,
        closing: AtomicBool::new(false),
        cancel: Cancel::new(),
    });
    let (queued, dropped, plugins) = (shared.clone(), observer.clone(), set.clone());
    observer.set_notice_sink(Box::new(move |notice, at| {
        for (lane, notifier) in queued.lanes.iter().zip(&plugins.notifiers) {
            if lane.push(notice.clone(), at) {
                dropped.notification_dropped(&notifier.spec.name);
            }
        }
    }));
    let tasks = (0..set.notifiers.len())
        .map(|n| {
            let context = Context::new(daemon, rpc);
            tokio::spawn(deliver(
                set.clone(),
                n,
                shared.clone(),
                observer.clone(),
                context,
            ))
        })
        .collect();
    Some(Notifiers { shared, tasks })
}

/// Takes notifier `n`'s notices out in order and tells it each, until closed and drained.
async fn deliver(
    set: Arc<PluginSet>,
    n: usize,
    shared: Arc<Shared>,
    observer: Observer,
    mut context: Context,
) {
    let lane = &shared.lanes[n];
    let name = set.notifiers[n].spec.name.clone();
    loop {
        let next = lane
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        let Some((notice, at)) = next else {
            if shared.closing.load(Ordering::SeqCst) {
                return;
            }
            lane.wake.notified().await;
            continue;
        };
        let told = to_wit(&notice, at, &context.identity().await);
        let (s, cancel) = (set.clone(), shared.cancel.clone());
        let result = crate::plugin::off_runtime(move || {
            s.host.notify(&s.notifiers[n], &told, &Call::new(&cancel))
        })
        .await;
        let error = match result {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("notifier {name}: {e}"),
        };
        observer.notification_failed(&name);
        tracing::warn!("notice {} not delivered: {error}", notice.kind());
    }
}

impl Notifiers {
    /// Supervision is over: the queues drain for at most [`STOP_GRACE`], then the calls in
    /// flight are cut and what is left is said.
    pub async fn stop(self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        for lane in &self.shared.lanes {
            lane.wake.notify_one();
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        let mut late = Vec::new();
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                late.push(task);
            }
        }
        if late.is_empty() {
            return;
        }
        self.shared.cancel.cancel();
        let left: usize = self
            .shared
            .lanes
            .iter()
            .map(|l| l.queue.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum();
        tracing::warn!(
            "the notifiers did not finish within {}: the calls in flight are cut, {left} notice(s) not delivered",
            crate::duration::format(STOP_GRACE)
        );
        for mut task in late {
            let _ = tokio::time::timeout(Duration::from_millis(500), &mut task).await;
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_its_oldest_notice_and_says_so() {
        let lane = Lane::new();
        for at in 0..CAPACITY as u64 {
            assert!(!lane.push(Notice::Stopping, at));
        }
        assert!(
            lane.push(Notice::Stopping, 9999),
            "the one past the capacity drops one"
        );
        let q = lane.queue.lock().unwrap();
        assert_eq!(q.len(), CAPACITY);
        assert_eq!(q.front().map(|(_, at)| *at), Some(1), "the oldest went");
        assert_eq!(q.back().map(|(_, at)| *at), Some(9999));
    }
}
