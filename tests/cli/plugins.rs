//! The plugin path end to end: binaries downloaded by the bundled plugins from a server on
//! 127.0.0.1, the chain-registry + local-mirror + cometbft plugins, and hostile plugins.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::serve::Server;
use crate::harness::*;

fn status(home: &Home) -> Value {
    let out = home.output(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn phases(home: &Home) -> Vec<String> {
    status(home)["last_upgrade"]["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["phase"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn bundled_plugins_download_verify_and_install_the_upgrade_binary() {
    let server = Server::start();
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true")
        .set("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM", "true");
    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
    );
    server.put("/releases/simd-v2.tar.gz", archive.clone());
    // Through a redirect, as release hosts do.
    server.redirect("/download/v2", "/releases/simd-v2.tar.gz");
    let url = format!(
        "{}?checksum=sha256:{}",
        server.url("/download/v2"),
        sha256(&archive)
    );
    plan_with_binary(&home, "v2", 3, &url);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let out = run.stop();
    assert_eq!(
        home.history()[0],
        ("genesis".into(), 1, 2),
        "{}",
        out.stderr
    );
    assert_eq!(home.history()[1].1, 3);
    assert_eq!(home.current(), "upgrades/v2");
    let binary = home.root().join("upgrades/v2/bin/simd");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&binary).unwrap().permissions().mode() & 0o111,
        0o111
    );
    assert!(
        phases(&home).contains(&"fetch".to_string()),
        "{:?}",
        phases(&home)
    );
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.starts_with("/releases/simd-v2.tar.gz"))
    );
    assert!(
        !home.root().join(".wasmvisor-downloads/v2").exists(),
        "the partial download is cleaned up"
    );
}

#[test]
fn a_wrong_checksum_is_refused_and_nothing_is_installed() {
    let server = Server::start();
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
    );
    server.put("/simd-v2.tar.gz", archive);
    let wrong = sha256(b"something else");
    plan_with_binary(
        &home,
        "v2",
        3,
        &format!("{}?checksum=sha256:{wrong}", server.url("/simd-v2.tar.gz")),
    );
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("checksum mismatch"), "{}", done.stderr);
    assert!(done.stderr.contains(&wrong), "{}", done.stderr);
    assert!(!home.root().join("upgrades/v2/bin/simd").exists());
    assert_eq!(home.current(), "genesis");
    assert_eq!(
        home.history().len(),
        1,
        "the old binary never ran past the halt"
    );
    let leftovers: Vec<_> = std::fs::read_dir(home.root().join(".wasmvisor-downloads/v2"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn downloads_retry_and_resume_where_they_stopped() {
    let server = Server::start();
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let archive = sim_archive_with_payload(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
        64 * 1024,
    );
    assert!(archive.len() > 4000);
    server.put("/simd-v2.tar.gz", archive.clone());
    server.unavailable(1);
    server.cut_once("/simd-v2.tar.gz", 2048);
    let url = format!(
        "{}?checksum=sha256:{}",
        server.url("/simd-v2.tar.gz"),
        sha256(&archive)
    );
    plan_with_binary(&home, "v2", 3, &url);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let out = run.stop();
    let log = server.log();
    assert!(log.len() >= 3, "{log:?}\n{}", out.stderr);
    assert!(
        log.iter().any(|l| l.contains("range=Some(2048)")),
        "the third request resumes at the cut: {log:?}\n{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(home.root().join("upgrades/v2/lib/payload"))
            .unwrap()
            .len(),
        64 * 1024,
        "the archive's other files are installed beside bin/"
    );
}

#[test]
fn downloads_need_permission_and_a_checksum_when_required() {
    let server = Server::start();
    let mut home = Home::new();
    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
    );
    server.put("/simd-v2.tar.gz", archive);
    plan_with_binary(&home, "v2", 3, &server.url("/simd-v2.tar.gz"));
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1);
    assert!(
        done.stderr.contains("DAEMON_ALLOW_DOWNLOAD_BINARIES"),
        "{}",
        done.stderr
    );

    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true")
        .set("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM", "true");
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1);
    assert!(
        done.stderr.contains("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM"),
        "{}",
        done.stderr
    );
    assert!(
        server.log().is_empty(),
        "nothing was downloaded: {:?}",
        server.log()
    );
    assert_eq!(home.current(), "genesis");
}

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

/// Writes a plugins.toml with one resolver and calls it with `plugin call`.
fn call_hostile(home: &Home, entry: &str) -> (std::process::Output, Duration) {
    let file = home.path.join("hostile.toml");
    std::fs::write(&file, format!("[[resolver]]\nname = \"it\"\n{entry}\n")).unwrap();
    let plan = home.path.join("plan.json");
    std::fs::write(&plan, json!({"name": "v2", "height": 3}).to_string()).unwrap();
    let started = Instant::now();
    let out = home.output(&[
        "plugin",
        "call",
        "resolver",
        "it",
        "--plugins",
        file.to_str().unwrap(),
        "--plan",
        plan.to_str().unwrap(),
    ]);
    (out, started.elapsed())
}

fn hostile(mode: &str, extra: &str) -> String {
    format!(
        "path = \"{}\"\nconfig = {{ mode = \"{mode}\" }}\n{extra}",
        wasm("wasmvisor-fixture-hostile").display()
    )
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn hostile_plugins_are_contained_and_reported() {
    let home = Home::new();
    let cases: &[(&str, &str, &str)] = &[
        ("loop", "timeout = \"1s\"", "time limit of 1s"),
        (
            "memory",
            "memory = \"16MiB\"",
            "memory limit of 16777216 bytes",
        ),
        ("recursion", "", "overflowed its own stack"),
        ("huge-output", "", "answer wasmvisor cannot use"),
        ("trap", "", "unreachable"),
        // What the panic printed is quoted: the operator sees why.
        ("trap", "", "it wrote: thread '<unnamed>'"),
        ("trap", "", "a plugin that panics"),
    ];
    for (mode, extra, expected) in cases {
        let (out, took) = call_hostile(&home, &hostile(mode, extra));
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("plugin it (resolver)"), "{mode}: {err}");
        assert!(
            err.contains(expected),
            "{mode}: expected {expected:?} in {err}"
        );
        assert!(took < Duration::from_secs(20), "{mode} took {took:?}");
    }
}

#[test]
fn hostile_plugins_get_no_files_or_hosts_they_were_not_granted() {
    let home = Home::new();
    let server = Server::start();
    server.put("/secret", b"secret".to_vec());
    let secret = home.path.join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    let (out, _) = call_hostile(
        &home,
        &format!(
            "path = \"{}\"\nconfig = {{ mode = \"read-file\", path = \"{}\" }}",
            wasm("wasmvisor-fixture-hostile").display(),
            secret.display()
        ),
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(answer["decision"], "refuse", "{answer} {}", stderr(&out));
    assert!(
        answer["reason"].as_str().unwrap().contains("read denied"),
        "{answer}"
    );

    let (out, _) = call_hostile(
        &home,
        &format!(
            "path = \"{}\"\nconfig = {{ mode = \"http\", url = \"{}\" }}\nallow-hosts = [\"example.com\"]",
            wasm("wasmvisor-fixture-hostile").display(),
            server.url("/secret")
        ),
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        answer["reason"].as_str().unwrap_or("").contains("Denied"),
        "{answer}"
    );
    assert!(server.log().is_empty(), "no request reached the server");

    let (out, _) = call_hostile(&home, &hostile("log-flood", ""));
    // It answers with a refusal: `plugin call` says so with its status.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("dropped"), "{}", stderr(&out));
    assert!(stderr(&out).len() < 256 * 1024, "the log stays bounded");
}

/// A server on 127.0.0.1 that keeps the head of every request it gets and answers 200 "ok".
fn recording_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let shared = heads.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            shared.lock().unwrap().push(head);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, heads)
}

#[test]
fn a_plugin_cannot_set_the_host_or_connection_headers_of_its_requests() {
    let home = Home::new();
    let (port, heads) = recording_server();
    let entry = |headers: &[&str]| {
        format!(
            "path = \"{}\"\nconfig = {{ mode = \"http\", url = \"http://127.0.0.1:{port}/x\", header = {headers:?} }}\nallow-hosts = [\"127.0.0.1:{port}\"]\ntimeout = \"20s\"",
            wasm("wasmvisor-fixture-hostile").display(),
        )
    };
    for (forbidden, name) in [
        ("Host: other.example", "Host"),
        ("content-length: 40", "content-length"),
        ("Transfer-Encoding: chunked", "Transfer-Encoding"),
        ("Connection: upgrade", "Connection"),
    ] {
        let (out, took) = call_hostile(&home, &entry(&["accept: */*", forbidden]));
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(answer["decision"], "refuse", "{answer} {}", stderr(&out));
        let reason = answer["reason"].as_str().unwrap_or("");
        assert!(reason.contains("Denied"), "{forbidden}: {reason}");
        assert!(
            reason.contains(&format!("header \\\"{name}\\\"")),
            "{forbidden}: {reason}"
        );
        // Refused at once, not left for the server to wait on until the deadline.
        assert!(took < Duration::from_secs(10), "{forbidden} took {took:?}");
    }
    assert!(
        heads.lock().unwrap().is_empty(),
        "no request was sent: {:?}",
        heads.lock().unwrap()
    );

    // The same request without them is sent, with the Host of the URL that was allowed.
    let (out, _) = call_hostile(&home, &entry(&["accept: */*"]));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        answer["decision"],
        "use-staged",
        "{answer} {}",
        stderr(&out)
    );
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(head.contains("\r\naccept: */*\r\n"), "{head}");
    assert!(!head.contains("other.example"), "{head}");
}

#[test]
fn wrong_pins_worlds_and_versions_are_refused_at_load() {
    let home = Home::new();
    let zeros = "0".repeat(64);
    let cases = [
        (
            hostile("trap", &format!("sha256 = \"{zeros}\"")),
            "plugins.toml pins",
        ),
        (
            format!("path = \"{}\"", wasm("wasmvisor-plugin-cometbft").display()),
            "it is a health plugin",
        ),
        (
            format!("path = \"{}\"", wasm("wasmvisor-fixture-future").display()),
            "version 0.9.0",
        ),
        (
            format!("path = \"{}\"", home.path.join("missing.wasm").display()),
            "cannot read",
        ),
    ];
    for (entry, expected) in cases {
        let (out, _) = call_hostile(&home, &entry);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains(expected),
            "expected {expected:?} in {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_hostile_resolver_during_an_upgrade_fails_closed_and_the_tree_is_intact() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let file = home.root().join("plugins.toml");
    std::fs::write(
        &file,
        format!(
            "[[resolver]]\nname = \"it\"\n{}",
            hostile("loop", "timeout = \"1s\"")
        ),
    )
    .unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("time limit"), "{}", done.stderr);
    assert!(done.stderr.contains("fail closed"), "{}", done.stderr);
    assert_eq!(home.current(), "genesis");
    assert_eq!(home.history(), vec![("genesis".into(), 1, 2)]);
    // Fixed configuration: the restart applies the upgrade.
    std::fs::remove_file(&file).unwrap();
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();
    assert_eq!(home.history()[1].1, 3);
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
