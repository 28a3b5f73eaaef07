//! The metrics and probes endpoint: a real upgrade seen through it, idle connections that cannot
//! exhaust descriptors or starve the liveness probe, an address in use, a plugin's failed
//! compilation counted.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

use super::{T, probe};

/// A GET on the observability listener: (status, body).
pub(crate) fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub(crate) fn scrape(port: u16) -> prometheus_parse::Scrape {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

pub(crate) fn value(
    scrape: &prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
}

/// A home whose node is to be upgraded by hand to v2 at height 8, with the metrics endpoint
/// on a port of its own (returned) and the chain height followed on the node's RPC.
pub(super) fn manual_upgrade_home() -> (Home, u16) {
    let mut home = Home::new();
    let (metrics, rpc) = (free_port(), free_port());
    home.set("WASMVISOR_METRICS_ADDRESS", &format!("127.0.0.1:{metrics}"))
        .set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{rpc}"))
        .set("DAEMON_RESTART_DELAY", "2s")
        .set("UNSAFE_SKIP_BACKUP", "false");
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": rpc, "block_ms": 100}),
    );
    // A manual upgrade at height 8: known ahead, and the chain height is followed on the RPC.
    home.install(
        "../staged/v2",
        json!({"version": "v2", "ordinal": 2, "rpc_port": rpc, "block_ms": 100}),
    );
    let staged = home.path.join("staged/v2/bin/simd");
    let out = home.output(&[
        "add-upgrade",
        "v2",
        staged.to_str().unwrap(),
        "--upgrade-height",
        "8",
    ]);
    assert!(out.status.success());
    std::fs::copy(
        home.path.join("staged/v2/bin/sim.json"),
        home.root().join("upgrades/v2/bin/sim.json"),
    )
    .unwrap();
    (home, metrics)
}

/// What the metrics say while genesis runs and v2 is scheduled.
fn assert_before_the_upgrade(before: &prometheus_parse::Scrape) {
    assert_eq!(
        value(
            before,
            "wasmvisor_pending_upgrade_height",
            &[("name", "v2"), ("kind", "manual")]
        ),
        Some(8.0)
    );
    assert!(value(before, "wasmvisor_chain_height", &[]).unwrap() >= 2.0);
    assert_eq!(
        value(
            before,
            "wasmvisor_current_binary",
            &[("upgrade", "genesis")]
        ),
        Some(1.0)
    );
}

/// What the metrics say once v2 runs (`stderr`: wasmvisor's, for the messages).
fn assert_after_the_upgrade(after: &prometheus_parse::Scrape, stderr: &str) {
    let v = |m: &str, l: &[(&str, &str)]| value(after, m, l);
    assert_eq!(
        v("wasmvisor_build_info", &[("version", "0.1.0")]),
        Some(1.0),
        "{stderr}"
    );
    assert_eq!(
        v(
            "wasmvisor_current_binary",
            &[("upgrade", "v2"), ("applied", "v2")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v("wasmvisor_current_binary", &[("upgrade", "genesis")]),
        None
    );
    assert_eq!(v("wasmvisor_pending_upgrade_height", &[]), None);
    assert_eq!(v("wasmvisor_node_up", &[]), Some(1.0));
    assert!(v("wasmvisor_node_start_time_seconds", &[]).unwrap() > 1.7e9);
    assert_eq!(
        v("wasmvisor_upgrades_total", &[("result", "success")]),
        Some(1.0)
    );
    assert_eq!(v("wasmvisor_upgrade_in_progress", &[]), Some(0.0));
    assert_eq!(
        v(
            "wasmvisor_upgrade_phase_duration_seconds",
            &[("phase", "delay")]
        ),
        Some(1.0),
        "one delay observed"
    );
    let delay_sum = after
        .samples
        .iter()
        .find(|s| {
            s.metric == "wasmvisor_upgrade_phase_duration_seconds_sum"
                && s.labels.get("phase") == Some("delay")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Untyped(x) | prometheus_parse::Value::Gauge(x) => x,
            _ => 0.0,
        })
        .unwrap();
    assert!(delay_sum >= 2.0, "{delay_sum}");
    assert!(v("wasmvisor_last_upgrade_downtime_seconds", &[]).unwrap() >= 2.0);
    assert!(
        v(
            "wasmvisor_plugin_calls_total",
            &[
                ("plugin", "cosmovisor"),
                ("world", "resolver"),
                ("result", "ok")
            ]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(v("wasmvisor_backups_total", &[]), Some(1.0));
    assert!(v("wasmvisor_backup_last_bytes", &[("how", "copied")]).unwrap() > 0.0);
    assert!(v("wasmvisor_chain_height", &[]).unwrap() >= 7.0);
}

#[test]
fn metrics_and_probes_follow_a_real_upgrade() {
    let (home, metrics) = manual_upgrade_home();
    let run = home.run(&[]);
    home.wait_for("the probes", T, |_| {
        std::net::TcpStream::connect(("127.0.0.1", metrics)).is_ok()
            && get(metrics, "/readyz").0 == 200
    });
    let (_, ready) = get(metrics, "/readyz");
    assert!(ready.contains("running genesis"), "{ready}");
    assert_eq!(get(metrics, "/livez").0, 200);
    home.wait_height("genesis", 3);
    // The height is followed on the RPC every poll: wait for a poll that read it, not a moment.
    home.wait_for("the chain height in the metrics", T, |_| {
        value(&scrape(metrics), "wasmvisor_chain_height", &[]).is_some_and(|h| h >= 2.0)
    });
    let before = scrape(metrics);
    assert_before_the_upgrade(&before);
    // During the upgrade (its 2 s restart delay), not ready, and says why.
    home.wait_for("the upgrade", T, |_| get(metrics, "/readyz").0 == 503);
    let (_, why) = get(metrics, "/readyz");
    assert!(why.contains("upgrading to v2"), "{why}");
    assert_eq!(get(metrics, "/livez").0, 200);
    home.wait_height("v2", 9);
    home.wait_for("readiness again", T, |_| get(metrics, "/readyz").0 == 200);
    let after = scrape(metrics);
    let out = run.stop();
    assert_after_the_upgrade(&after, &out.stderr);
}

#[test]
fn idle_connections_cannot_exhaust_the_supervisors_descriptors() {
    let mut home = Home::new();
    let port = free_port();
    home.set("WASMVISOR_METRICS_ADDRESS", &format!("127.0.0.1:{port}"));
    let run = home.run(&[]);
    home.wait_for("the probes", T, |_| {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && get(port, "/livez").0 == 200
    });
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", run.pid()))
            .unwrap()
            .count()
    };
    let before = fds();
    let held: Vec<std::net::TcpStream> = (0..200)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let during = fds();
    assert!(
        during < before + 32,
        "{before} descriptors before, {during} with 200 idle clients"
    );
    drop(held);
    home.wait_for("the probe again", T, |_| get(port, "/livez").0 == 200);
    run.stop();
}

#[test]
fn the_liveness_probe_is_answered_through_a_flood_of_idle_connections() {
    let mut home = Home::new();
    let port = free_port();
    home.set("WASMVISOR_METRICS_ADDRESS", &format!("127.0.0.1:{port}"));
    let run = home.run(&[]);
    home.wait_for("the probes", T, |_| probe(port) == Ok(200));
    let idle = |n: usize| -> Vec<std::net::TcpStream> {
        (0..n)
            .map(|i| {
                let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                // Half of them start a request they never finish.
                if i % 2 == 1 {
                    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n");
                }
                s
            })
            .collect()
    };
    let mut held = idle(64);
    for round in 0..20 {
        // A fresh flood before each probe, with the one before still held open.
        let batch = idle(64);
        let began = Instant::now();
        let answer = probe(port);
        assert!(
            answer == Ok(200) && began.elapsed() < Duration::from_secs(2),
            "probe {round} with 128 idle connections open: {answer:?} after {:?}",
            began.elapsed()
        );
        held = batch;
    }
    drop(held);
    run.stop();
}

#[test]
fn a_metrics_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut home = Home::new();
    home.set("WASMVISOR_METRICS_ADDRESS", &format!("127.0.0.1:{port}"));
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 1);
    assert!(
        done.stderr.contains("WASMVISOR_METRICS_ADDRESS") && done.stderr.contains("in use"),
        "{}",
        done.stderr
    );
    assert!(home.events_of("start").is_empty());
}

#[test]
fn a_plugin_whose_compilation_fails_is_counted_while_the_node_runs() {
    let mut home = Home::new();
    let port = free_port();
    home.set("WASMVISOR_METRICS_ADDRESS", &format!("127.0.0.1:{port}"));
    // A cache of its own: the broken plugin must really be compiled.
    let cache = home.path.join("cache");
    home.set("WASMVISOR_PLUGIN_CACHE", cache.to_str().unwrap());
    let broken = crate::sdk::miscompiling(&home, "wasmvisor-plugin-cometbft");
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[health]]\nname = \"broken\"\npath = \"{}\"\n",
            broken.display()
        ),
    )
    .unwrap();
    let run = home.run(&[]);
    home.wait_height("genesis", 2);
    home.wait_for(
        "the failed compilation counted",
        Duration::from_secs(60),
        |_| value(&scrape(port), "wasmvisor_plugins_unusable", &[]) == Some(1.0),
    );
    let done = run.stop();
    assert!(
        done.stderr
            .contains("the next upgrade will be refused until it is fixed"),
        "{}",
        done.stderr
    );
}
