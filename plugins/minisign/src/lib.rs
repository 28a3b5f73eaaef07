//! A signed-release policy: only binaries whose sha256 a release manager signed are allowed.
//!
//! A release publishes, beside its binaries, a checksum file (`SHA256SUMS`: lines
//! `<sha256>  <file name>`) and its minisign signature (`SHA256SUMS.minisig`, made with
//! `minisign -Sm SHA256SUMS`). This resolver, placed after the ones that choose the binary:
//! - for `fetch`: fetches the checksum file beside each artifact and its signature (beside it,
//!   or from the plan), verifies the signature with a configured key, and keeps only the
//!   artifacts the signed file lists — with the signed sha256 as their checksum, so the host
//!   verifies the download against it; an artifact whose own checksum disagrees is dropped;
//! - for `use-staged`: requires the staged binary's sha256 to be the signed one for the plan's
//!   binary for this platform;
//! - refuses, with the reason for each artifact, when nothing is left.
//!
//! Settings:
//! - `public-key` (one or more, required): a minisign public key, the base64 line (`RW…`) of a
//!   `minisign.pub`;
//! - `signature` = `beside` (default: `<checksums>.minisig` beside the checksum file) or `plan`
//!   (the plan's `info` JSON carries the signature file's text under `"minisig"`);
//! - `checksums` (default `SHA256SUMS`): the checksum file's name beside the binaries;
//! - `bind-to-plan = true`: the signature's trusted comment (`minisign -t`, signed with the
//!   file) must name the plan, so a signed checksum file of another release cannot be replayed
//!   for this upgrade. Without it, any checksum file the key signed is accepted for any plan:
//!   the key vouches for binaries, not for which upgrade runs which.
//!
//! Only prehashed signatures (minisign's default since 0.8) are accepted.

use minisign_verify::{PublicKey, Signature};
use serde_json::Value;
use wasmvisor_plugin_support::getter::{self, Algorithm, Checksum};
use wasmvisor_plugin_support::{absolute, pick_binary, read_all, setting, setting_list};

wit_bindgen::generate!({ world: "resolver", path: "../../wit/plugin-0.2", generate_all });

use exports::wasmvisor::plugin::resolve::Guest;
use wasmvisor::plugin::host::{Level, log};
use wasmvisor::plugin::http;
use wasmvisor::plugin::types::{Artifact, Checksum as WitChecksum, Decision, HashAlgorithm};
use wasmvisor::plugin::types::{Request, Settings};

/// The largest checksum or signature file read.
const MAX_FILE: usize = 1 << 20;

struct Minisign;

/// Where the signature comes from.
#[derive(Debug, Clone, PartialEq)]
enum From {
    Beside,
    Plan(String),
}

struct Policy {
    keys: Vec<PublicKey>,
    from: From,
    checksums: String,
    /// The plan name the trusted comment must contain (`bind-to-plan`).
    plan: Option<String>,
}

impl Guest for Minisign {
    fn resolve(request: Request, previous: Option<Decision>, settings: Settings) -> Decision {
        let policy = match Policy::new(&settings, &request.plan.info, &request.plan.name) {
            Ok(p) => p,
            Err(e) => return Decision::Refuse(format!("minisign: {e}")),
        };
        match previous {
            None => Decision::Refuse(
                "minisign: nothing proposed a binary (put a resolver before this one)".into(),
            ),
            Some(Decision::Fetch(artifacts)) => {
                let mut why = Vec::new();
                let mut kept = Vec::new();
                for a in artifacts {
                    match policy.signed(&a.url, &mut |u| get(u)) {
                        Ok(sha256) => match agrees(&a, &sha256) {
                            Ok(()) => {
                                log(Level::Info, &format!("{}: signed sha256 {sha256}", a.url));
                                kept.push(Artifact {
                                    checksum: Some(WitChecksum {
                                        algorithm: HashAlgorithm::Sha256,
                                        hex: sha256,
                                    }),
                                    ..a
                                });
                            }
                            Err(e) => why.push(format!("{}: {e}", a.url)),
                        },
                        Err(e) => why.push(format!("{}: {e}", a.url)),
                    }
                }
                if kept.is_empty() {
                    Decision::Refuse(format!("minisign: {}", why.join("; ")))
                } else {
                    Decision::Fetch(kept)
                }
            }
            Some(Decision::UseStaged) => match staged(&policy, &request) {
                Ok(()) => Decision::UseStaged,
                Err(e) => Decision::Refuse(format!("minisign: the staged binary: {e}")),
            },
            // No binary to judge: fail closed, so a resolver placed after this policy cannot
            // supply one it never verified.
            Some(Decision::Unresolved(reason)) => {
                Decision::Refuse(format!("minisign: no binary to judge: {reason}"))
            }
            Some(other) => other,
        }
    }
}

impl Policy {
    fn new(settings: &Settings, info: &str, plan: &str) -> Result<Policy, String> {
        let keys = setting_list(settings, "public-key")
            .iter()
            .map(|k| {
                PublicKey::from_base64(k)
                    .map_err(|e| format!("public-key {k:?} is not a minisign public key: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err("no public-key is configured: every binary would be refused".into());
        }
        let from = match setting(settings, "signature").unwrap_or("beside") {
            "beside" => From::Beside,
            "plan" => {
                let info: Value = serde_json::from_str(info.trim()).map_err(|_| {
                    "signature = \"plan\", but the plan's info is not JSON".to_string()
                })?;
                From::Plan(
                    info["minisig"]
                        .as_str()
                        .ok_or("signature = \"plan\", but the plan's info has no \"minisig\"")?
                        .to_string(),
                )
            }
            other => {
                return Err(format!("signature {other:?}: use \"beside\" or \"plan\""));
            }
        };
        let checksums = setting(settings, "checksums")
            .unwrap_or("SHA256SUMS")
            .to_string();
        if checksums.is_empty() || checksums.contains('/') {
            return Err(format!("checksums {checksums:?}: give a file name"));
        }
        let plan = match setting(settings, "bind-to-plan").unwrap_or("false") {
            "true" => Some(plan.to_string()),
            "false" => None,
            other => return Err(format!("bind-to-plan {other:?}: use true or false")),
        };
        Ok(Policy {
            keys,
            from,
            checksums,
            plan,
        })
    }

    /// The signed sha256 of the file at `url` (go-getter form), from the checksum file beside it.
    fn signed(
        &self,
        url: &str,
        fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    ) -> Result<String, String> {
        let parsed = getter::parse_url(url)?;
        let base = parsed.url.split(['?', '#']).next().unwrap_or("");
        let (dir, _) = base
            .rsplit_once('/')
            .ok_or_else(|| format!("{base} has no folder"))?;
        let sums_url = format!("{dir}/{}", self.checksums);
        let sums = fetch(&sums_url)?;
        let signature = match &self.from {
            From::Beside => {
                let sig_url = format!("{sums_url}.minisig");
                String::from_utf8(fetch(&sig_url)?).map_err(|_| format!("{sig_url} is not text"))?
            }
            From::Plan(text) => text.clone(),
        };
        self.verify(&sums, &signature)
            .map_err(|e| format!("{sums_url}: {e}"))?;
        let text = String::from_utf8_lossy(&sums);
        let digest = getter::checksum_from_file(
            &text,
            &getter::url_path(base),
            &getter::url_path(&sums_url),
        )
        .map_err(|e| format!("the signed {}: {e}", self.checksums))?;
        if digest.algorithm != Algorithm::Sha256 {
            return Err(format!(
                "the signed {} gives a {} digest, not a sha256",
                self.checksums, digest.algorithm
            ));
        }
        Ok(digest.hex.to_ascii_lowercase())
    }

    /// Whether `signature` (a `.minisig` file's text) is a valid signature of `data` by one of
    /// the configured keys.
    fn verify(&self, data: &[u8], signature: &str) -> Result<(), String> {
        let signature = Signature::decode(signature)
            .map_err(|e| format!("the signature is not a minisign signature: {e}"))?;
        let mut last = String::from("no key");
        let mut verified = false;
        for key in &self.keys {
            match key.verify(data, &signature, false) {
                Ok(()) => {
                    verified = true;
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        if !verified {
            return Err(format!(
                "no configured public-key verifies its signature ({last})"
            ));
        }
        // The trusted comment is covered by the signature: what it says, the key said.
        if let Some(plan) = &self.plan {
            let comment = signature.trusted_comment();
            let named = comment
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'))
                .any(|word| word.eq_ignore_ascii_case(plan));
            if !named {
                return Err(format!(
                    "its signature's trusted comment {comment:?} does not name the plan {plan} (bind-to-plan)"
                ));
            }
        }
        Ok(())
    }
}

/// Whether an artifact's own checksum (the resolver's, or the URL's `?checksum=`) agrees with
/// the signed sha256.
fn agrees(a: &Artifact, signed: &str) -> Result<(), String> {
    if let Some(c) = &a.checksum
        && c.algorithm == HashAlgorithm::Sha256
        && !c.hex.eq_ignore_ascii_case(signed)
    {
        return Err(format!(
            "its checksum {} is not the signed sha256 {signed}",
            c.hex
        ));
    }
    if let Ok(getter::GetterUrl {
        checksum: Some(Checksum::Digest(d)),
        ..
    }) = getter::parse_url(&a.url)
        && d.algorithm == Algorithm::Sha256
        && !d.hex.eq_ignore_ascii_case(signed)
    {
        return Err(format!(
            "its ?checksum= {} is not the signed sha256 {signed}",
            d.hex
        ));
    }
    Ok(())
}

/// The staged binary must be the signed one for the plan's binary for this platform.
fn staged(policy: &Policy, request: &Request) -> Result<(), String> {
    let sha = request
        .staged
        .as_ref()
        .and_then(|s| s.sha256.clone())
        .ok_or("wasmvisor gave no sha256 for it")?;
    let info: Value = serde_json::from_str(request.plan.info.trim())
        .map_err(|_| "the plan's info is not JSON, so no signed release names it".to_string())?;
    let url = pick_binary(
        &info["binaries"],
        &request.platform.os,
        &request.platform.arch,
    )
    .ok_or("the plan names no binary for this platform, so no signed release names it")?;
    let signed = policy.signed(url, &mut |u| get(u))?;
    if signed.eq_ignore_ascii_case(&sha) {
        Ok(())
    } else {
        Err(format!("its sha256 {sha} is not the signed {signed}"))
    }
}

/// Fetches a small file, following up to five redirects (each checked against the allowlist
/// by the host).
fn get(url: &str) -> Result<Vec<u8>, String> {
    let mut url = url.to_string();
    for _ in 0..5 {
        let response = http::get(&url, &[]).map_err(|e| format!("cannot fetch {url}: {e:?}"))?;
        let status = response.status();
        if (300..400).contains(&status) {
            let location = response
                .header("location")
                .ok_or_else(|| format!("{url}: HTTP {status} without a location"))?;
            url = absolute(&url, &location);
            continue;
        }
        if status != 200 {
            return Err(format!("{url}: HTTP {status}"));
        }
        return read_all(&url, MAX_FILE, |n| response.read(n));
    }
    Err(format!("{url}: more than five redirects"))
}

#[cfg(test)]
mod tests;

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Minisign);
