//! Spawning children in their own process group and reaping them — also orphans, when
//! wasmvisor is PID 1 in a container or adopts them as a subreaper.
//!
//! One reaper owns `waitpid(-1)`: every child wasmvisor starts while supervising is registered
//! with it, so reaping orphans never steals the status of a child it waits for.

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
use tokio::sync::oneshot;

use super::proc::parent_of;
use super::{Child, Exit};

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
            asked: false,
        })
    }
}

impl Reaper {
    /// Children of wasmvisor that no handle waits for: processes a stopped node left behind
    /// (adopted, see [`adopt_orphans`]).
    ///
    /// The table is held while the children are listed: a child spawned meanwhile (a preflight
    /// of the next binary, while the node stops) is registered before it can be listed, never
    /// taken for a stray.
    fn strays(&self) -> Vec<Pid> {
        let table = self.table.lock().expect("reaper table");
        children()
            .into_iter()
            .filter(|pid| !table.waiting.contains_key(pid))
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
