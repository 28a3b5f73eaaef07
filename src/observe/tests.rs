//! The observer's own state and exposition: the series of the upgrades ahead, the counters that
//! are there from the start, and the `STATUS=` line with the next upgrade.

use super::*;

fn next(name: &str, source: &str, ready: Option<bool>, eta: Option<f64>) -> NextUpgrade {
    NextUpgrade {
        name: name.into(),
        height: 1200,
        source: source.into(),
        eta_seconds: eta,
        ready,
        reason: None,
    }
}

/// The samples of `metric` (the exact name, then `{` or a space), sorted (a family's series come
/// in no particular order).
fn samples(observer: &Observer, metric: &str) -> Vec<String> {
    let mut found: Vec<String> = observer
        .metrics()
        .lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .map(str::to_string)
        .collect();
    found.sort();
    found
}

/// The value of the one sample of `metric`.
fn value(observer: &Observer, metric: &str) -> f64 {
    let found = samples(observer, metric);
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].rsplit(' ').next().unwrap().parse().unwrap()
}

fn status_line(observer: &Observer) -> String {
    observer.0.state.lock().unwrap().status_line()
}

#[test]
fn the_counters_by_result_are_exported_at_zero_from_the_start() {
    let o = Observer::new();
    assert_eq!(
        samples(&o, "wasmvisor_upgrades_total"),
        [
            "wasmvisor_upgrades_total{result=\"failed\"} 0",
            "wasmvisor_upgrades_total{result=\"refused\"} 0",
            "wasmvisor_upgrades_total{result=\"rolled_back\"} 0",
            "wasmvisor_upgrades_total{result=\"success\"} 0",
        ]
    );
    for metric in [
        "wasmvisor_plan_polls_total",
        "wasmvisor_upgrade_preparations_total",
    ] {
        assert_eq!(
            samples(&o, metric),
            [
                format!("{metric}{{result=\"error\"}} 0"),
                format!("{metric}{{result=\"ok\"}} 0"),
            ]
        );
    }
    assert_eq!(
        samples(&o, "wasmvisor_upgrade_preflight_failures_total"),
        ["wasmvisor_upgrade_preflight_failures_total 0"]
    );
    // Nothing is known of an upgrade ahead yet.
    for metric in [
        "wasmvisor_upgrade_ready",
        "wasmvisor_upgrade_eta_seconds",
        "wasmvisor_upgrade_eta_timestamp_seconds",
        "wasmvisor_upcoming_upgrade_height",
    ] {
        assert_eq!(samples(&o, metric), Vec::<String>::new(), "{metric}");
    }
    o.upgrade_ended(UpgradeResult::RolledBack);
    assert!(
        samples(&o, "wasmvisor_upgrades_total")
            .contains(&"wasmvisor_upgrades_total{result=\"rolled_back\"} 1".to_string())
    );
}

#[test]
fn the_next_upgrade_sets_its_readiness_and_eta_and_replaces_the_one_before() {
    let o = Observer::new();
    let before = crate::clock::since_epoch().as_secs_f64();
    o.next_upgrade(Some(next("v2", "chain", Some(false), Some(7200.0))));
    assert_eq!(
        samples(&o, "wasmvisor_upgrade_ready"),
        ["wasmvisor_upgrade_ready{upgrade=\"v2\"} 0"]
    );
    assert_eq!(
        samples(&o, "wasmvisor_upgrade_eta_seconds"),
        ["wasmvisor_upgrade_eta_seconds{upgrade=\"v2\"} 7200.0"]
    );
    let at = value(&o, "wasmvisor_upgrade_eta_timestamp_seconds");
    let after = crate::clock::since_epoch().as_secs_f64();
    assert!(
        at >= before + 7200.0 && at <= after + 7200.0,
        "{before} {at} {after}"
    );
    // Ready now: the same series, 1.
    o.next_upgrade(Some(next("v2", "chain", Some(true), Some(60.0))));
    assert_eq!(value(&o, "wasmvisor_upgrade_ready"), 1.0);
    assert_eq!(value(&o, "wasmvisor_upgrade_eta_seconds"), 60.0);
    // Replaced by a proposal: no readiness (not prepared), an ETA of its own; v2's are gone.
    o.next_upgrade(Some(next("v3", "proposal", None, Some(86_400.0))));
    assert_eq!(samples(&o, "wasmvisor_upgrade_ready"), Vec::<String>::new());
    assert_eq!(
        samples(&o, "wasmvisor_upgrade_eta_seconds"),
        ["wasmvisor_upgrade_eta_seconds{upgrade=\"v3\"} 86400.0"]
    );
    // An ETA that is not a number is not exported; one in the past is 0 (due).
    o.next_upgrade(Some(next("v3", "chain", Some(true), Some(f64::NAN))));
    assert_eq!(
        samples(&o, "wasmvisor_upgrade_eta_seconds"),
        Vec::<String>::new()
    );
    o.next_upgrade(Some(next("v3", "chain", Some(true), Some(-5.0))));
    assert_eq!(value(&o, "wasmvisor_upgrade_eta_seconds"), 0.0);
    o.next_upgrade(None);
    for metric in [
        "wasmvisor_upgrade_ready",
        "wasmvisor_upgrade_eta_seconds",
        "wasmvisor_upgrade_eta_timestamp_seconds",
    ] {
        assert_eq!(samples(&o, metric), Vec::<String>::new(), "{metric}");
    }
}

#[test]
fn every_upcoming_plan_has_a_series_and_hostile_names_stay_in_their_label() {
    let o = Observer::new();
    o.upcoming(&[
        ("v2".into(), 1200, "chain".into()),
        ("v3\"}\nwasmvisor_node_up 1".into(), 5000, "manual".into()),
    ]);
    assert_eq!(
        samples(&o, "wasmvisor_upcoming_upgrade_height"),
        [
            "wasmvisor_upcoming_upgrade_height{upgrade=\"v2\",source=\"chain\"} 1200",
            "wasmvisor_upcoming_upgrade_height{upgrade=\"v3\\\"}\\nwasmvisor_node_up 1\",source=\"manual\"} 5000",
        ]
    );
    // The injected line is not a sample of its own.
    assert_eq!(samples(&o, "wasmvisor_node_up"), ["wasmvisor_node_up 0"]);
    o.upcoming(&[("v4".into(), u64::MAX, "manual".into())]);
    assert_eq!(
        samples(&o, "wasmvisor_upcoming_upgrade_height"),
        [format!(
            "wasmvisor_upcoming_upgrade_height{{upgrade=\"v4\",source=\"manual\"}} {}",
            i64::MAX
        )]
    );
    o.upcoming(&[]);
    assert_eq!(
        samples(&o, "wasmvisor_upcoming_upgrade_height"),
        Vec::<String>::new()
    );
}

#[test]
fn polls_preparations_and_preflights_are_counted() {
    let o = Observer::new();
    assert_eq!(value(&o, "wasmvisor_plan_last_poll_timestamp_seconds"), 0.0);
    o.plan_poll(false);
    // A failed poll is not a successful one.
    assert_eq!(value(&o, "wasmvisor_plan_last_poll_timestamp_seconds"), 0.0);
    o.plan_poll(true);
    o.plan_poll(true);
    assert_eq!(
        samples(&o, "wasmvisor_plan_polls_total"),
        [
            "wasmvisor_plan_polls_total{result=\"error\"} 1",
            "wasmvisor_plan_polls_total{result=\"ok\"} 2",
        ]
    );
    assert!(value(&o, "wasmvisor_plan_last_poll_timestamp_seconds") > 1.7e9);
    o.prepared(false);
    o.prepared(false);
    o.prepared(true);
    assert_eq!(
        samples(&o, "wasmvisor_upgrade_preparations_total"),
        [
            "wasmvisor_upgrade_preparations_total{result=\"error\"} 2",
            "wasmvisor_upgrade_preparations_total{result=\"ok\"} 1",
        ]
    );
    o.preflight_failed();
    assert_eq!(value(&o, "wasmvisor_upgrade_preflight_failures_total"), 1.0);
}

#[test]
fn the_exposition_follows_prometheus_naming() {
    let o = Observer::new();
    o.next_upgrade(Some(next("v2", "chain", Some(true), Some(10.0))));
    o.upcoming(&[("v2".into(), 1200, "chain".into())]);
    let text = o.metrics();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split(' ').skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(name.starts_with("wasmvisor_"), "{line}");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "a counter and only a counter ends in _total: {line}"
        );
        assert!(
            !name.contains("time") || name.ends_with("_seconds"),
            "times are in seconds: {line}"
        );
    }
}

#[test]
fn the_status_line_names_the_next_upgrade_and_its_readiness() {
    let o = Observer::new();
    o.node_started("v1.0.0", 42);
    assert_eq!(status_line(&o), "running v1.0.0 (pid 42)");
    o.next_upgrade(Some(next("v2", "chain", Some(true), Some(7200.0))));
    assert_eq!(
        status_line(&o),
        "running v1.0.0 (pid 42); next upgrade v2 at 1200 (chain): ready, in ~2h"
    );
    o.next_upgrade(Some(NextUpgrade {
        reason: Some("upgrades/v2/bin/gaiad needs libwasmvm.x86_64.so".into()),
        ..next("v2", "chain", Some(false), Some(600.0))
    }));
    assert_eq!(
        status_line(&o),
        "running v1.0.0 (pid 42); next upgrade v2 at 1200 (chain): NOT READY: \
         upgrades/v2/bin/gaiad needs libwasmvm.x86_64.so, in ~10m"
    );
    o.next_upgrade(Some(next("v3", "proposal", None, None)));
    assert_eq!(
        status_line(&o),
        "running v1.0.0 (pid 42); next upgrade v3 at 1200 (proposal): not prepared"
    );
    // What the supervisor does next keeps the upgrade ahead on its line.
    o.phase("v3", "stop");
    assert_eq!(
        status_line(&o),
        "upgrading to v3: stop; next upgrade v3 at 1200 (proposal): not prepared"
    );
    o.next_upgrade(None);
    assert_eq!(status_line(&o), "upgrading to v3: stop");
    // /readyz says what the supervisor does, as before.
    o.node_started("v3", 43);
    o.next_upgrade(Some(next("v4", "manual", Some(true), None)));
    assert_eq!(o.readiness(), Ok("running v3 (pid 43)".to_string()));
}

#[test]
fn hostile_names_and_reasons_stay_on_one_bounded_line() {
    let o = Observer::new();
    o.node_started("v1", 1);
    let name = format!("v2\n\x1b[31m{}", "x".repeat(10_000));
    let reason = format!("line one\nline two\r{}", "why ".repeat(10_000));
    o.next_upgrade(Some(NextUpgrade {
        name: name.clone(),
        height: u64::MAX,
        source: "chain\u{7}".repeat(100),
        eta_seconds: Some(1e300),
        ready: Some(false),
        reason: Some(reason),
    }));
    let line = status_line(&o);
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert!(
        line.chars().count() < 400,
        "{} characters",
        line.chars().count()
    );
    assert!(
        line.starts_with("running v1 (pid 1); next upgrade v2\\n\\u{1b}[31mxxx"),
        "{line}"
    );
    assert!(
        line.contains("x… at 18446744073709551615 (chain\\u{7}chain"),
        "{line}"
    );
    assert!(
        line.contains("): NOT READY: line one\\nline two\\rwhy why"),
        "{line}"
    );
    assert!(line.ends_with("…, in ~11574074d"), "{line}");
}

#[test]
fn etas_are_shown_to_the_nearest_unit() {
    for (seconds, shown) in [
        (-3.0, "due"),
        (0.4, "due"),
        (30.0, "in ~30s"),
        (119.4, "in ~119s"),
        (120.0, "in ~2m"),
        (3599.0, "in ~60m"),
        (7200.0, "in ~2h"),
        (9000.0, "in ~3h"),
        (172_800.0, "in ~2d"),
    ] {
        assert_eq!(ahead::eta_text(seconds), shown, "{seconds}");
    }
}

#[test]
fn one_line_escapes_and_bounds_by_characters() {
    assert_eq!(ahead::one_line("v2", 64), "v2");
    assert_eq!(ahead::one_line("a\nb", 4), "a\\nb");
    // An escape is never cut in its middle.
    assert_eq!(ahead::one_line("a\nb", 2), "a…");
    assert_eq!(ahead::one_line("ééééé", 3), "ééé…");
    assert_eq!(ahead::one_line("", 3), "");
}

#[test]
fn the_status_line_sent_is_one_bounded_line() {
    assert_eq!(notify::status_line("a\nb\tc"), "a b c");
    let long = notify::status_line(&"é".repeat(1000));
    assert_eq!(long.chars().count(), 401);
    assert!(long.ends_with("é…"));
}
