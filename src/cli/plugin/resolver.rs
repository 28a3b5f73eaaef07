//! `plugin call resolver`'s own parts: a decision as it prints one and reads it back
//! (`--previous`), and a resolver asked alone.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Answer;
use crate::cancel::Cancel;
use crate::config::Config;
use crate::plugin::{
    ArchiveFormat, Artifact, Call, Checksum, Decision, Deferral, HashAlgorithm, Host, PluginSet,
    PluginSpec,
};
use crate::tree::{Layout, Plan};

/// The decision as JSON: `{"decision": "fetch", "artifacts": [...]}` and the like.
pub fn decision_json(d: &Decision) -> Value {
    match d {
        Decision::UseStaged => json!({"decision": "use-staged"}),
        Decision::Refuse(r) => json!({"decision": "refuse", "reason": r}),
        Decision::Unresolved(r) => json!({"decision": "unresolved", "reason": r}),
        Decision::NotBefore(d) => json!({
            "decision": "not-before",
            "at": d.at,
            "time": crate::logging::rfc3339(d.at),
            "reason": d.reason,
        }),
        Decision::Fetch(list) => json!({
            "decision": "fetch",
            "artifacts": list.iter().map(|a| json!({
                "url": a.url,
                "checksum": a.checksum.as_ref().map(|c| format!("{}:{}", match c.algorithm {
                    HashAlgorithm::Sha256 => "sha256",
                    HashAlgorithm::Sha512 => "sha512",
                }, c.hex)),
                "format": match a.format {
                    ArchiveFormat::Auto => "auto",
                    ArchiveFormat::Raw => "raw",
                    ArchiveFormat::TarGz => "tar-gz",
                    ArchiveFormat::Zip => "zip",
                },
            })).collect::<Vec<_>>(),
        }),
    }
}

/// A decision in `decision_json`'s shape (a file's or an argument's text): what `--previous`
/// gives a resolver called alone.
pub fn decision_from_json(text: &str) -> Result<Decision, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let text_of = |key: &str| -> Result<String, String> {
        v[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("a {:?} decision needs a \"{key}\" string", v["decision"]))
    };
    Ok(match v["decision"].as_str() {
        Some("use-staged") => Decision::UseStaged,
        Some("refuse") => Decision::Refuse(text_of("reason")?),
        Some("unresolved") => Decision::Unresolved(text_of("reason")?),
        Some("not-before") => Decision::NotBefore(Deferral {
            at: v["at"]
                .as_u64()
                .ok_or("a not-before decision needs \"at\", Unix seconds")?,
            reason: text_of("reason")?,
        }),
        Some("fetch") => Decision::Fetch(
            v["artifacts"]
                .as_array()
                .ok_or("a fetch decision needs an \"artifacts\" list")?
                .iter()
                .map(artifact)
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(format!(
                "\"decision\" is {other:?}: use-staged, fetch, unresolved, refuse or not-before"
            ));
        }
    })
}

fn artifact(a: &Value) -> Result<Artifact, String> {
    let url = a["url"].as_str().ok_or("an artifact needs a \"url\"")?;
    let checksum = match a["checksum"].as_str() {
        None => None,
        Some(c) => {
            let (kind, hex) = c
                .split_once(':')
                .ok_or_else(|| format!("checksum {c:?} is not sha256:<hex> or sha512:<hex>"))?;
            let algorithm = match kind {
                "sha256" => HashAlgorithm::Sha256,
                "sha512" => HashAlgorithm::Sha512,
                _ => {
                    return Err(format!(
                        "checksum {c:?}: the contract carries sha256 or sha512"
                    ));
                }
            };
            Some(Checksum {
                algorithm,
                hex: hex.to_string(),
            })
        }
    };
    let format = match a["format"].as_str().unwrap_or("auto") {
        "auto" => ArchiveFormat::Auto,
        "raw" => ArchiveFormat::Raw,
        "tar-gz" => ArchiveFormat::TarGz,
        "zip" => ArchiveFormat::Zip,
        f => return Err(format!("format {f:?}: auto, raw, tar-gz or zip")),
    };
    Ok(Artifact {
        url: url.to_string(),
        checksum,
        format,
    })
}

/// One resolver asked alone, given `previous` (none: it is the first).
pub(super) fn resolve_alone(
    cfg: &Config,
    host: &Arc<Host>,
    spec: &PluginSpec,
    plan: &Plan,
    previous: Option<Decision>,
) -> Result<Answer, String> {
    let resolver = host.load(spec).map_err(|e| e.to_string())?;
    let set = PluginSet {
        host: host.clone(),
        resolvers: Vec::new(),
        sources: Vec::new(),
        health: Vec::new(),
        notifiers: Vec::new(),
        cancel: Cancel::new(),
    };
    let layout = Layout::open(cfg).ok();
    let request =
        crate::upgrade::request(&set, cfg, layout.as_ref(), plan).map_err(|e| e.to_string())?;
    let call = Call::new(&set.cancel);
    let d = host
        .resolve(&resolver, &request, previous.as_ref(), &call)
        .map_err(|e| e.to_string())?;
    let said_no = matches!(d, Decision::Refuse(_) | Decision::Unresolved(_));
    let mut answer = decision_json(&d);
    answer["decided_by"] = json!(spec.name);
    answer["previous"] = previous.as_ref().map_or(Value::Null, decision_json);
    Ok(Answer {
        json: answer,
        said_no,
    })
}

/// `--previous`: the JSON itself, or a file holding it.
pub(super) fn read_decision(given: &str) -> Result<Decision, String> {
    let text = if given.trim_start().starts_with('{') {
        given.to_string()
    } else {
        std::fs::read_to_string(given).map_err(|e| format!("--previous {given}: {e}"))?
    };
    decision_from_json(&text).map_err(|e| format!("--previous: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decision_reads_back_as_it_was_printed() {
        let decisions = [
            Decision::UseStaged,
            Decision::Refuse("no".into()),
            Decision::Unresolved("none".into()),
            Decision::NotBefore(Deferral {
                at: 1_900_000_000,
                reason: "window".into(),
            }),
            Decision::Fetch(vec![Artifact {
                url: "https://example.com/simd.tar.gz".into(),
                checksum: Some(Checksum {
                    algorithm: HashAlgorithm::Sha256,
                    hex: "ab".repeat(32),
                }),
                format: ArchiveFormat::TarGz,
            }]),
        ];
        for d in decisions {
            let text = decision_json(&d).to_string();
            assert_eq!(decision_from_json(&text), Ok(d), "{text}");
        }
        let e = decision_from_json(r#"{"decision": "refused"}"#).unwrap_err();
        assert!(
            e.contains("use-staged, fetch, unresolved, refuse or not-before"),
            "{e}"
        );
        assert!(
            decision_from_json(r#"{"decision": "refuse"}"#)
                .unwrap_err()
                .contains("reason")
        );
    }
}
