//! A node that crashes without an upgrade: relaunched after a backoff until the crash loop ends
//! in the tally, a stop request during the backoff, and an upgrade folder's `lib/` on its own
//! binary's library path.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

use super::T;

#[test]
fn a_crashed_node_is_relaunched_after_a_backoff_and_a_crash_loop_ends_in_the_tally() {
    // Crashes once at height 2, then runs on.
    let mut home = Home::new();
    home.set("WASMVISOR_RESTART_ON_CRASH", "true");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "exit_after_height": 2, "exit_code": 2}),
    );
    let run = home.run(&[]);
    home.wait_height("genesis", 5);
    let out = run.stop();
    assert!(
        out.stderr.contains("relaunching it in 1s"),
        "{}",
        out.stderr
    );
    assert_eq!(home.history(), [("genesis".into(), 1, home.height())]);
    let starts = home.events_of("start");
    assert_eq!(starts.len(), 2);
    let gap = starts[1]["mono_ns"].as_u64().unwrap() - starts[0]["mono_ns"].as_u64().unwrap();
    assert!(gap >= 1_000_000_000, "relaunched after {gap} ns");

    // A node that cannot start at all: 1 s, 2 s, then the third death is one too many.
    let mut home = Home::new();
    home.set("WASMVISOR_RESTART_ON_CRASH", "true")
        .set("WASMVISOR_MAX_RESTARTS", "2");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "fail_at_start": 7}),
    );
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 7, "{}", done.stderr);
    assert!(
        done.stderr.contains("died 3 times within 10m0s"),
        "{}",
        done.stderr
    );
    let at: Vec<u64> = home
        .events_of("start")
        .iter()
        .map(|e| e["mono_ns"].as_u64().unwrap())
        .collect();
    assert_eq!(at.len(), 3);
    assert!(at[1] - at[0] >= 1_000_000_000, "{at:?}");
    assert!(at[2] - at[1] >= 2_000_000_000, "{at:?}");
}

#[test]
fn a_stop_request_during_the_restart_backoff_ends_it_at_once() {
    let mut home = Home::new();
    home.set("WASMVISOR_RESTART_ON_CRASH", "true")
        .set("WASMVISOR_MAX_RESTARTS", "10");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "fail_at_start": 1}),
    );
    let run = home.run(&[]);
    home.wait_for("the third backoff", T, |h| {
        h.last_log().contains("relaunching it in 4s")
    });
    let asked = Instant::now();
    run.signal(SIGTERM);
    let done = run.finish(T);
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "exited {:?} after SIGTERM",
        asked.elapsed()
    );
    assert_eq!(done.code(), 128 + SIGTERM, "{}", done.stderr);
    assert_eq!(
        home.events_of("start").len(),
        3,
        "no relaunch after the stop"
    );
}

#[test]
fn an_upgrade_folder_lib_is_on_the_library_path_of_its_binary_only() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    std::fs::create_dir_all(home.root().join("upgrades/v2/lib")).unwrap();
    std::fs::write(
        home.root().join("upgrades/v2/lib/libwasmvm.x86_64.so"),
        b"\x7fELF",
    )
    .unwrap();
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();
    let starts = home.events_of("start");
    assert_eq!(starts[0]["version"], "genesis");
    assert_eq!(starts[0]["ld_library_path"], Value::Null);
    let lib = home.root().join("upgrades/v2/lib").display().to_string();
    assert_eq!(starts[1]["ld_library_path"].as_str(), Some(lib.as_str()));
}
