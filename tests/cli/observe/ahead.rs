//! The exposition as Prometheus itself judges it: `promtool check metrics` (Debian's `prometheus`
//! package; CI installs it) on real scrapes of a running wasmvisor, before and after a real
//! upgrade, so every family — histograms, counters by result, the series of the upgrades ahead
//! — is in it at least once. (`GET /status` answers the document of the source the supervisor
//! sets; its answers are tested in `src/observe/serve/tests.rs`.)

use std::io::Write;
use std::process::{Command, Stdio};

use super::T;
use super::metrics::{get, manual_upgrade_home, scrape, value};

/// What `promtool check metrics` says of `exposition`: `Ok` when it has nothing to say.
fn promtool_check(exposition: &str) -> Result<(), String> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run promtool ({e}): install Debian's prometheus package \
             (apt-get install --no-install-recommends prometheus), as .ci/run does"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {said}", out.status))
    }
}

#[test]
fn promtool_finds_nothing_to_say_of_a_real_scrape() {
    // It can fail: a counter without `_total` is one promtool names.
    assert!(
        promtool_check("# TYPE wasmvisor_x counter\nwasmvisor_x 1\n")
            .is_err_and(|said| said.contains("_total")),
        "promtool does not lint"
    );
    let (home, port) = manual_upgrade_home();
    let run = home.run(&[]);
    home.wait_for("the metrics", T, |_| {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && get(port, "/readyz").0 == 200
    });
    home.wait_for("the chain height in the metrics", T, |_| {
        value(&scrape(port), "wasmvisor_chain_height", &[]).is_some_and(|h| h >= 2.0)
    });
    let (status, before) = get(port, "/metrics");
    assert_eq!(status, 200, "{before}");
    home.wait_height("v2", 9);
    home.wait_for("readiness again", T, |_| get(port, "/readyz").0 == 200);
    let (_, after) = get(port, "/metrics");
    let out = run.stop();
    for (when, exposition) in [("before the upgrade", &before), ("after it", &after)] {
        if let Err(said) = promtool_check(exposition) {
            panic!(
                "promtool check metrics {when}: {said}\n{exposition}\n{}",
                out.stderr
            );
        }
    }
    // The scrape after the upgrade has the families an empty one lacks.
    for family in [
        "wasmvisor_upgrade_phase_duration_seconds_bucket",
        "wasmvisor_plugin_calls_total",
        "wasmvisor_backup_last_bytes",
        "wasmvisor_upgrades_total{result=\"success\"} 1",
        "wasmvisor_upgrades_total{result=\"rolled_back\"} 0",
        "wasmvisor_plan_polls_total",
    ] {
        assert!(after.contains(family), "{family} is not in\n{after}");
    }
}
