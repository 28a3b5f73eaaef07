//! The tail: what happened when, from the halt, in the slowest 1% of a run's upgrades, beside
//! the median upgrade's, so the step that grew shows.
//!
//! A timeline merges the node's events (CLOCK_MONOTONIC: `upgrade-needed`, the old node's
//! `signal` and `shutdown`, `pre-upgrade`, the new node's `start`) with wasmvisor's log lines
//! from its detection to the launch. Log lines carry wall-clock microseconds; the detection line
//! carries both clocks, which gives each upgrade's offset between them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::harness::Home;

/// Marks in order: (what, milliseconds since the node wrote upgrade-info.json).
pub(crate) type Timeline = Vec<(String, f64)>;

/// upgrade name → its timeline.
pub(crate) fn timelines(home: &Home, log: &Path) -> BTreeMap<String, Timeline> {
    let mut out: BTreeMap<String, Timeline> = BTreeMap::new();
    let mut halted_at: BTreeMap<String, u64> = BTreeMap::new();
    // The node's own marks, by the upgrade they belong to (the last upgrade-needed before).
    let mut upgrade = String::new();
    for e in home.events() {
        let mono = e["mono_ns"].as_u64().or(e["born_ns"].as_u64()).unwrap_or(0);
        let event = e["event"].as_str().unwrap_or("");
        if event == "upgrade-needed" {
            upgrade = e["name"].as_str().unwrap_or("").to_string();
            halted_at.insert(upgrade.clone(), mono);
        }
        let Some(&t0) = halted_at.get(&upgrade) else {
            continue;
        };
        let what = match event {
            "upgrade-needed" | "signal" | "shutdown" | "pre-upgrade" => format!("node: {event}"),
            // The new binary's start ends the upgrade's timeline.
            "start" if e["version"] == upgrade.as_str() => "node: new binary starts".into(),
            _ => continue,
        };
        out.entry(upgrade.clone())
            .or_default()
            .push((what, ms_between(t0, mono)));
    }
    for (name, marks) in logged(log) {
        if let (Some(line), Some(&t0)) = (out.get_mut(&name), halted_at.get(&name)) {
            line.extend(marks.into_iter().map(|(w, mono)| (w, ms_between(t0, mono))));
        }
    }
    for line in out.values_mut() {
        line.sort_by(|a, b| a.1.total_cmp(&b.1));
        if let Some(end) = line
            .iter()
            .position(|(w, _)| w == "node: new binary starts")
        {
            line.truncate(end + 1);
        }
    }
    out
}

/// upgrade name → wasmvisor's log lines of its upgrade, as (what, CLOCK_MONOTONIC ns).
fn logged(log: &Path) -> BTreeMap<String, Vec<(String, u64)>> {
    let mut out: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    let (mut current, mut offset) = (None::<String>, 0i128);
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let message = v["message"].as_str().unwrap_or("");
        let Some(wall) = v["timestamp"].as_str().and_then(wall_ns) else {
            continue;
        };
        if matches!(message, "upgrade detected" | "node halted for the upgrade")
            && let (Some(name), Some(mono)) = (v["upgrade"].as_str(), v["mono_ns"].as_u64())
        {
            current = Some(name.to_string());
            offset = mono as i128 - wall;
        }
        let Some(name) = &current else { continue };
        let what = match message {
            "phase done" => format!("{} done", v["phase"].as_str().unwrap_or("?")),
            m => m.chars().take(48).collect(),
        };
        let mono = (wall + offset).max(0) as u64;
        out.entry(name.clone()).or_default().push((what, mono));
    }
    out
}

/// `2026-12-02T17:45:01.123456Z` as nanoseconds (days counted from the month's start: a run
/// does not cross a month).
fn wall_ns(stamp: &str) -> Option<i128> {
    let (date, time) = stamp.trim_end_matches('Z').split_once('T')?;
    let day: i128 = date.rsplit('-').next()?.parse().ok()?;
    let mut hms = time.split(':');
    let h: i128 = hms.next()?.parse().ok()?;
    let m: i128 = hms.next()?.parse().ok()?;
    let s: f64 = hms.next()?.parse().ok()?;
    Some(((day * 24 + h) * 60 + m) * 60 * 1_000_000_000 + (s * 1e9).round() as i128)
}

fn ms_between(t0: u64, t1: u64) -> f64 {
    (t1 as f64 - t0 as f64) / 1e6
}

/// Prints the slowest 1% (at least 2) of `run`'s upgrades, mark by mark, beside the median
/// upgrade's; returns the same as JSON.
pub(crate) fn report(key: &str, run: &crate::runs::Run) -> Value {
    let mut by_total: Vec<(&String, f64)> = run.by_upgrade.iter().map(|(k, v)| (k, *v)).collect();
    by_total.sort_by(|a, b| a.1.total_cmp(&b.1));
    if by_total.len() < 4 {
        return json!([]);
    }
    let median = by_total[by_total.len() / 2].0;
    let slowest = (by_total.len() / 100).max(2);
    let typical = run.timelines.get(median).cloned().unwrap_or_default();
    println!(
        "\nthe tail of ({key}): its slowest {slowest} upgrades, each mark in ms since upgrade-info.json was written, beside the median upgrade ({median}, {:.2} ms)",
        by_total[by_total.len() / 2].1
    );
    let mut out = Vec::new();
    for (name, total) in by_total.iter().rev().take(slowest) {
        let line = run.timelines.get(*name).cloned().unwrap_or_default();
        println!("  {name}: {total:.2} ms");
        let mut previous = (0.0, 0.0);
        for (what, at) in &line {
            let usual = typical.iter().find(|(w, _)| w == what).map(|(_, t)| *t);
            let step = at - previous.0;
            let usual_step = usual.map(|u| u - previous.1);
            println!(
                "    {at:>8.3} (+{step:>7.3}; median +{})  {what}",
                usual_step.map_or("   -   ".into(), |s| format!("{s:>7.3}"))
            );
            previous = (*at, usual.unwrap_or(previous.1));
        }
        out.push(json!({"upgrade": name, "total_ms": total, "marks": line}));
    }
    json!({"median": {"upgrade": median, "marks": typical}, "slowest": out})
}
