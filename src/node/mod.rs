//! The supervised process: spawning it in its own process group (`reaper.rs`), one way to stop
//! it (`stop`: a signal, the grace, SIGKILL), the signals wasmvisor forwards and the stop request
//! they carry (`signals.rs`), its arguments (`args.rs`), its identity on disk (`record.rs`) and
//! its `/proc` readings (`proc.rs`).
//!
//! Not here: what the node tells of the chain — its RPC heights and identity, whose socket
//! answers on the RPC port, the current plan — is `chain`'s.

pub mod args;
mod proc;
mod reaper;
pub mod record;
pub mod signals;

use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::sync::oneshot;

pub use proc::{monotonic_ns, owned_by_us, start_time};
pub use reaper::{Reaper, adopt_orphans};

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The status a shell reports: the code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }

    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => match Signal::try_from(*s) {
                Ok(sig) => write!(f, "signal {}", sig.as_str()),
                Err(_) => write!(f, "signal {s}"),
            },
        }
    }
}

/// The node has exited: forget its record in `root` and stop whatever it left behind.
pub async fn gone(reaper: &Reaper, root: &cap_std::fs::Dir, grace: Duration) {
    record::clear(root);
    reaper.stop_strays(grace).await;
}

/// Something that can be signalled and waited for: a child of wasmvisor, or the process group of
/// a node a previous supervisor left behind.
pub trait Target {
    fn send(&mut self, sig: Signal);
    /// Waits up to `limit` for it to be gone; true once it is.
    fn gone_within(&mut self, limit: Duration) -> impl std::future::Future<Output = bool>;
    fn pid(&self) -> i32;
}

/// How every stop goes: `first` (SIGTERM, or the stop signal the operator sent; `None`: sent
/// already), up to `grace` for the target to finish, then SIGKILL and up to `kill_wait` more.
/// Returns whether it is gone.
pub async fn stop(
    target: &mut impl Target,
    first: Option<Signal>,
    grace: Duration,
    kill_wait: Duration,
) -> bool {
    if let Some(first) = first {
        target.send(first);
    }
    if target.gone_within(grace).await {
        return true;
    }
    tracing::warn!(
        pid = target.pid(),
        grace = %crate::duration::format(grace),
        "the node did not stop within the shutdown grace; sending SIGKILL (raise DAEMON_SHUTDOWN_GRACE if it needs longer)"
    );
    target.send(Signal::SIGKILL);
    target.gone_within(kill_wait).await
}

pub struct Child {
    pub pid: Pid,
    exit_rx: oneshot::Receiver<Exit>,
    exit: Option<Exit>,
    group: bool,
    /// SIGTERM was sent ahead of the stop (`ask_to_stop`): the stop waits without sending it
    /// again (a second SIGTERM is a hard stop to some nodes).
    asked: bool,
}

impl Child {
    /// Waits for the child to end. Cancel-safe: it can be a `select!` branch.
    pub async fn wait(&mut self) -> Exit {
        if let Some(exit) = self.exit {
            return exit;
        }
        let exit = (&mut self.exit_rx).await.unwrap_or(Exit::Code(-1));
        self.exit = Some(exit);
        exit
    }

    pub fn exited(&mut self) -> Option<Exit> {
        if self.exit.is_none() {
            self.exit = self.exit_rx.try_recv().ok();
        }
        self.exit
    }

    /// Sends `sig` to the child's process group (or the child alone when it has none).
    pub fn signal(&mut self, sig: Signal) {
        if self.exited().is_some() {
            return;
        }
        let result = if self.group {
            signal::killpg(self.pid, sig)
        } else {
            signal::kill(self.pid, sig)
        };
        if let Err(e) = result {
            tracing::debug!(pid = self.pid.as_raw(), signal = sig.as_str(), error = %e, "signal not delivered");
        }
    }

    /// Sends SIGTERM now, so that the node shuts down while the supervisor does what needs no
    /// stopped node; the `stop` that follows waits for it (its grace from then on).
    pub fn ask_to_stop(&mut self) {
        self.signal(Signal::SIGTERM);
        self.asked = true;
    }

    /// Stops the child ([`stop`], starting with `first`) and returns how it ended.
    pub async fn stop_with(&mut self, first: Signal, grace: Duration) -> Exit {
        if let Some(exit) = self.exited() {
            return exit;
        }
        let sent = std::mem::take(&mut self.asked) && first == Signal::SIGTERM;
        stop(self, (!sent).then_some(first), grace, Duration::MAX).await;
        self.wait().await
    }

    /// SIGTERM, up to `grace` for the child to finish, then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) -> Exit {
        self.stop_with(Signal::SIGTERM, grace).await
    }
}

impl Target for Child {
    fn send(&mut self, sig: Signal) {
        self.signal(sig);
    }

    async fn gone_within(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.wait()).await.is_ok()
    }

    fn pid(&self) -> i32 {
        self.pid.as_raw()
    }
}
