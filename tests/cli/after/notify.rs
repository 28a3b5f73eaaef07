use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::receive::{Answer, Receiver};
use crate::harness::*;
use crate::observe::metrics::{scrape, value};

const T: Duration = Duration::from_secs(90);

/// A home whose chain halts for v2 at height 40 (2 s in), both versions serving the RPC (and so
/// the chain's plan) on one port, with `notifiers` (plugins.toml text) and the signing check.
fn notifying_home(notifiers: &str) -> (Home, u16) {
    let mut home = Home::new();
    let (rpc, metrics) = (free_port(), free_port());
    home.set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{rpc}"))
        .set("WASMVISOR_METRICS_ADDRESS", &format!("127.0.0.1:{metrics}"));
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": rpc}),
    );
    home.upgrade("v2", 2, json!({"rpc_port": rpc}));
    home.chain(&[("v2", 40)]);
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            r#"{notifiers}
[[health]]
name = "signing"
path = "bundled:signing"
config = {{ rpc = "http://127.0.0.1:{rpc}", window = "8" }}
interval = "50ms"
"#
        ),
    )
    .unwrap();
    (home, metrics)
}

/// The webhook notifier, shipped beside wasmvisor as a plugin file.
fn webhook() -> String {
    wasm("wasmvisor-plugin-webhook").display().to_string()
}

fn kinds(received: &[crate::harness::receive::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_webhook_posts_a_real_upgrade_s_events_in_order_in_each_format() {
    let webhook = webhook();
    let receiver = Receiver::start(Answer::Status(204, ""));
    let entry = |name: &str, format: &str| {
        format!(
            "[[notifier]]\nname = \"{name}\"\npath = \"{webhook}\"\nconfig = {{ url = \"{}\", format = \"{format}\" }}\nallow-hosts = [\"127.0.0.1:{}\"]\n",
            receiver.url(&format!("/{format}")),
            receiver.port
        )
    };
    let toml = [
        entry("ops", "json"),
        entry("slack", "slack"),
        entry("discord", "discord"),
    ]
    .join("\n");
    let (home, _) = notifying_home(&toml);
    // Far ahead at first, so the planner knows it however loaded the machine; then moved close.
    home.chain(&[("v2", 100_000)]);
    let run = home.run(&[]);
    home.wait_for("the plan-known notice", T, |_| {
        kinds(&receiver.received())
            .iter()
            .any(|k| k == "plan-known")
    });
    let halt = home.height() + 20;
    home.chain(&[("v2", halt)]);
    home.wait_for("the signing-resumed notice", T, |_| {
        kinds(&receiver.received())
            .iter()
            .any(|k| k == "signing-resumed")
    });
    let done = run.stop();
    assert_eq!(done.code(), 0, "{}", done.stderr);
    home.wait_for("the stopping notice", T, |_| {
        kinds(&receiver.received()).iter().any(|k| k == "stopping")
    });
    let all = receiver.received();
    let json: Vec<_> = all.iter().filter(|r| r.path == "/json").cloned().collect();
    let order = kinds(&json);
    let at = |k: &str| {
        order
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("{k} in {order:?}"))
    };
    // The chain's plan, then the upgrade's own events in the order they happened.
    assert!(at("plan-known") < at("upgrade-started"), "{order:?}");
    assert!(at("upgrade-started") < at("phase-done"), "{order:?}");
    assert!(
        at("upgrade-done") > order.iter().rposition(|k| k == "phase-done").unwrap(),
        "{order:?}"
    );
    assert!(
        at("upgrade-done") < at("health-verdict") && at("upgrade-done") < at("signing-resumed")
    );
    assert_eq!(
        order.last().map(String::as_str),
        Some("stopping"),
        "{order:?}"
    );
    let phases: Vec<&str> = json
        .iter()
        .filter(|r| r.json()["event"] == "phase-done")
        .map(|r| r.json()["phase"].as_str().unwrap().to_string().leak() as &str)
        .collect();
    assert_eq!(phases.first(), Some(&"detect"), "{phases:?}");
    assert!(phases.contains(&"swap"), "{phases:?}");
    let started = &json[at("upgrade-started")].json();
    assert_eq!(started["chain"], "sim-1", "{started}");
    assert_eq!(started["daemon"], "simd");
    assert_eq!(started["upgrade"], json!({"name": "v2", "height": halt}));
    assert_eq!(started["to"], "upgrades/v2");
    assert!(
        json.iter()
            .all(|r| r.method == "POST" && r.header("content-type") == Some("application/json"))
    );
    // Slack's and Discord's incoming-webhook payloads: one message per event, each naming the
    // chain, the upgrade and its height.
    for (path, key) in [("/slack", "text"), ("/discord", "content")] {
        let posted: Vec<Value> = all
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.json())
            .collect();
        assert_eq!(posted.len(), json.len(), "{path}: one message per event");
        let text = posted
            .iter()
            .map(|p| p[key].as_str().unwrap().to_string())
            .find(|t| t.contains("the chain halted"))
            .unwrap_or_else(|| panic!("{path}: {posted:?}"));
        assert!(
            text.starts_with("[sim-1 · simd")
                && text.contains(&format!("upgrade v2 at height {halt}")),
            "{text}"
        );
        if path == "/discord" {
            assert!(posted.iter().all(|p| p["username"] == "wasmvisor"));
        } else {
            assert!(
                posted.iter().all(|p| p.as_object().unwrap().len() == 1),
                "{posted:?}"
            );
        }
    }
}

#[test]
fn receivers_that_hang_or_refuse_never_delay_the_upgrade_and_are_counted() {
    let webhook = webhook();
    let hangs = Receiver::start(Answer::Hang);
    let refuses = Receiver::start(Answer::Status(403, "invalid_token"));
    let toml = format!(
        "[[notifier]]\nname = \"hangs\"\npath = \"{webhook}\"\nconfig = {{ url = \"{}\" }}\nallow-hosts = [\"127.0.0.1:{}\"]\n\n[[notifier]]\nname = \"refuses\"\npath = \"{webhook}\"\nconfig = {{ url = \"{}\", format = \"slack\" }}\nallow-hosts = [\"127.0.0.1:{}\"]\n",
        hangs.url("/hook"),
        hangs.port,
        refuses.url("/hook"),
        refuses.port
    );
    let (home, metrics) = notifying_home(&toml);
    let run = home.run(&[]);
    home.wait_height("v2", 45);
    let s = scrape(metrics);
    let stopped = Instant::now();
    let done = run.stop();
    let stop_took = stopped.elapsed();
    // The switch took what it takes without notifiers: a notifier's 4 s is nowhere in it.
    let total = home.journal()["last"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["phase"] != "health")
        .map(|p| p["ms"].as_f64().unwrap())
        .sum::<f64>();
    assert!(total < 3000.0, "the switch took {total} ms");
    let failed = |n| {
        value(
            &s,
            "wasmvisor_notifications_failed_total",
            &[("notifier", n)],
        )
    };
    assert!(
        failed("refuses").is_some_and(|v| v >= 1.0),
        "{:?}",
        failed("refuses")
    );
    assert!(
        done.stderr.contains("answered HTTP 403: invalid_token"),
        "{}",
        done.stderr
    );
    // The hanging receiver holds a backlog; the stop waits the grace, then cuts it.
    assert!(
        done.stderr
            .contains("the notifiers did not finish within 2s"),
        "{}",
        done.stderr
    );
    assert!(stop_took < Duration::from_secs(30), "{stop_took:?}");
    assert!(!hangs.received().is_empty() && !refuses.received().is_empty());
}

#[test]
fn a_receiver_outside_allow_hosts_is_never_contacted() {
    let webhook = webhook();
    let receiver = Receiver::start(Answer::Status(200, "ok"));
    let toml = format!(
        "[[notifier]]\nname = \"elsewhere\"\npath = \"{webhook}\"\nconfig = {{ url = \"{}\" }}\nallow-hosts = [\"hooks.slack.com\"]\n",
        receiver.url("/hook")
    );
    let (home, metrics) = notifying_home(&toml);
    let run = home.run(&[]);
    home.wait_height("v2", 42);
    let s = scrape(metrics);
    let done = run.stop();
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());
    let failed = value(
        &s,
        "wasmvisor_notifications_failed_total",
        &[("notifier", "elsewhere")],
    );
    assert!(failed.is_some_and(|v| v >= 1.0), "{failed:?}");
    assert!(
        done.stderr.contains("not in this plugin's allow-hosts"),
        "{}",
        done.stderr
    );
}

#[test]
fn plugin_call_sends_one_example_notice() {
    let webhook = webhook();
    let receiver = Receiver::start(Answer::Status(200, "ok"));
    let refuses = Receiver::start(Answer::Status(404, "no such hook"));
    let home = Home::new();
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[notifier]]\nname = \"hook\"\npath = \"{webhook}\"\nconfig = {{ url = \"{}\" }}\nallow-hosts = [\"127.0.0.1:{}\"]\n\n[[notifier]]\nname = \"gone\"\npath = \"{webhook}\"\nconfig = {{ url = \"{}\" }}\nallow-hosts = [\"127.0.0.1:{}\"]\n",
            receiver.url("/hook"),
            receiver.port,
            refuses.url("/hook"),
            refuses.port
        ),
    )
    .unwrap();
    let out = home.output(&[
        "plugin",
        "call",
        "notifier",
        "hook",
        "--event",
        "upgrade-started",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["delivered"], "upgrade-started", "{answer}");
    let posted = receiver.received()[0].json();
    assert_eq!(posted["event"], "upgrade-started");
    assert_eq!(posted["daemon"], "simd");

    let out = home.output(&["plugin", "call", "notifier", "gone", "--event", "stopping"]);
    assert_eq!(out.status.code(), Some(3));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 404: no such hook"),
        "{answer}"
    );

    let out = home.output(&["plugin", "call", "notifier", "hook", "--event", "party"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown --event \"party\"") && err.contains("signing-resumed"),
        "{err}"
    );

    let listed = String::from_utf8_lossy(&home.output(&["plugin", "list"]).stdout).into_owned();
    assert!(
        listed.contains("notifier") && listed.contains("hook"),
        "{listed}"
    );
}

/// The Python PagerDuty notifier in a real upgrade whose validator never signs: the readiness
/// page resolved when the new binary runs, the upgrade's page triggered by the unhealthy verdict,
/// the routing key from a granted variable; PagerDuty's own refusal said as PagerDuty says it.
#[test]
fn the_python_pagerduty_notifier_pages_an_unhealthy_upgrade() {
    let accepts = Receiver::start(Answer::Status(
        202,
        r#"{"status":"success","message":"Event processed","dedup_key":"k"}"#,
    ));
    let refuses = Receiver::start(Answer::Status(
        400,
        r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#,
    ));
    let entry = |name: &str, url: String| {
        format!(
            "[[notifier]]\nname = \"{name}\"\npath = \"{}\"\nconfig = {{ url = \"{url}\" }}\nenv = [\"PAGERDUTY_ROUTING_KEY\"]\nallow-hosts = [\"{}\"]\n",
            guest("pagerduty").display(),
            url.split('/').nth(2).unwrap()
        )
    };
    let toml = entry("pagerduty", accepts.url("/v2/enqueue"))
        + "\n"
        + &entry("bad-key", refuses.url("/v2/enqueue"));
    let (mut home, _) = notifying_home(&toml);
    home.set("PAGERDUTY_ROUTING_KEY", "R0UT1NGKEY0000000000000000000000");
    home.upgrade(
        "v2",
        2,
        json!({"rpc_port": rpc_port(&home), "signs": false}),
    );
    let run = home.run(&[]);
    home.wait_for("the unhealthy page", T, |_| {
        accepts
            .received()
            .iter()
            .any(|r| r.json()["event_action"] == "trigger")
    });
    let done = run.stop();
    let events: Vec<Value> = accepts.received().iter().map(|r| r.json()).collect();
    let resolve = events
        .iter()
        .position(|e| {
            e["event_action"] == "resolve"
                && e["dedup_key"].as_str().unwrap().ends_with("/v2/ready")
        })
        .unwrap_or_else(|| panic!("{events:?}"));
    let trigger = events
        .iter()
        .position(|e| e["event_action"] == "trigger")
        .unwrap();
    assert!(resolve < trigger, "{events:?}");
    let page = &events[trigger];
    assert_eq!(page["routing_key"], "R0UT1NGKEY0000000000000000000000");
    assert!(
        page["dedup_key"]
            .as_str()
            .unwrap()
            .starts_with("wasmvisor/sim-1/"),
        "{page}"
    );
    assert!(
        page["dedup_key"].as_str().unwrap().ends_with("/v2/upgrade"),
        "{page}"
    );
    let payload = &page["payload"];
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["group"], "sim-1");
    assert_eq!(payload["component"], "simd");
    let summary = payload["summary"].as_str().unwrap();
    assert!(
        summary.contains("upgrade v2 at height 40: UNHEALTHY (warn): signing: validator"),
        "{summary}"
    );
    assert!(
        payload["timestamp"].as_str().unwrap().ends_with("+00:00"),
        "{payload}"
    );
    assert!(
        done.stderr.contains(
            "answered HTTP 400: Event object is invalid; Length of 'routing_key' is incorrect"
        ),
        "{}",
        done.stderr
    );
}

/// The RPC port `notifying_home` gave the chain.
fn rpc_port(home: &Home) -> u16 {
    home.env
        .iter()
        .find(|(k, _)| k == "WASMVISOR_RPC_ADDRESS")
        .and_then(|(_, v)| v.rsplit(':').next()?.parse().ok())
        .unwrap()
}
