//! A notifier: each event posted to a webhook, one message per event.
//!
//! Settings:
//! - `url` (required): where to POST; allowlist its host (`allow-hosts`).
//! - `format` (default `json`): `json` (the notice as a JSON object, with a `text` summary),
//!   `slack` (a Slack incoming webhook's `{"text": …}`), `discord` (a Discord webhook's
//!   `{"content": …, "username": …}`).
//! - `events` (default: all): the kinds to post, e.g. `["upgrade-started", "upgrade-done",
//!   "upgrade-failed", "rolled-back", "health-verdict", "signing-resumed"]`.
//! - `header` (any number): extra request headers, `"Name: value"` (an `Authorization`).
//! - `username` (default `wasmvisor`): the name a Discord message is posted as.
//!
//! Each message names the chain, the daemon and host, the upgrade and its height. A 2xx answer is
//! delivered; anything else is an error naming the status and the start of the answer.

mod message;
mod post;

use serde_json::json;
use wasmvisor_plugin_support::{setting, setting_list};

wit_bindgen::generate!({ world: "notifier", path: "../../wit/plugin-0.2.1", generate_all });

use exports::wasmvisor::plugin::notify::{Guest, Notice};

struct Webhook;

impl Guest for Webhook {
    fn notify(notice: Notice, settings: Vec<(String, String)>) -> Result<(), String> {
        let url = setting(&settings, "url").ok_or("webhook: the setting url is required")?;
        let kind = message::kind(&notice.event);
        let events = setting_list(&settings, "events");
        if !events.is_empty() && !events.iter().any(|e| e == kind) {
            return Ok(());
        }
        let text = message::text(&notice);
        let body = match setting(&settings, "format").unwrap_or("json") {
            "json" => message::json(&notice, &text),
            "slack" => json!({ "text": text }),
            "discord" => json!({
                "content": text,
                "username": setting(&settings, "username").unwrap_or("wasmvisor"),
            }),
            other => {
                return Err(format!(
                    "webhook: format {other:?} is not json, slack or discord"
                ));
            }
        };
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        for h in setting_list(&settings, "header") {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("webhook: header {h:?} is not \"Name: value\""))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let (status, answer) = post::post(url, &headers, body.to_string().as_bytes())?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&answer);
        let said: String = said.chars().take(200).collect();
        Err(format!("{url} answered HTTP {status}: {}", said.trim()))
    }
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Webhook);
