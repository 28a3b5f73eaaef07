//! `plugin call notifier`: one example notice of a kind, delivered.

use serde_json::json;

use super::Answer;
use crate::config::Config;
use crate::plugin::{Call, Host, PluginSpec};
use crate::tree::Plan;

/// A notifier told an example notice of `kind` about `plan`.
pub(super) fn notify(
    cfg: &Config,
    host: &Host,
    spec: &PluginSpec,
    plan: &Plan,
    kind: Option<&str>,
    call: &Call,
) -> Result<Answer, String> {
    use crate::notifier::{KINDS, sample, to_wit};
    let kinds = KINDS.join(", ");
    let kind = kind.ok_or_else(|| format!("a notifier needs --event KIND, one of {kinds}"))?;
    let upgrade = crate::observe::Upgrade::new(&plan.name, plan.height);
    let notice = sample(kind, &upgrade)
        .ok_or_else(|| format!("unknown --event {kind:?}: use one of {kinds}"))?;
    let notifier = host.load(spec).map_err(|e| e.to_string())?;
    let who = crate::notifier::Identity {
        chain: String::new(),
        daemon: cfg.name.clone(),
        hostname: String::new(),
    };
    let told = to_wit(&notice, crate::clock::unix_ms(), &who);
    Ok(match host.notify(&notifier, &told, call) {
        Ok(()) => Answer {
            json: json!({"delivered": kind}),
            said_no: false,
        },
        Err(e) if matches!(e.kind, crate::plugin::ErrorKind::Undelivered(_)) => Answer {
            json: json!({"not_delivered": kind, "error": e.to_string()}),
            said_no: true,
        },
        Err(e) => return Err(e.to_string()),
    })
}
