//! Plugins written in JavaScript (componentize-js) and Python (componentize-py), built by
//! `plugins/build-guests`, in real upgrades: the maintenance-window resolver and the app-version
//! health check, loaded beside the Rust plugins, compiled in the background while the node runs.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::serve::Server;
use crate::harness::{Home, free_port, guest, now_unix, sha256};

fn status(home: &Home) -> Value {
    serde_json::from_slice(&home.output(&["status", "--json"]).stdout).unwrap_or(Value::Null)
}

/// The window as `HH:MM` settings: `from_now` hours from the current UTC hour, one hour long.
fn window_hours(from_now: u64) -> (String, String) {
    let hour = now_unix() / 3600 % 24;
    let start = (hour + from_now) % 24;
    (
        format!("{start:02}:00"),
        format!("{:02}:00", (start + 1) % 24),
    )
}

/// genesis and v2 serving CometBFT's RPC on one port, which is returned.
fn with_rpc(home: &Home) -> u16 {
    let port = free_port();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port}),
    );
    home.upgrade("v2", 2, json!({"rpc_port": port}));
    port
}

fn health_entry(port: u16, expect: &str) -> String {
    format!(
        "[[health]]\nname = \"app-version\"\npath = \"{}\"\nconfig = {{ rpc = \"http://127.0.0.1:{port}\", expect = \"{expect}\", blocks = 2 }}\nallow-hosts = [\"127.0.0.1:{port}\"]\ninterval = \"200ms\"\ndeadline = \"60s\"\ntimeout = \"20s\"\n",
        guest("app_version").display()
    )
}

#[test]
fn a_javascript_window_and_a_python_health_check_run_a_real_upgrade() {
    let mut home = Home::new();
    // A cache of its own: both components are compiled during this test, not before it.
    let cache = home.path.join("cache");
    home.set("WASMVISOR_PLUGIN_CACHE", cache.to_str().unwrap());
    let port = with_rpc(&home);
    home.chain(&[("v2", 40)]);
    // A window open now: from the current hour, for one hour… unless the hour ends during the
    // test; a window of the whole day is the same test without that edge.
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n[[resolver]]\nname = \"window\"\npath = \"{}\"\nconfig = {{ start = \"00:00\", end = \"24:00\" }}\ntimeout = \"20s\"\n{}",
            guest("window").display(),
            health_entry(port, "v2")
        ),
    )
    .unwrap();
    let digests: Vec<String> = ["window", "app_version"]
        .iter()
        .map(|n| sha256(&std::fs::read(guest(n)).unwrap())[..32].to_string())
        .collect();
    let compiled = |digest: &str| {
        std::fs::read_dir(&cache)
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().contains(digest))
            })
            .unwrap_or(false)
    };

    let run = home.run(&[]);
    // The node runs while the two large components are still compiling: their compilation
    // (seconds each) does not hold its launch.
    home.wait_height("genesis", 1);
    assert!(
        !compiled(&digests[0]) || !compiled(&digests[1]),
        "the node was launched only after both compilations ended"
    );
    home.wait_for("the health verdict", Duration::from_secs(180), |h| {
        status(h)["last_upgrade"]["health"].is_object()
    });
    let done = run.stop();
    let health = &status(&home)["last_upgrade"]["health"];
    assert_eq!(health["healthy"], true, "{health}\n{}", done.stderr);
    assert!(
        health["detail"]
            .as_str()
            .unwrap()
            .contains("app version v2"),
        "{health}"
    );
    assert!(
        done.stderr.contains("upgrade v2: inside the window"),
        "the JavaScript resolver's console.log reaches the log: {}",
        done.stderr
    );
    assert_eq!(home.history()[1].0, "v2");
    assert!(compiled(&digests[0]) && compiled(&digests[1]));
}

#[test]
fn outside_its_window_the_javascript_resolver_defers_to_the_next_start() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    let (start, end) = window_hours(2);
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n[[resolver]]\nname = \"window\"\npath = \"{}\"\nconfig = {{ days = \"mon,tue,wed,thu,fri,sat,sun\", start = \"{start}\", end = \"{end}\" }}\ntimeout = \"20s\"\n",
            guest("window").display(),
        ),
    )
    .unwrap();
    let plan = home.plan_file("v2");
    let (code, answer, err) = home.plugin_call("resolver", "window", &plan);
    assert_eq!(code, Some(0), "{answer} {err}");
    assert_eq!(answer["decision"], "use-staged", "{answer}");
    let not_before = &answer["not_before"];
    assert_eq!(not_before["by"], "window", "{answer}");
    let at = not_before["at"].as_u64().unwrap();
    assert_eq!(at % 3600, 0, "a window opens on the hour: {answer}");
    let now = now_unix();
    assert!(
        at > now + 3600 && at <= now + 2 * 3600,
        "the next start is two hours from this one: {answer}"
    );
    assert!(
        not_before["time"]
            .as_str()
            .unwrap()
            .contains(&format!("T{start}:00Z")),
        "{answer}"
    );

    // A setting it cannot read is a refusal that says which.
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[resolver]]\nname = \"window\"\npath = \"{}\"\nconfig = {{ start = \"25:00\" }}\ntimeout = \"20s\"\n",
            guest("window").display(),
        ),
    )
    .unwrap();
    let (code, answer, _) = home.plugin_call("resolver", "window", &plan);
    assert_eq!(code, Some(3), "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("start \"25:00\""),
        "{answer}"
    );
}

#[test]
fn the_python_health_check_finds_the_wrong_binary() {
    let mut home = Home::new();
    home.set("WASMVISOR_ON_FAILED_UPGRADE", "exit");
    let port = with_rpc(&home);
    home.chain(&[("v2", 3)]);
    std::fs::write(
        home.root().join("plugins.toml"),
        format!("{}on-unhealthy = \"exit\"\n", health_entry(port, "v2.1.0")),
    )
    .unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(180));
    assert_eq!(done.code(), 3, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("the app reports version 'v2', not 'v2.1.0': the wrong binary runs"),
        "{}",
        done.stderr
    );
}

/// Asks the window resolver about plan v2 with `config` and `extra` plugins.toml lines; returns
/// what `plugin call` returned and how long the call took.
fn ask_window(home: &Home, config: &str, extra: &str) -> (Option<i32>, Value, String, Duration) {
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n[[resolver]]\nname = \"window\"\npath = \"{}\"\nconfig = {{ {config} }}\ntimeout = \"30s\"\n{extra}",
            guest("window").display(),
        ),
    )
    .unwrap();
    let plan = home.plan_file("v2");
    let started = std::time::Instant::now();
    let (code, answer, err) = home.plugin_call("resolver", "window", &plan);
    (code, answer, err, started.elapsed())
}

#[test]
fn the_javascript_window_reads_a_shared_calendar_with_fetch_over_wasi_http() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    let server = Server::start();
    let allow = format!("allow-hosts = [\"127.0.0.1:{}\"]\n", server.port);
    let calendar = format!("calendar = \"{}\"", server.url("/window.json"));

    // A change freeze in the calendar holds the upgrade until its end, whatever the window.
    let end = (now_unix() / 86_400 + 30) * 86_400;
    let day = time::OffsetDateTime::from_unix_timestamp(end as i64).unwrap();
    let freeze = format!(
        "{:04}-{:02}-{:02}T00:00:00Z",
        day.year(),
        day.month() as u8,
        day.day()
    );
    server.put(
        "/window.json",
        json!({"start": "00:00", "end": "24:00", "freeze-until": freeze})
            .to_string()
            .into_bytes(),
    );
    let (code, answer, err, _) = ask_window(&home, &calendar, &allow);
    assert_eq!(code, Some(0), "{answer} {err}");
    assert_eq!(answer["decision"], "use-staged", "{answer}");
    assert_eq!(answer["not_before"]["at"], end, "{answer}");
    assert!(
        answer["not_before"]["reason"]
            .as_str()
            .unwrap()
            .contains("change freeze"),
        "{answer}"
    );

    // One to the year 2099 (a typo, or "never"): refused, the plugin named, the node not left
    // halted for decades.
    server.put(
        "/window.json",
        json!({"start": "00:00", "end": "24:00", "freeze-until": "2099-01-01T00:00:00Z"})
            .to_string()
            .into_bytes(),
    );
    let (code, answer, err, _) = ask_window(&home, &calendar, &allow);
    assert_ne!(code, Some(0), "{answer} {err}");
    assert!(
        err.contains("plugin window")
            && err.contains("2099-01-01T00:00:00Z, more than a year ahead"),
        "{err}"
    );

    // The calendar's window replaces the settings' (a window that is never open now).
    server.put(
        "/window.json",
        json!({"start": "00:00", "end": "24:00"})
            .to_string()
            .into_bytes(),
    );
    let (start, end) = window_hours(2);
    let (code, answer, err, _) = ask_window(
        &home,
        &format!("{calendar}, start = \"{start}\", end = \"{end}\""),
        &allow,
    );
    assert_eq!(code, Some(0), "{answer} {err}");
    assert_eq!(answer["decision"], "use-staged", "{answer}");
    assert!(
        answer["not_before"].is_null(),
        "inside the calendar's window: {answer}"
    );
    assert_eq!(server.log().len(), 3, "one GET per ask: {:?}", server.log());
}

#[test]
fn wasi_http_requests_keep_the_hosts_redirects_and_timeouts_of_the_plugin() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    let server = Server::start();
    server.put("/window.json", b"{}".to_vec());
    let calendar = format!("calendar = \"{}\"", server.url("/window.json"));
    let unreadable = |answer: &Value, why: &str| {
        let reason = answer["not_before"]["reason"].as_str().unwrap_or("");
        assert!(
            reason.contains("cannot be read") && reason.contains(why),
            "{why}: {answer}"
        );
        let now = now_unix();
        let at = answer["not_before"]["at"].as_u64().unwrap();
        assert!(
            at > now + 200 && at <= now + 300,
            "asks again in 5 minutes: {answer}"
        );
    };

    // A host outside allow-hosts is never contacted.
    let (code, answer, err, _) = ask_window(&home, &calendar, "allow-hosts = [\"127.0.0.1:1\"]\n");
    assert_eq!(code, Some(0), "{answer} {err}");
    unreadable(&answer, "");
    assert!(server.log().is_empty(), "{:?}", server.log());

    let allow = format!("allow-hosts = [\"127.0.0.1:{}\"]\n", server.port);
    // A redirect is not followed: the plugin sees it (and this one treats it as unreadable).
    server.put("/moved.json", b"{}".to_vec());
    server.redirect("/window.json", "/moved.json");
    let (_, answer, _, _) = ask_window(&home, &calendar, &allow);
    unreadable(&answer, "HTTP 30");
    assert_eq!(server.log().len(), 1, "{:?}", server.log());

    // A body that stalls fails after the plugin's idle-timeout, long before its deadline.
    let stalled = format!("calendar = \"{}\"", server.url("/stalled.json"));
    server.put(
        "/stalled.json",
        br#"{"start": "00:00", "end": "24:00"}"#.to_vec(),
    );
    server.stall("/stalled.json", 5, usize::MAX);
    let (_, answer, _, took) =
        ask_window(&home, &stalled, &format!("{allow}idle-timeout = \"1s\"\n"));
    unreadable(&answer, "");
    assert!(took < Duration::from_secs(20), "took {took:?}: {answer}");

    // With a longer idle-timeout, the call's deadline ends the request: the call returns.
    let (_, answer, _, took) =
        ask_window(&home, &stalled, &format!("{allow}idle-timeout = \"10m\"\n"));
    assert!(
        took < Duration::from_secs(60),
        "a stalled request outlived the call's 30 s deadline: {took:?} {answer}"
    );
}

#[test]
fn the_python_health_check_reaches_only_its_allowed_hosts_over_wasi_http() {
    let home = Home::new();
    let server = Server::start();
    server.put(
        "/abci_info",
        json!({"result": {"response": {"version": "v2", "last_block_height": "1000"}}})
            .to_string()
            .into_bytes(),
    );
    let plan = home.plan_file("v2");
    let ask = |allow: &str| {
        std::fs::write(
            home.root().join("plugins.toml"),
            format!(
                "[[health]]\nname = \"app-version\"\npath = \"{}\"\nconfig = {{ rpc = \"{}\", blocks = 2 }}\nallow-hosts = [\"{allow}\"]\ntimeout = \"30s\"\n",
                guest("app_version").display(),
                server.url(""),
            ),
        )
        .unwrap();
        let (_, answer, err) = home.plugin_call("health", "app-version", &plan);
        (answer, err)
    };
    let (answer, err) = ask("127.0.0.1:1");
    let pending = answer["pending"].as_str().unwrap_or_default();
    assert!(
        pending.contains("not in this plugin's allow-hosts"),
        "{answer} {err}"
    );
    assert!(server.log().is_empty(), "{:?}", server.log());
    let (answer, err) = ask(&format!("127.0.0.1:{}", server.port));
    assert!(
        answer["healthy"]
            .as_str()
            .is_some_and(|h| h.contains("app version v2 at height 1000")),
        "{answer} {err}"
    );
    assert_eq!(server.log().len(), 1, "{:?}", server.log());
}

#[test]
fn a_stalled_wasi_http_request_does_not_hold_up_a_stop() {
    let server = Server::start();
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    server.put(
        "/window.json",
        br#"{"start": "00:00", "end": "24:00"}"#.to_vec(),
    );
    server.stall("/window.json", 5, usize::MAX);
    // Neither its idle-timeout nor its deadline would end the request for ten minutes.
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n[[resolver]]\nname = \"window\"\npath = \"{}\"\nconfig = {{ calendar = \"{}\" }}\nallow-hosts = [\"127.0.0.1:{}\"]\ntimeout = \"10m\"\nidle-timeout = \"10m\"\n",
            guest("window").display(),
            server.url("/window.json"),
            server.port
        ),
    )
    .unwrap();
    let run = home.run(&[]);
    // At the upgrade the resolver asks for the calendar and waits on its stalled body.
    home.wait_for(
        "the resolver's request for the calendar",
        Duration::from_secs(180),
        |_| !server.log().is_empty(),
    );
    let asked = std::time::Instant::now();
    let out = run.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the stop took {:?}: {}",
        asked.elapsed(),
        out.stderr
    );
    assert_eq!(out.code(), 143, "{}", out.stderr);
    assert_eq!(home.current(), "genesis", "nothing switched");
}
