//! `cosmovisor/wasmvisor-node.json`: the running node's identity, so that a supervisor that was
//! killed can stop the node it left behind before starting another — and only that node.
//!
//! A pid alone names whatever process holds it now. The record also keeps the process's start
//! time and the boot it started in, and wasmvisor launched the node as the leader of its own
//! process group: a record is acted on only when all of these still match, so a stale or forged
//! record can never make wasmvisor signal a stranger.

use std::time::Duration;

use cap_std::fs::Dir;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, getpgid};
use serde::{Deserialize, Serialize};

use crate::fs::{self, Follow};

pub const NODE_FILE: &str = "wasmvisor-node.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat`: ticks since boot when the process started.
    pub start_time: u64,
    /// `/proc/sys/kernel/random/boot_id`: a start time only means something within one boot.
    pub boot_id: String,
}

/// What a record turned out to name.
#[derive(Debug, PartialEq, Eq)]
pub enum Leftover {
    /// The node a previous supervisor launched, still running.
    Running(NodeRecord),
    /// Nothing to do: no record, or its process is gone.
    None,
    /// The record does not name a node wasmvisor launched (why, in words): it is ignored.
    Foreign(String),
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl NodeRecord {
    /// The record of a node just spawned as the leader of its own process group.
    pub fn of(pid: Pid) -> Option<NodeRecord> {
        Some(NodeRecord {
            pid: pid.as_raw(),
            start_time: super::start_time(pid.as_raw())?,
            boot_id: boot_id(),
        })
    }

    pub fn write(&self, root: &Dir) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        fs::write_atomic(root, NODE_FILE, &bytes)
    }

    /// Whether the process this record names is still the one that was recorded.
    fn alive(&self) -> bool {
        super::start_time(self.pid) == Some(self.start_time)
    }
}

pub fn clear(root: &Dir) {
    let _ = fs::remove_if_present(root, NODE_FILE);
}

/// Reads and checks the record left in `root`.
pub fn leftover(root: &Dir) -> Leftover {
    let bytes = match fs::read_regular(root, NODE_FILE, 4096, Follow::No) {
        Ok(Some(b)) => b,
        Ok(None) => return Leftover::None,
        Err(e) => return Leftover::Foreign(format!("it cannot be read: {e}")),
    };
    let record: NodeRecord = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return Leftover::Foreign(format!("it is not a node record: {e}")),
    };
    if record.pid <= 1 {
        return Leftover::Foreign(format!("pid {} is not a node's", record.pid));
    }
    if record.boot_id != boot_id() {
        // Written before the last reboot: that node is long gone.
        return Leftover::None;
    }
    if !record.alive() {
        return Leftover::None;
    }
    let pid = Pid::from_raw(record.pid);
    if getpgid(Some(pid)) != Ok(pid) {
        return Leftover::Foreign(format!(
            "pid {} is alive but does not lead its own process group, as a node wasmvisor launched does",
            record.pid
        ));
    }
    if !super::owned_by_us(record.pid) {
        return Leftover::Foreign(format!("pid {} belongs to another user", record.pid));
    }
    Leftover::Running(record)
}

/// A leftover node's process group, as a [`super::Target`] of the one stop routine.
pub struct Group(pub NodeRecord);

impl super::Target for Group {
    fn send(&mut self, sig: Signal) {
        let _ = killpg(Pid::from_raw(self.0.pid), sig);
    }

    async fn gone_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit.min(Duration::from_secs(86_400));
        while self.0.alive() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    fn pid(&self) -> i32 {
        self.0.pid
    }
}
