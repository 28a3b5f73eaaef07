//! Hostile plugins: contained and reported, given no files or hosts they were not granted, no
//! say over their requests' `Host` and `Connection`, refused at load for a wrong pin, world or
//! version, and failing closed during an upgrade.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::serve::Server;
use crate::harness::*;

use super::stderr;

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
