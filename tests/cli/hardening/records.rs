//! Records that lie or go stale: a refused upgrade is decided again on restart, a forged node
//! record never kills a stranger.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

#[test]
fn a_refused_upgrade_is_redecided_on_restart_instead_of_wedging() {
    let home = Home::new();
    home.chain(&[("v2", 3)]);
    // No binary, no downloads: refused.
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(home.journal()["active"]["refused"].is_object());

    // Nothing changed: refused again at once, without running anything.
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1);
    assert!(
        done.stderr.contains("nothing it depends on has changed"),
        "{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("resolver answered"),
        "{}",
        done.stderr
    );
    assert_eq!(home.events_of("start").len(), 1);

    // The documented way out: skip the height. The node runs on, no journal surgery needed.
    let run = home.run(&["--unsafe-skip-upgrades", "3"]);
    home.wait_height("genesis", 4);
    let out = run.stop();
    assert!(out.stderr.contains("no longer due"), "{}", out.stderr);
    assert!(home.journal()["active"].is_null());

    // Another refusal, then the plan file removed by the operator: the node runs on.
    let home2 = Home::new();
    std::fs::write(
        home2.data().join("upgrade-info.json"),
        r#"{"name":"plausible","height":1}"#,
    )
    .unwrap();
    assert_eq!(home2.run(&[]).finish(Duration::from_secs(30)).code(), 1);
    std::fs::remove_file(home2.data().join("upgrade-info.json")).unwrap();
    let run = home2.run(&[]);
    home2.wait_height("genesis", 2);
    run.stop();

    // A binary staged after the refusal: the restart retries and upgrades.
    let home3 = Home::new();
    home3.chain(&[("v2", 3)]);
    assert_eq!(home3.run(&[]).finish(Duration::from_secs(30)).code(), 1);
    home3.upgrade("v2", 2, json!({}));
    let run = home3.run(&[]);
    home3.wait_height("v2", 4);
    run.stop();
    assert_eq!(home3.current(), "upgrades/v2");
}

#[test]
fn a_forged_node_record_is_verified_and_never_kills_a_stranger() {
    let home = Home::new();
    // A live process that is not a group leader (it is in the test's group).
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", stranger.id())).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let start_time: u64 = after.split_whitespace().nth(19).unwrap().parse().unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(
        home.root().join("wasmvisor-node.json"),
        json!({"pid": stranger.id(), "start_time": start_time, "boot_id": boot.trim()}).to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let run = home.run(&[]);
    home.wait_height("genesis", 2);
    assert!(started.elapsed() < Duration::from_secs(20));
    let out = run.stop();
    assert!(
        out.stderr.contains("does not lead its own process group"),
        "{}",
        out.stderr
    );
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger was signalled"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
}
