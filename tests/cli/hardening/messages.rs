//! What wasmvisor says: an unwritable stderr never takes it down, names are escaped, recased
//! and bounded in every message, settings that make no sense are named.

use std::os::unix::fs::symlink;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

use super::stderr;

/// Runs wasmvisor through an upgrade with its stderr on `stderr`, and returns its exit code.
fn upgrade_with_stderr(stderr: Stdio) -> (Home, i32) {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let mut cmd = home.cmd(&["run", "start", "--home", home.path.to_str().unwrap()]);
    let mut child = cmd.stdout(Stdio::null()).stderr(stderr).spawn().unwrap();
    home.wait_height("v2", 4);
    signal(child.id(), SIGTERM);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    };
    (home, status.code().unwrap_or(-1))
}

#[test]
fn an_unwritable_stderr_never_takes_the_supervisor_down() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (home, code) = upgrade_with_stderr(Stdio::from(full));
    assert_eq!(code, 0, "exits with the node's status");
    assert_eq!(home.current(), "upgrades/v2");

    // A pipe whose reader is gone.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let (home, code) = upgrade_with_stderr(Stdio::from(writer));
    assert_eq!(code, 0);
    assert_eq!(home.current(), "upgrades/v2");
}

// Over 80 lines: one hostile name goes through every message that can carry it, on one home.
#[test]
fn names_are_escaped_recased_and_bounded_in_every_message() {
    // The refusal names the folder wasmvisor looks in.
    let home = Home::new();
    home.chain(&[("V2", 3)]);
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert!(
        done.stderr.contains("upgrades/v2/bin/simd does not exist"),
        "{}",
        done.stderr
    );
    assert!(!done.stderr.contains("upgrades/V2"), "{}", done.stderr);

    // A name with a newline and a terminal escape writes no line and no escape of its own, in
    // the supervisor's log and in every command that reads the plan or stages a binary by name.
    let home = Home::new();
    let name = "v2\n9:99AM INF forged line module=wasmvisor\x1b[2J";
    std::fs::write(
        home.data().join("upgrade-info.json"),
        json!({"name": name, "height": 1}).to_string(),
    )
    .unwrap();
    let clean = |what: &str, text: &str| {
        assert!(!text.contains('\x1b'), "{what}: {text:?}");
        assert!(
            !text.lines().any(|l| l.starts_with("9:99AM")),
            "{what}: {text}"
        );
    };
    let done = home.run(&[]).finish(Duration::from_secs(30));
    clean("run", &done.stderr);
    let binary = home.root().join("genesis/bin/simd");
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["show-upgrade-info"],
        vec!["add-upgrade", name, binary.to_str().unwrap()],
    ] {
        let out = home.output(&args);
        clean(
            &format!("{} (stdout)", args[0]),
            &String::from_utf8_lossy(&out.stdout),
        );
        clean(&format!("{} (stderr)", args[0]), &stderr(&out));
    }

    // A 10 000-character name is named too long, not blamed on a plugin.
    let home = Home::new();
    std::fs::write(
        home.data().join("upgrade-info.json"),
        json!({"name": "x".repeat(10_000), "height": 1}).to_string(),
    )
    .unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1);
    assert!(done.stderr.contains("is too long"), "{}", done.stderr);
    assert!(
        !done.stderr.contains("cannot use: an"),
        "not an oversized plugin answer: {}",
        done.stderr
    );
    assert!(done.stderr.len() < 4096, "{}", done.stderr.len());
    for args in [vec!["status"], vec!["show-upgrade-info"]] {
        let out = home.output(&args);
        assert!(out.stderr.len() < 4096, "{}: {}", args[0], out.stderr.len());
    }
    // `status` names the plan shortened, on a line of bounded length.
    let out = home.output(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let pending = text.lines().find(|l| l.starts_with("pending upgrade"));
    assert_eq!(
        pending,
        Some(
            format!(
                "{:<20} {}… at height 1 (governance)",
                "pending upgrade",
                "x".repeat(64)
            )
            .as_str()
        )
    );
    let longest = text.lines().map(str::len).max();
    assert!(longest < Some(512), "a status line of {longest:?} bytes");
}

#[test]
fn settings_that_make_no_sense_are_named() {
    for (key, value, needle) in [
        (
            "DAEMON_GRPC_ADDRESS",
            "not an address",
            "DAEMON_GRPC_ADDRESS",
        ),
        (
            "WASMVISOR_RPC_ADDRESS",
            "http://[::1",
            "WASMVISOR_RPC_ADDRESS",
        ),
        (
            "WASMVISOR_PLUGINS",
            "/",
            "is a directory; name the plugins.toml file",
        ),
    ] {
        let mut home = Home::new();
        home.set(key, value);
        let out = home.output(&["config"]);
        assert_eq!(out.status.code(), Some(1), "{key}={value}");
        assert!(
            stderr(&out).contains(needle),
            "{key}={value}: {}",
            stderr(&out)
        );
    }
    let mut home = Home::new();
    let file = home.path.join("c.toml");
    std::fs::write(
        &file,
        format!(
            "daemon_home = \"{}\"\ndaemon_name = [\"simd\"]\n",
            home.path.display()
        ),
    )
    .unwrap();
    home.unset("DAEMON_NAME");
    let out = home.output(&["config", "-c", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("key daemon_name: expected a string, got a TOML array"),
        "{}",
        stderr(&out)
    );

    // `current` that is not a link, and a binary that leads out of the tree.
    for kind in ["file", "dir"] {
        let home = Home::new();
        let current = home.root().join("current");
        std::fs::remove_file(&current).unwrap();
        if kind == "file" {
            std::fs::write(&current, "genesis").unwrap();
        } else {
            std::fs::create_dir(&current).unwrap();
        }
        let out = home.output(&["status"]);
        assert!(
            stderr(&out).contains("not a symlink") && stderr(&out).contains("ln -s genesis"),
            "{kind}: {}",
            stderr(&out)
        );
    }
    let home = Home::new();
    let bin = home.root().join("genesis/bin/simd");
    let real = home.path.join("simd-real");
    std::fs::rename(&bin, &real).unwrap();
    symlink(&real, &bin).unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(20));
    assert!(
        done.stderr.contains("outside") && !done.stderr.contains("chmod"),
        "{}",
        done.stderr
    );
}
