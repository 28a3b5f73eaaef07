//! What systemd, Prometheus and Kubernetes see: the notify protocol on a real datagram socket,
//! the metrics scraped during a real upgrade and parsed by a Prometheus text parser, the probes,
//! completions, and wasmvisor as PID 1 of a PID namespace.

use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

/// The datagrams a service manager would receive, with when they came.
fn listen(path: &std::path::Path) -> Arc<Mutex<Vec<(Instant, String)>>> {
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

/// A GET on the observability listener: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
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

fn scrape(port: u16) -> prometheus_parse::Scrape {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
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

#[test]
fn metrics_and_probes_follow_a_real_upgrade() {
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
    assert_eq!(
        value(
            &before,
            "wasmvisor_pending_upgrade_height",
            &[("name", "v2"), ("kind", "manual")]
        ),
        Some(8.0)
    );
    assert!(value(&before, "wasmvisor_chain_height", &[]).unwrap() >= 2.0);
    assert_eq!(
        value(
            &before,
            "wasmvisor_current_binary",
            &[("upgrade", "genesis")]
        ),
        Some(1.0)
    );
    // During the upgrade (its 2 s restart delay), not ready, and says why.
    home.wait_for("the upgrade", T, |_| get(metrics, "/readyz").0 == 503);
    let (_, why) = get(metrics, "/readyz");
    assert!(why.contains("upgrading to v2"), "{why}");
    assert_eq!(get(metrics, "/livez").0, 200);
    home.wait_height("v2", 9);
    home.wait_for("readiness again", T, |_| get(metrics, "/readyz").0 == 200);
    let after = scrape(metrics);
    let out = run.stop();
    let v = |m: &str, l: &[(&str, &str)]| value(&after, m, l);
    assert_eq!(
        v("wasmvisor_build_info", &[("version", "0.1.0")]),
        Some(1.0),
        "{}",
        out.stderr
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

/// A `/livez` as a kubelet sends it: its status, or why there was none (refused, reset, closed
/// unanswered, too slow).
fn probe(port: u16) -> Result<u16, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.33\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    s.read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no answer: {response:?}"))
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
