use std::time::Duration;

use serde_json::json;

use crate::harness::*;
use crate::observe::metrics::{scrape, value};

/// A real upgrade's timeline, as a validator counts its downtime: journaled, in `status` (text
/// and JSON), in the metrics, and drawn by `status --timeline`.
#[test]
fn the_downtime_is_counted_to_the_first_block_and_the_validator_s_first_vote() {
    let mut home = Home::new();
    let (rpc, metrics) = (free_port(), free_port());
    home.set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{rpc}"))
        .set("WASMVISOR_METRICS_ADDRESS", &format!("127.0.0.1:{metrics}"));
    // v2 waits 700 ms for two thirds of the power before its first block.
    home.upgrade("v2", 2, json!({"rpc_port": rpc, "stall_ms": 700}));
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_for("the first vote", Duration::from_secs(60), |h| {
        h.journal()["last"]["first_vote"].is_object()
    });
    let s = scrape(metrics);
    let out = home.output(&["status", "--json"]);
    let text = String::from_utf8_lossy(&home.output(&["status"]).stdout).into_owned();
    let svg_path = home.path.join("timeline.svg");
    let drawn = home.output(&["status", "--timeline", svg_path.to_str().unwrap()]);
    let done = run.stop();

    let last = &home.journal()["last"];
    // The first block is the one after the upgrade height (3's votes were cast before the
    // halt); the validator's first vote is for it or a later one.
    assert_eq!(last["first_block"]["height"], 4, "{last}\n{}", done.stderr);
    let vote = &last["first_vote"];
    assert!(vote["height"].as_u64().unwrap() >= 4, "{vote}");
    assert_eq!(vote["validator"].as_str().unwrap().len(), 40, "{vote}");

    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let down = &status["last_upgrade"]["downtime_ms"];
    let (start, block, sig) = (
        down["start"].as_f64().unwrap(),
        down["first_block"].as_f64().unwrap(),
        down["first_signature"].as_f64().unwrap(),
    );
    // The stall is in the chain's part of the downtime, not the switch's.
    assert!(
        start < 700.0 && block >= 700.0 && sig >= block - 50.0,
        "{down}"
    );
    let whats: Vec<&str> = status["last_upgrade"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats.first(), Some(&"halt"));
    assert!(
        whats.contains(&"stop") && whats.contains(&"launch"),
        "{whats:?}"
    );
    assert_eq!(&whats[whats.len() - 2..], ["first block", "first vote"]);

    for until in ["start", "first_block", "first_signature"] {
        let v = value(
            &s,
            "wasmvisor_upgrade_downtime_seconds",
            &[("until", until)],
        );
        assert!(v.is_some_and(|v| v > 0.0), "{until}: {v:?}");
    }
    let metric = value(
        &s,
        "wasmvisor_upgrade_downtime_seconds",
        &[("until", "first_signature")],
    );
    assert!(
        (metric.unwrap() * 1000.0 - sig).abs() < 1.0,
        "{metric:?} {sig}"
    );

    assert!(
        text.contains("downtime") && text.contains("to this validator's first vote"),
        "{text}"
    );
    assert_eq!(
        drawn.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&drawn.stderr)
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for row in [
        "halt (3)",
        "stop",
        "launch",
        "first block (4)",
        "first vote (",
    ] {
        assert!(svg.contains(row), "{row} in {svg}");
    }
}

#[test]
fn without_a_finished_upgrade_there_is_no_timeline_to_draw() {
    let home = Home::new();
    let out = home.output(&["status", "--timeline", "/tmp/never-written.svg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no upgrade has completed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!std::path::Path::new("/tmp/never-written.svg").exists());
}
