//! The other bundled plugins and the plugin commands: the chain registry, the allowlist policy,
//! the cometbft health check, `plugin list`/`check`, and `prepare-upgrade` before the halt.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::serve::Server;
use crate::harness::*;

use super::{phases, status, stderr};

/// plugins.toml for the registry + mirror + health test.
fn registry_setup(home: &Home, port: u16, allow_sha: Option<&str>) -> (Vec<u8>, PathBuf) {
    let archive = sim_archive(
        home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2", "rpc_port": port}),
    );
    let registry = home.path.join("registry");
    let mirror = home.path.join("mirror");
    std::fs::create_dir_all(&registry).unwrap();
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("simd-v2-linux.tar.gz"), &archive).unwrap();
    let url = format!(
        "https://releases.example.invalid/v2/simd-v2-linux.tar.gz?checksum=sha256:{}",
        sha256(&archive)
    );
    std::fs::write(
        registry.join("chain.json"),
        json!({"chain_name": "sim", "codebase": {"versions": [
            {"name": "v1", "binaries": {}},
            {"name": "v2", "binaries": {platform(): url}},
        ]}})
        .to_string(),
    )
    .unwrap();
    let allow = allow_sha.map_or(String::new(), |sha| {
        format!(
            "[[resolver]]\nname = \"allow\"\npath = \"{}\"\nconfig = {{ sha256 = \"{sha}\" }}\n",
            wasm("wasmvisor-plugin-allowlist").display()
        )
    });
    let toml = format!(
        r#"
[[resolver]]
name = "registry"
path = "{registry_wasm}"
config = {{ chain-json = "/registry/chain.json" }}
dirs = [["{registry}", "/registry"]]
{allow}
[[source]]
name = "mirror"
path = "{mirror_wasm}"
dirs = [["{mirror}", "/mirror"]]

[[health]]
name = "cometbft"
path = "{health_wasm}"
config = {{ rpc = "http://127.0.0.1:{port}", blocks = "2" }}
allow-hosts = ["127.0.0.1:{port}"]
interval = "100ms"
deadline = "30s"
"#,
        registry_wasm = wasm("wasmvisor-plugin-chain-registry").display(),
        registry = registry.display(),
        mirror_wasm = wasm("wasmvisor-plugin-local-mirror").display(),
        mirror = mirror.display(),
        health_wasm = wasm("wasmvisor-plugin-cometbft").display(),
    );
    let file = home.root().join("plugins.toml");
    std::fs::write(&file, toml).unwrap();
    (archive, file)
}

#[test]
fn chain_registry_resolver_local_mirror_source_and_cometbft_health() {
    let mut home = Home::new();
    let port = free_port();
    home.set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{port}"));
    let (archive, _) = registry_setup(&home, port, None);
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": port}),
    );
    home.chain(&[("v2", 3)]);
    let run = home.run(&[]);
    home.wait_for("the health verdict", Duration::from_secs(30), |h| {
        status(h)["last_upgrade"]["health"].is_object()
    });
    let out = run.stop();
    let s = status(&home);
    let health = &s["last_upgrade"]["health"];
    assert_eq!(health["healthy"], true, "{health}\n{}", out.stderr);
    assert!(
        health["detail"]
            .as_str()
            .unwrap()
            .contains("not catching up"),
        "{health}"
    );
    assert_eq!(home.history()[0], ("genesis".into(), 1, 2));
    assert_eq!(home.history()[1].1, 3);
    // What the mirror served, unpacked: the archive's bin/simd, and nothing else.
    assert_eq!(
        std::fs::read(home.root().join("upgrades/v2/bin/simd")).unwrap(),
        std::fs::read(home.path.join("pkg/v2/bin/simd")).unwrap()
    );
    assert!(phases(&home).contains(&"health".to_string()));
    assert!(
        out.stderr.contains("upgraded node is healthy"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(home.path.join("mirror/simd-v2-linux.tar.gz")).unwrap(),
        archive,
        "the mirror's archive was the one the registry's checksum names"
    );
}

#[test]
fn the_allowlist_policy_accepts_listed_digests_and_refuses_others() {
    let home = Home::new();
    let port = free_port();
    let (archive, file) = registry_setup(&home, port, Some(&sha256(b"not it")));
    std::fs::write(
        home.path.join("plan.json"),
        json!({"name": "v2", "height": 3, "info": ""}).to_string(),
    )
    .unwrap();
    let plan = home.path.join("plan.json");
    let call = |home: &Home| {
        home.output(&[
            "plugin",
            "call",
            "resolver",
            "allow",
            "--plan",
            plan.to_str().unwrap(),
        ])
    };
    let out = call(&home);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["decision"], "refuse", "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("allowlist"));

    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(&sha256(b"not it"), &sha256(&archive))).unwrap();
    let out = call(&home);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["decision"], "fetch", "{answer}");

    // In a real upgrade, a refusal stops before the switch.
    std::fs::write(&file, text).unwrap();
    home.chain(&[("v2", 3)]);
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1);
    assert!(
        done.stderr.contains("resolver allow refused"),
        "{}",
        done.stderr
    );
    assert_eq!(home.current(), "genesis");
}

#[test]
fn plugin_commands_list_check_and_report_bad_configuration() {
    let home = Home::new();
    let out = home.output(&["plugin", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bundled:cosmovisor") && text.contains("bundled:http"),
        "{text}"
    );
    let out = home.output(&["plugin", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 plugin(s) ready"));

    std::fs::write(
        home.root().join("plugins.toml"),
        "[[resolver]]\npath = \"bundled:nope\"\nmemory = \"lots\"\n[[source]]\npath = \"x.wasm\"\nbogus = 1\n",
    )
    .unwrap();
    let out = home.output(&["plugin", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("plugins.toml"), "{err}");
    let done = home.run(&[]).finish(Duration::from_secs(20));
    assert_eq!(
        done.code(),
        1,
        "a broken plugin configuration stops wasmvisor before any launch"
    );
    assert!(home.events_of("start").is_empty());
}

#[test]
fn prepare_upgrade_stages_the_binary_before_the_halt() {
    let server = Server::start();
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true")
        .set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{}", free_port()))
        .set(
            "WASMVISOR_RPC_ADDRESS",
            &format!("http://127.0.0.1:{}", free_port()),
        );
    // No node to ask, nothing pending: the error names both addresses.
    let out = home.output(&["prepare-upgrade"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("answers neither on gRPC at 127.0.0.1:")
            && stderr(&out).contains("DAEMON_GRPC_ADDRESS")
            && stderr(&out).contains("WASMVISOR_RPC_ADDRESS"),
        "{}",
        stderr(&out)
    );

    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
    );
    server.put("/simd-v2.tar.gz", archive.clone());
    let url = format!(
        "{}?checksum=sha256:{}",
        server.url("/simd-v2.tar.gz"),
        sha256(&archive)
    );
    plan_with_binary(&home, "v2", 3, &url);
    let info = json!({"binaries": {platform(): url}}).to_string();
    let plan = home.path.join("plan.json");
    std::fs::write(
        &plan,
        json!({"name": "v2", "height": 3, "info": info}).to_string(),
    )
    .unwrap();
    let out = home.output(&["prepare-upgrade", "--plan", plan.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("downloaded, verified and staged"));
    assert!(home.root().join("upgrades/v2/bin/simd").is_file());
    let requests = server.log().len();

    // The upgrade itself finds the binary staged: nothing is fetched on the hot path.
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();
    assert_eq!(server.log().len(), requests);
    assert!(!phases(&home).contains(&"fetch".to_string()));
}

#[test]
fn an_unhealthy_upgrade_is_recorded_and_can_stop_wasmvisor() {
    let mut home = Home::new();
    let port = free_port();
    home.set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{port}"));
    home.upgrade("v2", 2, json!({"rpc_port": port}));
    home.chain(&[("v2", 3)]);
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            r#"[[health]]
name = "cometbft"
path = "{}"
config = {{ rpc = "http://127.0.0.1:{port}", network = "another-chain-1" }}
allow-hosts = ["127.0.0.1:{port}"]
interval = "50ms"
deadline = "20s"
on-unhealthy = "exit"
"#,
            wasm("wasmvisor-plugin-cometbft").display()
        ),
    )
    .unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 3, "{}", done.stderr);
    assert!(done.stderr.contains("UNHEALTHY"), "{}", done.stderr);
    let s = status(&home);
    assert_eq!(s["last_upgrade"]["health"]["healthy"], false, "{s}");
    assert!(
        s["last_upgrade"]["health"]["detail"]
            .as_str()
            .unwrap()
            .contains("another-chain-1"),
        "{s}"
    );
    assert_eq!(home.current(), "upgrades/v2", "the switch itself stands");
    let text = String::from_utf8_lossy(&home.output(&["status"]).stdout).into_owned();
    assert!(text.contains("UNHEALTHY"), "{text}");
}

/// A health check whose endpoint never answers is told its request timed out a little before
/// its own deadline, and answers `pending` in its own words instead of being stopped.
#[test]
fn a_hung_endpoint_is_a_health_check_s_pending_not_its_deadline() {
    let hangs = crate::harness::receive::Receiver::start(crate::harness::receive::Answer::Hang);
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[health]]\nname = \"cometbft\"\npath = \"{}\"\nconfig = {{ rpc = \"{}\" }}\nallow-hosts = [\"127.0.0.1:{}\"]\ntimeout = \"2s\"\ninterval = \"100ms\"\ndeadline = \"5s\"\n",
            wasm("wasmvisor-plugin-cometbft").display(),
            hangs.url(""),
            hangs.port
        ),
    )
    .unwrap();
    let run = home.run(&[]);
    home.wait_for("the verdict", Duration::from_secs(60), |h| {
        h.journal()["last"]["health"].is_object()
    });
    let done = run.stop();
    let detail = home.journal()["last"]["health"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("no healthy answer within 5s; last: "),
        "{detail}"
    );
    assert!(
        detail.contains(&hangs.url("/status")),
        "the plugin's own words: {detail}"
    );
    assert!(
        !done.stderr.contains("exceeded its time limit"),
        "{}",
        done.stderr
    );
}
