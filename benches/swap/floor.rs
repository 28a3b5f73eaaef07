//! The floors: what any supervisor must do at a halt, written as plainly as it can be.
//!
//! - (d) waits on inotify, stops the node (SIGTERM, wait), renames a new symlink over `current`
//!   and spawns `current/bin/simd`;
//! - (d′) does what the protocol requires of a supervisor and nothing else: (d), plus the new
//!   binary's `pre-upgrade` (run to its exit, between the rename and the spawn), which the
//!   Cosmos SDK defines and every upgrade of wasmvisor pays.
//!
//! A floor runs in the bench's own process, or in a child of it (`child`) when the counts and
//! the instruction counts need it alone under strace or valgrind.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runs::{Run, finished, home, stop, totals};

/// The environment variable that makes the bench binary a floor: `<home>;<n>;<d|d'>`.
pub(crate) const CHILD: &str = "WASMVISOR_BENCH_FLOOR";

/// Which floor.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Floor {
    /// (d): rename and spawn.
    Spawn,
    /// (d′): rename, the new binary's `pre-upgrade`, spawn.
    Protocol,
}

impl Floor {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Floor::Spawn => "d",
            Floor::Protocol => "d'",
        }
    }
}

/// A floor over `n` upgrades in this process.
pub(crate) fn run_floor(n: usize, floor: Floor) -> Run {
    let home = home(n, crate::harness::free_port());
    let node = upgrades(&home.path, n, floor);
    wait_and_stop(&home, n, node)
}

/// A floor over `n` upgrades of `home` in a child process, started by `command` (strace or
/// valgrind in front of the bench binary): its total latencies once the child is done.
pub(crate) fn run_floor_child(
    home: &crate::harness::Home,
    n: usize,
    floor: Floor,
    wrap: &[String],
) -> Run {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(&wrap[0]);
    cmd.args(&wrap[1..])
        .arg(exe)
        .env(
            CHILD,
            format!("{};{n};{}", home.path.display(), floor.key()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120 + 5 * n as u64);
    while !finished(home, n) {
        assert!(
            Instant::now() < deadline,
            "the floor's child did not finish"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the floor's child exited early ({status})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its stdin closed, the child stops its last node and exits.
    drop(child.stdin.take());
    let _ = child.wait();
    Run::totals_only(totals(home))
}

/// The bench binary as a floor's child: `spec` is `<home>;<n>;<d|d'>`.
pub(crate) fn child(spec: &str) {
    let mut parts = spec.split(';');
    let home = PathBuf::from(parts.next().unwrap());
    let n: usize = parts.next().unwrap().parse().unwrap();
    let floor = match parts.next() {
        Some("d") => Floor::Spawn,
        _ => Floor::Protocol,
    };
    let mut node = upgrades(&home, n, floor);
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    stop(&mut node);
}

fn wait_and_stop(home: &crate::harness::Home, n: usize, mut node: Child) -> Run {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !finished(home, n) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(&mut node);
    let mut run = Run::totals_only(totals(home));
    // The node's own marks (no log: the floor says nothing).
    run.timelines = crate::tail::timelines(home, Path::new("/nonexistent"));
    run
}

/// Runs the node of `home` through `n` upgrades; returns the last node, running.
fn upgrades(home: &Path, n: usize, floor: Floor) -> Child {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let (root, data) = (home.join("cosmovisor"), home.join("data"));
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).unwrap();
    inotify
        .add_watch(
            &data,
            AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO,
        )
        .unwrap();
    let mut node = spawn(home, &root);
    let mut done = 0;
    while done < n {
        let events = inotify.read_events().unwrap();
        if !events.iter().any(|e| {
            e.name
                .as_deref()
                .is_some_and(|name| name == "upgrade-info.json")
        }) {
            continue;
        }
        let Ok(bytes) = std::fs::read(data.join("upgrade-info.json")) else {
            continue;
        };
        let Ok(plan) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let name = plan["name"].as_str().unwrap_or("").to_string();
        if !root.join("upgrades").join(&name).is_dir() {
            continue;
        }
        stop(&mut node);
        let tmp = root.join("current.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("upgrades/{name}"), &tmp).unwrap();
        std::fs::rename(&tmp, root.join("current")).unwrap();
        if floor == Floor::Protocol {
            let status = Command::new(root.join("current/bin/simd"))
                .arg("pre-upgrade")
                .env("DAEMON_HOME", home)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "pre-upgrade failed: {status}");
        }
        node = spawn(home, &root);
        done += 1;
    }
    node
}

fn spawn(home: &Path, root: &Path) -> Child {
    Command::new(root.join("current/bin/simd"))
        .args(["start", "--home"])
        .arg(home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
