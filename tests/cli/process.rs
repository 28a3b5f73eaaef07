//! Process duties: graceful stop, signal forwarding, exit status, one supervisor per home.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

#[test]
fn the_shutdown_grace_lets_the_node_flush() {
    let mut home = Home::new();
    home.set("DAEMON_SHUTDOWN_GRACE", "5s");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "term_flush_ms": 800}),
    );
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 3);
    run.stop();
    assert_eq!(
        home.events_of("shutdown")[0]["version"],
        "genesis",
        "genesis was given the time to flush"
    );
}

#[test]
fn a_node_that_outlives_the_grace_is_killed() {
    let mut home = Home::new();
    home.set("DAEMON_SHUTDOWN_GRACE", "300ms");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "term_flush_ms": 10000}),
    );
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 3);
    let out = run.stop();
    assert!(
        home.events_of("shutdown")
            .iter()
            .all(|e| e["version"] != "genesis")
    );
    assert!(out.stderr.contains("SIGKILL"), "{}", out.stderr);
}

#[test]
fn signals_are_forwarded_and_the_exit_status_passed_on() {
    let home = Home::new();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "term_exit_code": 7}),
    );
    let run = home.run(&[]);
    home.wait_height("genesis", 2);
    // One at a time: signals pending together are taken in no promised order, by the kernel
    // or the runtime; each is forwarded before the next is sent.
    for (i, sig) in [SIGHUP, SIGUSR1, 12].into_iter().enumerate() {
        run.signal(sig);
        home.wait_for("a forwarded signal", Duration::from_secs(10), |h| {
            h.events_of("signal").len() > i
        });
    }
    let out = run.stop();
    assert_eq!(out.code(), 7, "{}", out.stderr);
    let got: Vec<String> = home
        .events_of("signal")
        .iter()
        .map(|e| e["signal"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGTERM"]);
}

#[test]
fn a_node_killed_by_a_signal_gives_128_plus_n() {
    let home = Home::new();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "trap_term": false}),
    );
    let run = home.run(&[]);
    home.wait_height("genesis", 1);
    assert_eq!(run.stop().code(), 143);
}

#[test]
fn a_node_that_exits_on_its_own_passes_its_code_and_is_not_restarted() {
    let home = Home::new();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "exit_after_height": 3, "exit_code": 5}),
    );
    let out = home.run(&[]).finish(Duration::from_secs(20));
    assert_eq!(out.code(), 5);
    assert_eq!(home.events_of("start").len(), 1);
}

#[test]
fn a_second_supervisor_on_the_same_home_is_refused() {
    let home = Home::new();
    let first = home.run(&[]);
    home.wait_height("genesis", 1);
    let second = home.run(&[]).finish(Duration::from_secs(10));
    assert_eq!(second.code(), 1);
    assert!(
        second.stderr.contains("already supervising")
            && second.stderr.contains(&first.pid().to_string()),
        "{}",
        second.stderr
    );
    assert_eq!(home.events_of("start").len(), 1);
    first.stop();
}

#[test]
fn helpers_the_node_left_behind_are_stopped_with_it() {
    let home = Home::new();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "spawn_daemon": true}),
    );
    let run = home.run(&[]);
    home.wait_for("the node's helper", Duration::from_secs(20), |h| {
        !h.events_of("daemon").is_empty()
    });
    let helper = home.events_of("daemon")[0]["daemon_pid"].as_u64().unwrap();
    let alive = |pid: u64| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
    };
    assert!(alive(helper));
    let out = run.stop();
    home.wait_for("the helper to be gone", Duration::from_secs(20), |_| {
        !alive(helper)
    });
    assert!(
        out.stderr.contains("left processes behind"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_stop_signal_in_the_first_milliseconds_is_a_stop_request_not_a_death() {
    let home = Home::new();
    let exe = std::fs::canonicalize(WASMVISOR).unwrap();
    for _ in 0..10 {
        let mut child = home
            .cmd(&["run", "start", "--home", home.path.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // As soon as wasmvisor's first instruction has run: it holds the stop signals back
        // (SigBlk shows SIGTERM, bit 15) long before any handler or anything else exists, and
        // from its handler on it catches them (SigCgt). The signal goes at the first moment this
        // thread sees either: on a loaded machine it may be descheduled past the first window,
        // never past both.
        let status = format!("/proc/{}/status", child.id());
        let started = std::time::Instant::now();
        let mask = |text: &str, field: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .is_some_and(|m| m & (1 << (SIGTERM - 1)) != 0)
        };
        let holds_term = || {
            let text = std::fs::read_to_string(&status).unwrap_or_default();
            std::fs::read_link(format!("/proc/{}/exe", child.id()))
                .ok()
                .as_deref()
                == Some(exe.as_path())
                && (mask(&text, "SigBlk:") || mask(&text, "SigCgt:"))
        };
        while !holds_term() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "wasmvisor never held SIGTERM back nor caught it"
            );
            std::thread::yield_now();
        }
        signal(child.id(), SIGTERM);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            (status.code(), status.signal()),
            (Some(143), None),
            "wasmvisor died by the signal instead of handling it"
        );
    }
    assert!(
        home.events_of("start").is_empty(),
        "no node is launched after a stop request"
    );
}
