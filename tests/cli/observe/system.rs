//! wasmvisor in the system around it: systemd's notifications and watchdog, shell completions,
//! and life as PID 1 of a namespace of its own.

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

use super::T;

/// The datagrams a service manager would receive, with when they came.
pub(crate) fn listen(path: &std::path::Path) -> Arc<Mutex<Vec<(Instant, String)>>> {
    let socket = UnixDatagram::bind(path).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            for line in text.lines() {
                sink.lock()
                    .unwrap()
                    .push((Instant::now(), line.to_string()));
            }
        }
    });
    got
}

#[test]
fn systemd_hears_ready_each_phase_stopping_and_the_watchdog() {
    let mut home = Home::new();
    let socket = home.path.join("notify.sock");
    let got = listen(&socket);
    home.set("NOTIFY_SOCKET", socket.to_str().unwrap())
        .set("WATCHDOG_USEC", "1000000")
        .set("UNSAFE_SKIP_BACKUP", "false");
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    // A watchdog period or two of the upgraded node running.
    std::thread::sleep(Duration::from_millis(1500));
    let out = run.stop();
    let said: Vec<(Instant, String)> = got.lock().unwrap().clone();
    let lines: Vec<&str> = said.iter().map(|(_, l)| l.as_str()).collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| *l == needle || l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {lines:?}\n{}", out.stderr))
    };
    let ready = at("READY=1");
    // READY follows the status of a running node, never before it.
    assert!(at("STATUS=running genesis") < ready, "{lines:?}");
    assert_eq!(lines.iter().filter(|l| **l == "READY=1").count(), 1);
    // Each phase of the upgrade, in order, then the new binary.
    let phases = [
        "detect",
        "stop",
        "backup",
        "resolve",
        "swap",
        "app-preupgrade",
    ];
    let mut last = ready;
    for phase in phases {
        let i = at(&format!("STATUS=upgrading to v2: {phase}"));
        assert!(i > last, "{phase} out of order: {lines:?}");
        last = i;
    }
    assert!(at("STATUS=running v2") > last);
    assert!(at("EXTEND_TIMEOUT_USEC=30000000") > ready, "{lines:?}");
    assert!(at("STOPPING=1") > last);
    // The watchdog: at half the period, never a whole period without one.
    let pings: Vec<Instant> = said
        .iter()
        .filter(|(_, l)| l == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    assert!(pings.len() >= 3, "{} pings", pings.len());
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap < Duration::from_secs(1), "a watchdog gap of {gap:?}");
    }
    // The node does not inherit the channel.
    for start in home.events_of("start") {
        assert!(start["notify_socket"].is_null(), "{start}");
    }
}

#[test]
fn completions_for_each_shell() {
    let home = Home::new();
    for (shell, opening) in [
        ("bash", "_wasmvisor() {"),
        ("zsh", "#compdef wasmvisor"),
        ("fish", "complete -c wasmvisor"),
    ] {
        let out = home.output(&["completions", shell]);
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains(opening),
            "{shell}: {}",
            &script[..200.min(script.len())]
        );
        for sub in ["add-upgrade", "prepare-upgrade", "backup"] {
            assert!(script.contains(sub), "{shell} completes {sub}");
        }
    }
    let out = home.output(&["completions", "tcsh"]);
    assert!(!out.status.success());
}

// Over 80 lines: one scenario read top to bottom — wasmvisor started as PID 1 of a namespace,
// then its reaping, an upgrade and its stop, in the order they happen to the one process.
#[test]
fn as_pid_1_of_its_own_namespace_it_reaps_orphans_upgrades_and_stops_on_sigterm() {
    // wasmvisor as a container's entrypoint: PID 1 of a new PID namespace.
    let probe = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(std::process::Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: this kernel (or user) does not allow a new PID namespace with unshare");
        return;
    }
    let home = Home::new();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "spawn_daemon": true}),
    );
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let home_arg = home.path.display().to_string();
    let cmd = home.cmd(&["run", "start", "--home", &home_arg]);
    // unshare runs wasmvisor as PID 1 of the namespace (and takes it down if the test dies).
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut wrapped = std::process::Command::new("unshare");
    wrapped
        .args(["--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM"])
        .arg(program)
        .args(args)
        .env_clear()
        .envs(
            cmd.get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(home.path.join("pid1.err")).unwrap());
    let mut child = wrapped.spawn().unwrap();
    home.wait_height("v2", 4);
    // Inside, wasmvisor is PID 1: the node's parent.
    let starts = home.events_of("start");
    assert_eq!(starts.len(), 2);
    for start in &starts {
        assert_eq!(start["ppid"], 1, "{start}");
    }
    assert!(
        !home.events_of("daemon").is_empty(),
        "the node started its daemon"
    );
    // The daemon the old node left behind was stopped and reaped: wasmvisor (seen from here,
    // unshare's child) has no zombie children.
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|tasks| {
                tasks
                    .flatten()
                    .flat_map(|t| {
                        std::fs::read_to_string(t.path().join("children"))
                            .unwrap_or_default()
                            .split_whitespace()
                            .filter_map(|p| p.parse().ok())
                            .collect::<Vec<u32>>()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let wasmvisor = children(child.id())[0];
    let zombie = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(false)
    };
    home.wait_for("no zombie under PID 1", T, |_| {
        !children(wasmvisor).iter().any(zombie)
    });
    assert_eq!(
        children(wasmvisor).len(),
        1,
        "only the node runs under PID 1"
    );
    // Stop, as a container runtime does: SIGTERM to PID 1, which stops the node and exits.
    signal(wasmvisor, SIGTERM);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < T, "wasmvisor as PID 1 did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(home.path.join("pid1.err")).unwrap();
    assert!(status.code().is_some(), "{log}");
    assert!(
        home.events_of("shutdown")
            .iter()
            .any(|e| e["version"] == "v2"),
        "the node was stopped gracefully: {log}"
    );
    assert_eq!(home.history()[0], ("genesis".into(), 1, 2), "{log}");
}
