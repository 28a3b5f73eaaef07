//! `wasmvisor status`: what runs, what is applied, what is pending, what is staged, and how long
//! the last upgrade took, phase by phase. Reads files only; safe to run beside a supervisor.

use serde_json::{Value, json};

use crate::config::Config;
use crate::decide::Files;
use crate::journal;
use crate::layout::Layout;
use crate::plan::Read;

pub fn collect(cfg: &Config) -> Result<Value, String> {
    let layout = Layout::open(cfg).map_err(|e| e.to_string())?;
    let files = Files::read(&layout).map_err(|e| e.to_string())?;
    let dir_name = |name: &str| layout.dir_name(name).map_err(|e| e.to_string());
    let snapshot = files.snapshot(&[], None, &dir_name);
    let (current, applied, info, batch) = (
        &files.current,
        &files.applied,
        &files.upgrade_info,
        &files.batch,
    );
    let pending = match snapshot.governance() {
        Some((plan, None)) => {
            Some(json!({"kind": "governance", "name": plan.name, "height": plan.height}))
        }
        _ => snapshot
            .next_manual()
            .map(|p| json!({"kind": "manual", "name": p.name, "height": p.height})),
    };
    let upgrade_info = match &info {
        Read::Absent => Value::Null,
        Read::NotYet => json!({"state": "incomplete"}),
        Read::Invalid(reason) => json!({"state": "invalid", "reason": reason}),
        Read::Valid(p) => json!({"state": "valid", "name": p.name, "height": p.height}),
    };
    let journal = journal::read(&layout.root).unwrap_or_default();
    let supervisor = crate::lock::holder(&layout.root, &layout.root_path);
    Ok(json!({
        "daemon_home": cfg.home,
        "current": {
            "upgrade": current.label(),
            "binary": layout.binary_path(current),
            "binary_ok": layout.check_binary(current).is_ok(),
            "applied_plan": applied,
        },
        "upgrade_info": upgrade_info,
        "pending": pending,
        "manual_upgrades": batch,
        "staged": layout.staged(),
        "upgrade_in_progress": journal.active,
        "last_upgrade": journal.last.map(|l| {
            // The health entry is the time to the check's first answer, not a step of the switch.
            let total: f64 = l
                .phases
                .iter()
                .filter(|p| p.phase != crate::journal::Phase::Health)
                .map(|p| p.ms)
                .sum();
            let mut v = serde_json::to_value(&l).unwrap_or_default();
            v["total_ms"] = json!((total * 1000.0).round() / 1000.0);
            v
        }),
        "supervisor_pid": supervisor,
    }))
}

pub fn print(cfg: &Config, as_json: bool) -> Result<(), String> {
    let s = collect(cfg)?;
    if as_json {
        let text = serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?;
        return crate::output::line(text);
    }
    let mut out = String::new();
    // Names come from plan files: shown escaped, one value per line.
    let line = |out: &mut String, k: &str, v: String| {
        out.push_str(&format!("{k:<20} {}\n", crate::output::escape_controls(&v)))
    };
    line(
        &mut out,
        "home",
        s["daemon_home"].as_str().unwrap_or("").into(),
    );
    line(
        &mut out,
        "supervisor",
        match s["supervisor_pid"].as_i64() {
            Some(pid) if pid > 0 => format!("running (pid {pid})"),
            Some(_) => "running".into(),
            None => "not running".into(),
        },
    );
    let cur = &s["current"];
    let ok = if cur["binary_ok"].as_bool() == Some(true) {
        ""
    } else {
        "  (MISSING OR NOT EXECUTABLE)"
    };
    line(
        &mut out,
        "current",
        format!(
            "{}  {}{ok}",
            cur["upgrade"].as_str().unwrap_or(""),
            cur["binary"].as_str().unwrap_or("")
        ),
    );
    line(
        &mut out,
        "applied upgrade",
        match cur["applied_plan"].as_object() {
            Some(p) => format!(
                "{} at height {}",
                p["name"].as_str().unwrap_or(""),
                p["height"]
            ),
            None => "none (genesis)".into(),
        },
    );
    line(
        &mut out,
        "pending upgrade",
        match s["pending"].as_object() {
            Some(p) => format!(
                "{} at height {} ({})",
                p["name"].as_str().unwrap_or(""),
                p["height"],
                p["kind"].as_str().unwrap_or("")
            ),
            None => "none".into(),
        },
    );
    if let Some(reason) = s["upgrade_info"]["reason"].as_str() {
        line(&mut out, "upgrade-info.json", format!("INVALID: {reason}"));
    }
    let staged: Vec<&str> = s["staged"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    line(
        &mut out,
        "staged upgrades",
        if staged.is_empty() {
            "none".into()
        } else {
            staged.join(", ")
        },
    );
    if let Some(active) = s["upgrade_in_progress"].as_object() {
        line(
            &mut out,
            "in progress",
            format!(
                "{} (phase {})",
                active["plan"]["name"].as_str().unwrap_or(""),
                active["phase"].as_str().unwrap_or("")
            ),
        );
    }
    match s["last_upgrade"].as_object() {
        Some(last) => {
            line(
                &mut out,
                "last upgrade",
                format!(
                    "{} → {} at height {}, {:.1} ms in phases",
                    last["from"].as_str().unwrap_or(""),
                    last["to"].as_str().unwrap_or(""),
                    last["plan"]["height"],
                    last["total_ms"].as_f64().unwrap_or(0.0)
                ),
            );
            for p in last["phases"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:<20}   {:<18} {:>10.3} ms\n",
                    "",
                    p["phase"].as_str().unwrap_or(""),
                    p["ms"].as_f64().unwrap_or(0.0)
                ));
            }
            if let Some(h) = last.get("health").filter(|h| h.is_object()) {
                line(
                    &mut out,
                    "health",
                    format!(
                        "{} after {:.0} ms ({} checks): {}",
                        if h["healthy"].as_bool() == Some(true) {
                            "healthy"
                        } else {
                            "UNHEALTHY"
                        },
                        h["after_ms"].as_f64().unwrap_or(0.0),
                        h["checks"],
                        h["detail"].as_str().unwrap_or("")
                    ),
                );
            }
        }
        None => line(&mut out, "last upgrade", "none".into()),
    }
    crate::output::text(out)
}
