//! What `/proc` and the clock say about a process.

/// The fields of `/proc/<pid>/stat` after the command name, from the state (field 3) on.
fn stat(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past its last ')'.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// The kernel's start time of a live process (field 22 of /proc/<pid>/stat), to tell a process
/// from a later one that reused its pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let fields = stat(pid)?;
    if fields.first().map(String::as_str) == Some("Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The parent of a process (field 4).
pub(super) fn parent_of(pid: i32) -> Option<i32> {
    stat(pid)?.get(1)?.parse().ok()
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
