//! Readiness where operators look, on a real run: the metrics, `GET /status` on the metrics
//! address, systemd's `STATUS=` line; a preflight failure counted; and a stop request in the
//! middle of a preparation ends wasmvisor at once, with nothing switched.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::serve::Server;
use crate::harness::*;
use crate::observe::metrics::{get, scrape, value};
use crate::observe::system::listen;

use super::{T, chain_home, status, wait_next};

#[test]
fn readiness_shows_in_the_metrics_get_status_and_the_status_line() {
    let mut home = chain_home(json!({}));
    let port = free_port();
    let socket = home.path.join("notify.sock");
    let got = listen(&socket);
    home.set("WASMVISOR_METRICS_ADDRESS", &format!("127.0.0.1:{port}"))
        .set("NOTIFY_SOCKET", socket.to_str().unwrap());
    // First a staged binary whose `version` fails.
    let staged = home.root().join("upgrades/v2/bin/simd");
    std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
    write_script(&staged, "#!/bin/sh\necho broken >&2\nexit 1\n");
    home.chain(&[("v2", 100_000)]);
    let run = home.run(&[]);
    wait_next(&home, "v2 not ready", |n| n["ready"] == false);
    home.wait_for("the gauges", T, |_| {
        let s = scrape(port);
        value(&s, "wasmvisor_upgrade_ready", &[("upgrade", "v2")]) == Some(0.0)
            && value(&s, "wasmvisor_upgrade_preflight_failures_total", &[]) >= Some(1.0)
            // Known once the chain has a few blocks to take its pace from.
            && value(&s, "wasmvisor_upgrade_eta_seconds", &[("upgrade", "v2")]).is_some_and(|e| e > 0.0)
    });
    let s = scrape(port);
    assert_eq!(
        value(
            &s,
            "wasmvisor_upcoming_upgrade_height",
            &[("upgrade", "v2"), ("source", "chain")]
        ),
        Some(100_000.0)
    );
    assert!(
        value(&s, "wasmvisor_upgrade_eta_seconds", &[("upgrade", "v2")]).is_some_and(|e| e > 0.0)
    );
    assert!(value(&s, "wasmvisor_plan_polls_total", &[("result", "ok")]) >= Some(1.0));
    let (code, body) = get(port, "/status");
    assert_eq!(code, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["next_upgrade"]["name"], "v2");
    assert_eq!(doc["next_upgrade"]["ready"], false);
    let status_line = |needle: &str| {
        got.lock()
            .unwrap()
            .iter()
            .any(|(_, l)| l.starts_with("STATUS=running genesis") && l.contains(needle))
    };
    home.wait_for("the STATUS= line", T, |_| {
        status_line("; next upgrade v2 at 100000 (chain): NOT READY: ")
    });

    // A binary that runs, staged by hand: ready everywhere.
    home.upgrade("v2", 2, json!({}));
    wait_next(&home, "v2 ready", |n| n["ready"] == true);
    home.wait_for("ready = 1", T, |_| {
        value(
            &scrape(port),
            "wasmvisor_upgrade_ready",
            &[("upgrade", "v2")],
        ) == Some(1.0)
    });
    home.wait_for("the STATUS= line", T, |_| {
        status_line("; next upgrade v2 at 100000 (chain): ready")
    });
    run.stop();
}

#[test]
fn a_stop_request_during_a_preparation_ends_it_at_once_and_switches_nothing() {
    let server = Server::start();
    let (home, url) = super::downloading_v2(&server);
    // The download stalls after its first bytes, for as long as anyone waits.
    server.stall("/v2.tar.gz", 64, 1_000);
    plan_with_binary(&home, "v2", 100_000, &url);
    let run = home.run(&[]);
    home.wait_for("the download under way", T, |_| {
        server.log().iter().any(|l| l.contains("/v2.tar.gz"))
    });
    let asked = std::time::Instant::now();
    let done = run.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the stop waited for the preparation: {:?}\n{}",
        asked.elapsed(),
        done.stderr
    );
    assert_eq!(done.code(), 0, "the node's own status: {}", done.stderr);
    assert_eq!(home.current(), "genesis");
    assert!(!home.root().join("upgrades/v2/bin/simd").exists());
    assert_eq!(status(&home)["current"]["upgrade"], "genesis");
}
