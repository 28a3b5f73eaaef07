//! Plugins written in JavaScript (componentize-js) and Python (componentize-py), built by
//! `plugins/build-guests`, in real upgrades: the maintenance-window resolver and the app-version
//! health check, loaded beside the Rust plugins, compiled in the background while the node runs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::harness::{Home, free_port, guest, sha256};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn status(home: &Home) -> Value {
    serde_json::from_slice(&home.output(&["status", "--json"]).stdout).unwrap_or(Value::Null)
}

/// The window as `HH:MM` settings: `from_now` hours from the current UTC hour, one hour long.
fn window_hours(from_now: u64) -> (String, String) {
    let hour = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        % 24;
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
    let plan = home.path.join("plan.json");
    std::fs::write(&plan, json!({"name": "v2", "height": 3}).to_string()).unwrap();
    let out = home.output(&[
        "plugin",
        "call",
        "resolver",
        "window",
        "--plan",
        plan.to_str().unwrap(),
    ]);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{answer} {}", stderr(&out));
    assert_eq!(answer["decision"], "use-staged", "{answer}");
    let not_before = &answer["not_before"];
    assert_eq!(not_before["by"], "window", "{answer}");
    let at = not_before["at"].as_u64().unwrap();
    assert_eq!(at % 3600, 0, "a window opens on the hour: {answer}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
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
    let out = home.output(&[
        "plugin",
        "call",
        "resolver",
        "window",
        "--plan",
        plan.to_str().unwrap(),
    ]);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(3), "{answer}");
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
