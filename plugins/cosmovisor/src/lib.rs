//! Cosmovisor's own policy as a resolver, bundled into wasmvisor as the default.
//!
//! 1. The plan's upgrade folder holds `bin/<daemon>`: use it.
//! 2. Otherwise, when `DAEMON_ALLOW_DOWNLOAD_BINARIES` is on, take the URL for this platform
//!    (`<os>/<arch>`, then `any`) from the `binaries` map in the plan's `info`, where `info` is
//!    the JSON document itself or a URL to it. The URL's `?checksum=<type>:<hex>` becomes the
//!    artifact's checksum; with `DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM` every URL must carry one
//!    (the document's URL too, which Cosmovisor forgets).
//! 3. Otherwise refuse, saying what the operator can do.
//!
//! A decision from an earlier resolver is kept as it is: this policy only fills a gap.

use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use wasmvisor_plugin_support::{UrlChecksum, pick_binary, read_all, split_checksum};

wit_bindgen::generate!({ world: "resolver", path: "../../wit/plugin-0.1" });

use exports::wasmvisor::plugin::resolve::Guest;
use wasmvisor::plugin::host::{Level, log};
use wasmvisor::plugin::http;
use wasmvisor::plugin::types::{
    ArchiveFormat, Artifact, Checksum, Decision, HashAlgorithm, Request, Settings,
};

/// The largest `info` document fetched from a URL.
const MAX_DOCUMENT: usize = 1 << 20;

struct Cosmovisor;

impl Guest for Cosmovisor {
    fn resolve(request: Request, previous: Option<Decision>, _settings: Settings) -> Decision {
        if let Some(decision) = previous {
            return decision;
        }
        decide(&request).unwrap_or_else(Decision::Refuse)
    }
}

fn decide(request: &Request) -> Result<Decision, String> {
    let dir = request
        .staged
        .as_ref()
        .map_or_else(|| request.plan.name.clone(), |s| s.dir.clone());
    if request.staged.as_ref().is_some_and(|s| s.has_binary) {
        return Ok(Decision::UseStaged);
    }
    let missing = format!("upgrades/{dir}/bin/{} does not exist", request.daemon_name);
    if !request.downloads_allowed {
        return Err(format!(
            "{missing} and downloads are off: put the binary there, or set DAEMON_ALLOW_DOWNLOAD_BINARIES=true"
        ));
    }
    let info = request.plan.info.trim();
    let document: Value = if info.starts_with('{') {
        serde_json::from_str(info)
            .map_err(|e| format!("{missing}, and the plan's info is not valid JSON: {e}"))?
    } else if info.starts_with("http://") || info.starts_with("https://") {
        let (url, checksum) = checked_url(info, request.checksum_required)?;
        let bytes = get(&url)?;
        if let Some(sum) = &checksum {
            verify(&bytes, sum).map_err(|e| format!("the document at {url}: {e}"))?;
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("the document at {url} is not valid JSON: {e}"))?
    } else {
        return Err(format!(
            "{missing}, and the plan's info holds no binaries map (neither JSON nor a URL to it)"
        ));
    };
    let platform = &request.platform;
    let url =
        pick_binary(&document["binaries"], &platform.os, &platform.arch).ok_or_else(|| {
            format!(
                "{missing}, and the plan's binaries map has neither {}/{} nor any",
                platform.os, platform.arch
            )
        })?;
    let (url, checksum) = checked_url(url, request.checksum_required)?;
    log(
        Level::Info,
        &format!("download for {}: {url}", request.plan.name),
    );
    Ok(Decision::Fetch(vec![Artifact {
        url,
        checksum: checksum.map(|c| Checksum {
            algorithm: if c.algorithm == "sha512" {
                HashAlgorithm::Sha512
            } else {
                HashAlgorithm::Sha256
            },
            hex: c.hex,
        }),
        format: ArchiveFormat::Auto,
    }]))
}

fn checked_url(url: &str, required: bool) -> Result<(String, Option<UrlChecksum>), String> {
    let (bare, checksum) = split_checksum(url).map_err(|e| format!("{url}: {e}"))?;
    if required && checksum.is_none() {
        return Err(format!(
            "{url} has no ?checksum= and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on: add one to the plan's URL"
        ));
    }
    Ok((bare, checksum))
}

/// Fetches a small document, following up to five redirects.
fn get(url: &str) -> Result<Vec<u8>, String> {
    let mut url = url.to_string();
    for _ in 0..5 {
        let response = http::get(&url, &[]).map_err(|e| format!("cannot fetch {url}: {e:?}"))?;
        let status = response.status();
        if (300..400).contains(&status) {
            url = response
                .header("location")
                .ok_or_else(|| format!("{url}: HTTP {status} without a location"))?;
            continue;
        }
        if status != 200 {
            return Err(format!("{url}: HTTP {status}"));
        }
        return read_all(&url, MAX_DOCUMENT, |n| response.read(n));
    }
    Err(format!("{url}: too many redirects"))
}

fn verify(bytes: &[u8], sum: &UrlChecksum) -> Result<(), String> {
    let actual = match sum.algorithm.as_str() {
        "sha512" => hex(&Sha512::digest(bytes)),
        _ => hex(&Sha256::digest(bytes)),
    };
    if actual == sum.hex {
        Ok(())
    } else {
        Err(format!(
            "{} checksum mismatch: expected {}, got {actual}",
            sum.algorithm, sum.hex
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Cosmovisor);
