//! `status` says an upgrade is blocked by its failed binary exactly when the supervisor refuses
//! to run that binary: the same answer, however the binary is recognised (by its sha256, by
//! its identity on disk) or cannot be read at all.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(60);

/// A home whose upgrade to v2 at height 3 failed (v2 exits 1 at start) and was rolled back.
fn rolled_back_home() -> Home {
    let mut home = Home::new();
    home.set("UNSAFE_SKIP_BACKUP", "false")
        .set("WASMVISOR_ON_FAILED_UPGRADE", "rollback");
    plant_databases(&home);
    home.upgrade("v2", 2, json!({"fail_at_start": 1}));
    home.chain(&[("v2", 3)]);
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "rolled back: {}", done.stderr);
    home
}

/// `status --json`'s `pending`, and the text's `pending upgrade` line.
fn pending(home: &Home) -> (Value, String) {
    let json: Value = serde_json::from_slice(&home.output(&["status", "--json"]).stdout).unwrap();
    let text = String::from_utf8(home.output(&["status"]).stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("pending upgrade"))
        .unwrap_or_else(|| panic!("no pending line: {text}"))
        .to_string();
    (json["pending"].clone(), line)
}

/// Starts the supervisor and waits until it refuses to run the staged binary for v2; returns
/// its log.
fn supervisor_refuses(home: &Home) -> String {
    let run = home.run(&[]);
    home.wait_for("the refusal to run the failed binary", T, |h| {
        h.last_log().contains("not upgrading: this binary failed")
    });
    let log = run.stop().stderr;
    assert_eq!(
        home.events_of("failed").len(),
        1,
        "the failed binary did not run again: {log}"
    );
    assert_eq!(home.current(), "genesis", "{log}");
    log
}

fn set_journal(home: &Home, journal: &Value) {
    std::fs::write(
        home.root().join("wasmvisor-journal.json"),
        serde_json::to_vec_pretty(journal).unwrap(),
    )
    .unwrap();
}

#[test]
fn status_says_blocked_exactly_when_the_supervisor_refuses_the_failed_binary() {
    let home = rolled_back_home();
    let bin = home.root().join("upgrades/v2/bin/simd");
    let sha = sha256(&std::fs::read(&bin).unwrap());
    let short = &sha[..12];
    let blocked_line = format!(
        "pending upgrade      v2 at height 3 (governance) — BLOCKED: its staged binary (sha256 {short}) failed for it before; stage a different one"
    );

    // Recognised by its sha256.
    let (json, line) = pending(&home);
    assert_eq!(
        json,
        json!({"kind": "governance", "name": "v2", "height": 3, "blocked_by_failed_binary": sha})
    );
    assert_eq!(line, blocked_line);

    // The staged binary cannot be read (a link to nothing): the supervisor counts it as the
    // failed one, and so does status.
    let aside = home.root().join("upgrades/v2/bin/simd.aside");
    std::fs::rename(&bin, &aside).unwrap();
    std::os::unix::fs::symlink(Path::new("missing"), &bin).unwrap();
    let (json, line) = pending(&home);
    assert_eq!(
        json,
        json!({
            "kind": "governance", "name": "v2", "height": 3,
            "blocked_by_failed_binary": "",
            "blocked_binary_unreadable": "No such file or directory (os error 2)",
        })
    );
    assert_eq!(
        line,
        "pending upgrade      v2 at height 3 (governance) — BLOCKED: its staged binary cannot be read (No such file or directory (os error 2)), so it counts as the one that failed for it before; make it readable or stage a different one"
    );
    let log = supervisor_refuses(&home);
    assert!(
        log.contains("the staged binary cannot be read to tell whether it is another"),
        "{log}"
    );

    // A failure recorded without a sha256 (its binary could not be hashed at the rollback) is
    // recognised by the binary's identity on disk: the same file, put back by a rename.
    std::fs::remove_file(&bin).unwrap();
    std::fs::rename(&aside, &bin).unwrap();
    let mut journal = home.journal();
    assert_eq!(journal["failed"][0]["sha256"], sha.as_str(), "{journal}");
    assert!(
        !journal["failed"][0]["fingerprint"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{journal}"
    );
    journal["failed"][0]["sha256"] = json!("");
    set_journal(&home, &journal);
    let (json, line) = pending(&home);
    assert_eq!(
        json,
        json!({"kind": "governance", "name": "v2", "height": 3, "blocked_by_failed_binary": sha})
    );
    assert_eq!(line, blocked_line);
    supervisor_refuses(&home);

    // Another file with the same content is the same binary only by its sha256, which the
    // failure does not record: not blocked, and the supervisor does run it (and rolls back).
    let copy = home.root().join("upgrades/v2/bin/simd.copy");
    std::fs::copy(&bin, &copy).unwrap();
    std::fs::rename(&copy, &bin).unwrap();
    let (json, line) = pending(&home);
    assert_eq!(
        json,
        json!({"kind": "governance", "name": "v2", "height": 3})
    );
    assert_eq!(line, "pending upgrade      v2 at height 3 (governance)");
    let done = home.run(&[]).finish(T);
    assert_eq!(done.code(), 4, "ran it and rolled back: {}", done.stderr);
    assert_eq!(home.events_of("failed").len(), 2, "{}", done.stderr);
}
