//! Child processes: spawning in a process group, reaping (also orphans, for when wasmvisor is
//! PID 1 in a container), graceful stop, and the signals the supervisor forwards.
//!
//! One reaper owns `waitpid(-1)`: every child wasmvisor starts while supervising is registered
//! with it, so reaping orphans never steals the status of a child we wait for.

use std::collections::HashMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal as unix_signal};
use tokio::sync::{mpsc, oneshot};

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

#[derive(Default)]
struct Table {
    waiting: HashMap<i32, oneshot::Sender<Exit>>,
}

#[derive(Clone)]
pub struct Reaper {
    table: Arc<Mutex<Table>>,
}

impl Reaper {
    /// Starts reaping on SIGCHLD. Must run inside the tokio runtime, before any child is spawned.
    pub fn start() -> io::Result<Reaper> {
        let mut sigchld = unix_signal(SignalKind::child())?;
        let reaper = Reaper {
            table: Arc::default(),
        };
        let table = reaper.table.clone();
        tokio::spawn(async move {
            loop {
                reap(&table);
                if sigchld.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(reaper)
    }

    /// Spawns `cmd` and registers it. With `own_group` the child leads a new process group, so a
    /// stop reaches everything it started and a terminal's ^C reaches only the supervisor.
    pub fn spawn(&self, cmd: &mut Command, own_group: bool) -> io::Result<Child> {
        if own_group {
            cmd.process_group(0);
        }
        // Holding the table while spawning keeps `reap` from collecting the child before it is
        // registered (and from racing the spawn's own wait on a failed exec).
        let mut table = self.table.lock().expect("reaper table");
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        let (tx, rx) = oneshot::channel();
        table.waiting.insert(pid, tx);
        Ok(Child {
            pid: Pid::from_raw(pid),
            exit_rx: rx,
            exit: None,
            group: own_group,
        })
    }
}

impl Reaper {
    /// Children of wasmvisor that no handle waits for: processes a stopped node left behind
    /// (adopted, see [`adopt_orphans`]).
    fn strays(&self) -> Vec<Pid> {
        let ours: Vec<i32> = {
            let table = self.table.lock().expect("reaper table");
            table.waiting.keys().copied().collect()
        };
        children()
            .into_iter()
            .filter(|pid| !ours.contains(pid))
            .map(Pid::from_raw)
            .collect()
    }

    /// Stops what the node left behind: SIGTERM to each stray (and its group, when it leads
    /// one), up to `grace` for them to go, then SIGKILL. The reaper collects them as usual.
    pub async fn stop_strays(&self, grace: Duration) {
        let strays = self.strays();
        if strays.is_empty() {
            return;
        }
        tracing::warn!(
            pids = ?strays.iter().map(|p| p.as_raw()).collect::<Vec<_>>(),
            "the node left processes behind (they left its process group); stopping them too"
        );
        let send = |sig: Signal| {
            for pid in &strays {
                let _ = signal::kill(*pid, sig);
                if nix::unistd::getpgid(Some(*pid)) == Ok(*pid) {
                    let _ = signal::killpg(*pid, sig);
                }
            }
        };
        send(Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if strays.iter().all(|p| !self.strays().contains(p)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        send(Signal::SIGKILL);
    }
}

/// Makes wasmvisor the parent of every process its children orphan (PR_SET_CHILD_SUBREAPER):
/// a node's helper that left the node's process group with `setsid` would otherwise outlive
/// the node unseen. As PID 1 in a container this is already so.
pub fn adopt_orphans() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!("cannot become a subreaper: {e}");
    }
}

/// The pids whose parent is this process.
fn children() -> Vec<i32> {
    let me = std::process::id() as i32;
    // `/proc/self/task/*/children` lists them cheaply; where the kernel lacks it, scan /proc.
    let mut pids = Vec::new();
    let mut found_file = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
                found_file = true;
                pids.extend(
                    list.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    if found_file {
        return pids;
    }
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(me))
        .collect()
}

/// Field 4 of `/proc/<pid>/stat`.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(1)?.parse().ok()
}

fn reap(table: &Mutex<Table>) {
    let mut table = table.lock().expect("reaper table");
    loop {
        let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Exit::Signal(sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return,
        };
        // A pid nobody waits for is an orphan inherited as PID 1: reaping it is all it needs.
        if let Some(tx) = table.waiting.remove(&pid.as_raw()) {
            let _ = tx.send(exit);
        }
    }
}

pub struct Child {
    pub pid: Pid,
    exit_rx: oneshot::Receiver<Exit>,
    exit: Option<Exit>,
    group: bool,
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

    /// SIGTERM, up to `grace` for the child to finish, then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) -> Exit {
        if let Some(exit) = self.exited() {
            return exit;
        }
        self.signal(Signal::SIGTERM);
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(exit) => exit,
            Err(_) => {
                tracing::warn!(
                    pid = self.pid.as_raw(),
                    grace = %crate::duration::format(grace),
                    "the node did not stop within the shutdown grace; sending SIGKILL (raise DAEMON_SHUTDOWN_GRACE if it needs longer)"
                );
                self.signal(Signal::SIGKILL);
                self.wait().await
            }
        }
    }
}

/// Starts receiving the signals the supervisor handles: all are forwarded to the node; TERM, INT
/// and QUIT also mean "stop supervising". Must run inside the tokio runtime.
pub fn signals() -> io::Result<mpsc::UnboundedReceiver<Signal>> {
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

/// The kernel's start time of a process (field 22 of /proc/<pid>/stat), to tell a process from a
/// later one that reused its pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past its last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the process runs as this process's effective user (so signalling it is ours to do).
pub fn owned_by_us(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}"))
        .is_ok_and(|m| m.uid() == nix::unistd::geteuid().as_raw())
}

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes on this machine (the node
/// simulator stamps its events with the same clock).
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}
