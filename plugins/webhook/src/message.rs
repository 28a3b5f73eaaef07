//! What a notice says: a one-line text naming the chain, the upgrade and its height, and the
//! notice as JSON.

use serde_json::{Value, json};

use crate::exports::wasmvisor::plugin::notify::{Event, Notice, Upgrade};

/// The event's kind, as the contract names it.
pub fn kind(event: &Event) -> &'static str {
    match event {
        Event::PlanKnown(_) => "plan-known",
        Event::ReadinessChanged(_) => "readiness-changed",
        Event::UpgradeStarted(_) => "upgrade-started",
        Event::PhaseDone(_) => "phase-done",
        Event::UpgradeDone(_) => "upgrade-done",
        Event::UpgradeFailed(_) => "upgrade-failed",
        Event::RolledBack(_) => "rolled-back",
        Event::HealthVerdict(_) => "health-verdict",
        Event::SigningResumed(_) => "signing-resumed",
        Event::CrashRestart(_) => "crash-restart",
        Event::Stopping => "stopping",
    }
}

/// `12 ms`, `3.2 s`, `4 min 05 s`.
fn took(ms: f64) -> String {
    match ms {
        ms if ms < 1000.0 => format!("{ms:.1} ms"),
        ms if ms < 60_000.0 => format!("{:.1} s", ms / 1000.0),
        ms => {
            let s = (ms / 1000.0).round() as u64;
            format!("{} min {:02} s", s / 60, s % 60)
        }
    }
}

fn eta(seconds: Option<u64>) -> String {
    seconds.map_or(String::new(), |s| match s {
        s if s < 3600 => format!(", in about {} min", s.div_ceil(60)),
        s => format!(", in about {:.1} h", s as f64 / 3600.0),
    })
}

fn at(u: &Upgrade) -> String {
    format!("upgrade {} at height {}", u.name, u.height)
}

/// The one-line message: where, then what.
pub fn text(n: &Notice) -> String {
    let chain = if n.chain.is_empty() {
        "chain ?"
    } else {
        n.chain.as_str()
    };
    let host = if n.hostname.is_empty() {
        n.daemon.clone()
    } else {
        format!("{} on {}", n.daemon, n.hostname)
    };
    let what = match &n.event {
        Event::PlanKnown(p) => format!(
            "{} is known ({}){}",
            at(&p.upgrade),
            p.source,
            eta(p.eta_seconds)
        ),
        Event::ReadinessChanged(r) if r.ready => {
            format!("{}: ready{}", at(&r.upgrade), eta(r.eta_seconds))
        }
        Event::ReadinessChanged(r) => {
            format!(
                "{}: NOT READY{}: {}",
                at(&r.upgrade),
                eta(r.eta_seconds),
                r.reason
            )
        }
        Event::UpgradeStarted(s) => format!(
            "{}: the chain halted; switching {} → {}",
            at(&s.upgrade),
            s.from,
            s.to
        ),
        Event::PhaseDone(p) => format!("{}: {} done in {}", at(&p.upgrade), p.phase, took(p.ms)),
        Event::UpgradeDone(d) => format!(
            "{}: the new binary runs, {} after the halt",
            at(&d.upgrade),
            took(d.downtime_ms)
        ),
        Event::UpgradeFailed(f) => format!("{} FAILED: {}", at(&f.upgrade), f.reason),
        Event::RolledBack(f) => format!("{} ROLLED BACK: {}", at(&f.upgrade), f.reason),
        Event::HealthVerdict(h) if h.healthy => {
            format!("{}: healthy: {}", at(&h.upgrade), h.detail)
        }
        Event::HealthVerdict(h) => {
            format!("{}: UNHEALTHY ({}): {}", at(&h.upgrade), h.action, h.detail)
        }
        Event::SigningResumed(s) => format!(
            "{}: validator {} signs again (block {}), {} after the halt",
            at(&s.upgrade),
            s.validator,
            s.height,
            took(s.downtime_ms)
        ),
        Event::CrashRestart(c) => format!(
            "the node died ({}); restarting it in {} (death {} of at most {})",
            c.status,
            took(c.delay_ms as f64),
            c.death,
            c.of
        ),
        Event::Stopping => "wasmvisor is stopping".into(),
    };
    format!("[{chain} · {host}] {what}")
}

fn upgrade(u: &Upgrade) -> Value {
    json!({"name": u.name, "height": u.height})
}

/// The notice as JSON: `event` (its kind), where, when, the event's own fields, `text`.
pub fn json(n: &Notice, text: &str) -> Value {
    let fields = match &n.event {
        Event::PlanKnown(p) => {
            json!({"upgrade": upgrade(&p.upgrade), "source": p.source, "eta_seconds": p.eta_seconds})
        }
        Event::ReadinessChanged(r) => {
            json!({"upgrade": upgrade(&r.upgrade), "ready": r.ready, "reason": r.reason, "eta_seconds": r.eta_seconds})
        }
        Event::UpgradeStarted(s) => {
            json!({"upgrade": upgrade(&s.upgrade), "from": s.from, "to": s.to})
        }
        Event::PhaseDone(p) => {
            json!({"upgrade": upgrade(&p.upgrade), "phase": p.phase, "ms": p.ms})
        }
        Event::UpgradeDone(d) => {
            json!({"upgrade": upgrade(&d.upgrade), "downtime_ms": d.downtime_ms})
        }
        Event::UpgradeFailed(f) | Event::RolledBack(f) => {
            json!({"upgrade": upgrade(&f.upgrade), "reason": f.reason})
        }
        Event::HealthVerdict(h) => {
            json!({"upgrade": upgrade(&h.upgrade), "healthy": h.healthy, "detail": h.detail, "by": h.by, "action": h.action})
        }
        Event::SigningResumed(s) => {
            json!({"upgrade": upgrade(&s.upgrade), "height": s.height, "validator": s.validator, "downtime_ms": s.downtime_ms})
        }
        Event::CrashRestart(c) => {
            json!({"status": c.status, "death": c.death, "of": c.of, "delay_ms": c.delay_ms})
        }
        Event::Stopping => json!({}),
    };
    let mut out = json!({
        "event": kind(&n.event),
        "chain": n.chain,
        "daemon": n.daemon,
        "hostname": n.hostname,
        "at_unix_ms": n.at_unix_ms,
        "text": text,
    });
    if let (Some(out), Value::Object(fields)) = (out.as_object_mut(), fields) {
        out.extend(fields);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::wasmvisor::plugin::notify::{HealthVerdict, UpgradeStarted};

    fn notice(event: Event) -> Notice {
        Notice {
            chain: "cosmoshub-4".into(),
            daemon: "gaiad".into(),
            hostname: "val-1".into(),
            at_unix_ms: 1_700_000_000_000,
            event,
        }
    }

    #[test]
    fn every_message_names_the_chain_the_upgrade_and_its_height() {
        let up = Upgrade {
            name: "v19".into(),
            height: 19_639_600,
        };
        let n = notice(Event::UpgradeStarted(UpgradeStarted {
            upgrade: up.clone(),
            from: "upgrades/v18".into(),
            to: "upgrades/v19".into(),
        }));
        let t = text(&n);
        assert_eq!(
            t,
            "[cosmoshub-4 · gaiad on val-1] upgrade v19 at height 19639600: the chain halted; switching upgrades/v18 → upgrades/v19"
        );
        let j = json(&n, &t);
        assert_eq!(j["event"], "upgrade-started");
        assert_eq!(j["upgrade"]["height"], 19_639_600);
        assert_eq!(j["chain"], "cosmoshub-4");
        let n = notice(Event::HealthVerdict(HealthVerdict {
            upgrade: up,
            healthy: false,
            detail: "signed none".into(),
            by: Some("signing".into()),
            action: "warn".into(),
        }));
        assert!(
            text(&n).contains("UNHEALTHY (warn): signed none"),
            "{}",
            text(&n)
        );
        assert_eq!(
            json(&n, "").get("by").and_then(Value::as_str),
            Some("signing")
        );
    }

    #[test]
    fn an_unknown_chain_still_says_where() {
        let mut n = notice(Event::Stopping);
        n.chain.clear();
        n.hostname.clear();
        assert_eq!(text(&n), "[chain ? · gaiad] wasmvisor is stopping");
    }
}
