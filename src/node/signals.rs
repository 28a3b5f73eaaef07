//! The signals wasmvisor forwards to the node — TERM, INT and QUIT also meaning "stop
//! supervising" — and the one way to wait for anything while a stop request may come.

use std::io;

use nix::sys::signal::{self, Signal};
use tokio::signal::unix::{SignalKind, signal as unix_signal};
use tokio::sync::mpsc;

use crate::cancel::Cancel;

/// The signals received, and the stop request among them. Every wait that a stop request must
/// end at once goes through [`Signals::until_stop`].
pub struct Signals {
    rx: mpsc::UnboundedReceiver<Signal>,
    stop: Option<Signal>,
    /// Cancelled on a stop request: plugin calls, downloads and copies end with it.
    cancel: Cancel,
    /// Told of the stop request, once (the service manager hears of it).
    on_stop: Option<Box<dyn Fn() + Send>>,
}

impl Signals {
    /// Installs the handlers (inside the tokio runtime), then releases what was held back since
    /// wasmvisor's first instruction: a stop sent meanwhile arrives now, as a stop request.
    pub fn install(cancel: Cancel) -> io::Result<Signals> {
        let rx = listen()?;
        unblock_forwarded_signals();
        Ok(Signals {
            rx,
            stop: None,
            cancel,
            on_stop: None,
        })
    }

    /// What to tell when a stop is requested.
    pub fn on_stop(&mut self, tell: Box<dyn Fn() + Send>) {
        self.on_stop = Some(tell);
    }

    /// What a stop request cancels.
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// The stop signal received, if any: no upgrade or relaunch happens after it.
    pub fn stop(&self) -> Option<Signal> {
        self.stop
    }

    /// The status to exit with after a stop request: 128 + the signal's number.
    pub fn stop_status(&self) -> i32 {
        self.stop.map_or(0, |s| 128 + s as i32)
    }

    /// Takes the signals that arrived since the last look; whether a stop was requested.
    pub fn stop_requested(&mut self) -> bool {
        while let Ok(sig) = self.rx.try_recv() {
            self.note(sig);
        }
        self.stop.is_some()
    }

    /// Records a received signal: a stop signal is the stop request, once.
    pub fn note(&mut self, sig: Signal) {
        if is_stop_signal(sig) && self.stop.is_none() {
            tracing::info!(
                signal = sig.as_str(),
                "stop requested: no upgrade or relaunch will follow"
            );
            self.stop = Some(sig);
            self.cancel.cancel();
            if let Some(tell) = &self.on_stop {
                tell();
            }
        }
    }

    /// The next signal (noted as a stop request when it is one). Cancel-safe.
    pub async fn recv(&mut self) -> Signal {
        match self.rx.recv().await {
            Some(sig) => {
                self.note(sig);
                sig
            }
            // The handlers live as long as the runtime: no more signals means none ever.
            None => std::future::pending().await,
        }
    }

    /// Awaits `work` unless a stop request comes first: then `None`, at once, with plugin calls,
    /// downloads and copies cancelled. Other signals have no node to go to meanwhile.
    pub async fn until_stop<T>(&mut self, work: impl std::future::Future<Output = T>) -> Option<T> {
        if self.stop_requested() {
            return None;
        }
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Some(out),
                _ = self.recv() => {
                    if self.stop.is_some() {
                        return None;
                    }
                }
            }
        }
    }
}

/// Starts receiving the signals the supervisor handles: all are forwarded to the node; TERM, INT
/// and QUIT also mean "stop supervising". Must run inside the tokio runtime.
fn listen() -> io::Result<mpsc::UnboundedReceiver<Signal>> {
    let (tx, rx) = mpsc::unbounded_channel();
    for sig in FORWARDED {
        let mut stream = unix_signal(SignalKind::from_raw(sig as i32))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        });
    }
    Ok(rx)
}

/// The signals wasmvisor forwards to the node, TERM, INT and QUIT also meaning "stop".
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn forwarded_set() -> signal::SigSet {
    let mut set = signal::SigSet::empty();
    for sig in FORWARDED {
        set.add(sig);
    }
    set
}

/// Holds back the forwarded signals from the first instruction of `run` until their handlers
/// are installed: a stop request in the first milliseconds is then a stop request, not a death.
/// Children never inherit the mask (the standard library resets it when it spawns).
pub fn block_forwarded_signals() {
    let _ = forwarded_set().thread_block();
}

/// Releases what [`block_forwarded_signals`] held: pending signals reach their handlers now.
pub fn unblock_forwarded_signals() {
    let _ = forwarded_set().thread_unblock();
}

pub fn is_stop_signal(sig: Signal) -> bool {
    matches!(sig, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT)
}

/// For a command that is not the supervisor (`backup restore`): a stop signal (TERM, INT, QUIT)
/// cancels `cancel`, so the work under way stops at its next step and cleans up, instead of the
/// process dying in the middle. Call it before any other thread starts: the signals are held in
/// every thread and taken by one that waits for them.
pub fn cancel_on_stop(cancel: crate::cancel::Cancel) {
    let mut set = signal::SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT] {
        set.add(sig);
    }
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        if let Ok(sig) = set.wait() {
            crate::output::error(format!(
                "wasmvisor: {}: stopping at the next step and removing what was written",
                sig.as_str()
            ));
            cancel.cancel();
        }
    });
}
