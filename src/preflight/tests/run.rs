//! `run_version` with real processes: shell scripts that exit, hang, flood, and a real ELF the
//! loader refuses. Nothing here waits a fixed time: a deadline is what is tested, or a marker
//! file a script writes is waited for.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::super::*;
use crate::cancel::Cancel;

fn script(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("gaiad");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn version(binary: &Path, timeout: Duration, cancel: &Cancel) -> Result<Ran, NotReady> {
    let env = [(OsString::from("WV_CHAIN"), OsString::from("cosmoshub-4"))];
    run_version(binary, &["version".to_string()], &env, timeout, cancel)
}

/// Waits (bounded) until `path` exists.
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::yield_now();
    }
}

#[test]
fn exit_0_records_output_from_both_streams_in_a_scratch_folder_with_the_env() {
    let t = tempfile::tempdir().unwrap();
    let bin = script(
        t.path(),
        "echo \"v2.0.1 $1 $WV_CHAIN\"; echo warn >&2; pwd; read x && echo stdin-was-not-empty; exit 0",
    );
    let ran = version(&bin, Duration::from_secs(20), &Cancel::new()).unwrap();
    let lines: Vec<&str> = ran.output.lines().collect();
    assert_eq!(lines[..2], ["v2.0.1 version cosmoshub-4", "warn"]);
    let scratch = Path::new(lines[2]);
    assert!(
        scratch.starts_with(std::fs::canonicalize(std::env::temp_dir()).unwrap())
            || scratch.starts_with(std::env::temp_dir())
    );
    assert!(!scratch.exists(), "the scratch folder is removed");
    assert_eq!(lines.len(), 3, "stdin is empty: {lines:?}");
}

#[test]
fn a_non_zero_exit_quotes_the_output() {
    let t = tempfile::tempdir().unwrap();
    let bin = script(t.path(), "echo 'panic: no \x1b[31mconfig'; exit 3");
    let err = version(&bin, Duration::from_secs(20), &Cancel::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} version exited with status 3; its output:\npanic: no \\u{{1b}}[31mconfig",
            bin.display()
        )
    );
}

#[test]
fn a_hang_is_killed_at_the_deadline_with_its_whole_group() {
    let t = tempfile::tempdir().unwrap();
    let marker = t.path().join("child.pid");
    let bin = script(
        t.path(),
        &format!(
            "sleep 1000 & echo $! > {}.tmp; mv {0}.tmp {0}; echo started; wait",
            marker.display()
        ),
    );
    let started = Instant::now();
    let err = version(&bin, Duration::from_millis(300), &Cancel::new()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15));
    let NotReady::TimedOut { after, output, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*after, Duration::from_millis(300));
    assert!(output.contains("started"), "{err}");
    assert!(
        err.to_string()
            .contains("did not finish within 300ms, and was killed"),
        "{err}"
    );
    // The background `sleep` of its group is gone too (killed, then reaped by init).
    wait_for(&marker);
    let pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(
            Instant::now() < deadline,
            "the group's sleep {pid} survived"
        );
        std::thread::yield_now();
    }
}

#[test]
fn megabytes_of_output_are_bounded_and_counted() {
    let t = tempfile::tempdir().unwrap();
    let bin = script(
        t.path(),
        "head -c 5000000 /dev/zero | tr '\\0' a; echo; echo the-end",
    );
    let ran = version(&bin, Duration::from_secs(60), &Cancel::new()).unwrap();
    assert!(ran.output.len() < 4300, "{} bytes kept", ran.output.len());
    // 5,000,009 bytes written, 4 KiB kept.
    assert!(
        ran.output.contains("\n… (4995913 bytes more) …\n"),
        "{}",
        &ran.output[3000..3200]
    );
    assert!(ran.output.starts_with("aaaa") && ran.output.ends_with("a\nthe-end\n"));
}

#[test]
fn a_directory_and_a_missing_file_are_not_run() {
    let t = tempfile::tempdir().unwrap();
    let err = version(t.path(), Duration::from_secs(5), &Cancel::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} is a directory, not a regular file", t.path().display())
    );
    let gone = t.path().join("gone");
    let err = version(&gone, Duration::from_secs(5), &Cancel::new()).unwrap_err();
    assert!(matches!(err, NotReady::CannotExec { .. }), "{err}");
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
}

#[test]
fn a_stop_request_kills_it_at_once() {
    let t = tempfile::tempdir().unwrap();
    let marker = t.path().join("running");
    let bin = script(
        t.path(),
        &format!("touch {}; exec sleep 1000", marker.display()),
    );
    let cancel = Cancel::new();
    let stopper = {
        let cancel = cancel.clone();
        let marker = marker.clone();
        std::thread::spawn(move || {
            wait_for(&marker);
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let err = version(&bin, Duration::from_secs(600), &cancel).unwrap_err();
    stopper.join().unwrap();
    assert!(matches!(err, NotReady::Cancelled { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_binary_the_loader_refuses_fails_with_the_loaders_words() {
    if super::cc().is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    super::build(
        t.path(),
        &[("lib.c", super::LIB_C)],
        &[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libwv_test.so",
            "-o",
            "libwv_test.so",
            "lib.c",
        ],
    );
    super::build(
        t.path(),
        &[("main.c", super::MAIN_C)],
        &["-o", "gaiad", "main.c", "-L.", "-lwv_test"],
    );
    std::fs::remove_file(t.path().join("libwv_test.so")).unwrap();
    let err = version(
        &t.path().join("gaiad"),
        Duration::from_secs(20),
        &Cancel::new(),
    )
    .unwrap_err();
    let NotReady::Exited {
        code: 127, output, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(
        output.contains("libwv_test.so: cannot open shared object file"),
        "{err}"
    );
}

#[test]
fn only_a_fault_of_the_binary_itself_is_conclusive() {
    let signalled = |signal| NotReady::Signalled {
        binary: "upgrades/v2/bin/simd".into(),
        command: "version".into(),
        signal,
        output: String::new(),
    };
    for fault in [
        nix::libc::SIGSEGV,
        nix::libc::SIGABRT,
        nix::libc::SIGILL,
        nix::libc::SIGBUS,
    ] {
        assert!(signalled(fault).is_conclusive(), "signal {fault}");
    }
    // Stopped from outside: the OOM killer, an operator, a supervisor's stop.
    for outside in [nix::libc::SIGKILL, nix::libc::SIGTERM] {
        assert!(!signalled(outside).is_conclusive(), "signal {outside}");
    }
    let exited = NotReady::Exited {
        binary: "upgrades/v2/bin/simd".into(),
        command: "version".into(),
        code: 2,
        output: String::new(),
    };
    assert!(exited.is_conclusive());
    let timed_out = NotReady::TimedOut {
        binary: "upgrades/v2/bin/simd".into(),
        command: "version".into(),
        after: std::time::Duration::from_secs(10),
        output: String::new(),
    };
    assert!(!timed_out.is_conclusive());
    let cannot = |errno| NotReady::CannotExec {
        binary: "upgrades/v2/bin/simd".into(),
        command: "version".into(),
        error: String::new(),
        errno,
    };
    // The kernel refuses the binary: a `noexec` mount, a format it does not run, no interpreter.
    for refused in [nix::libc::EACCES, nix::libc::ENOEXEC, nix::libc::ENOENT] {
        assert!(cannot(Some(refused)).is_conclusive(), "errno {refused}");
    }
    // The host is short of something for now.
    for short in [nix::libc::EAGAIN, nix::libc::ENOMEM, nix::libc::EMFILE] {
        assert!(!cannot(Some(short)).is_conclusive(), "errno {short}");
    }
    assert!(!cannot(None).is_conclusive());
}
