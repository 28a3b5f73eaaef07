//! Cosmovisor's own policy as a resolver, bundled into wasmvisor as the default.
//!
//! 1. The plan's upgrade folder holds `bin/<daemon>`: use it.
//! 2. Otherwise, when `DAEMON_ALLOW_DOWNLOAD_BINARIES` is on, take the URL for this platform
//!    (`<os>/<arch>`, then `any`) from the `binaries` map in the plan's `info`, where `info` is
//!    the JSON document itself or an http(s) URL to it (verified against the URL's own
//!    `?checksum=`, in any of go-getter's forms). The binary's URL goes to the host as the plan
//!    wrote it: the host reads its go-getter forms (`?checksum=`, `?archive=`, `//subfolder`),
//!    and with its `checksum` set from the URL's (sha256 and sha512, whatever the form), so
//!    that a policy after this one sees the digest.
//!    With `DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM` every URL must carry a checksum (the document's
//!    URL too); a malformed one is refused here, naming what is wrong.
//! 3. Otherwise refuse, saying what the operator can do.
//!
//! A decision from an earlier resolver is kept as it is: this policy only fills a gap.

use md5::Md5;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use wasmvisor_plugin_support::getter::{self, Algorithm, Checksum, Digest, GetterUrl};
use wasmvisor_plugin_support::{pick_binary, read_all};

wit_bindgen::generate!({ world: "resolver", path: "../../wit/plugin-0.2", generate_all });

use exports::wasmvisor::plugin::resolve::Guest;
use wasmvisor::plugin::host::{Level, log};
use wasmvisor::plugin::http;
use wasmvisor::plugin::types::{self, ArchiveFormat, Artifact, Decision, Request, Settings};

/// The largest `info` document (or checksum file) fetched from a URL.
const MAX_DOCUMENT: usize = 1 << 20;

struct Cosmovisor;

impl Guest for Cosmovisor {
    fn resolve(request: Request, previous: Option<Decision>, _settings: Settings) -> Decision {
        // A binary named before is kept; with none, this resolver looks, and says `unresolved`
        // (not a veto) when it finds nothing, so a fallback after it can still supply one.
        match previous {
            Some(Decision::Unresolved(_)) | None => {
                decide(&request).unwrap_or_else(Decision::Unresolved)
            }
            Some(decision) => decision,
        }
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
    if info.is_empty() {
        return Err(format!(
            "{missing}, and the plan's info is empty: there is no binaries map to download from"
        ));
    }
    let document: Value = if getter::is_url(info) {
        let url = checked(info, request.checksum_required)?;
        if !url.url.starts_with("http://") && !url.url.starts_with("https://") {
            return Err(format!(
                "{missing}, and the plan's info names {info:?}, a file on this host: resolvers cannot read local files; stage the binary, or serve the document over http(s)"
            ));
        }
        let bytes = get(&url.url)?;
        if let Some(checksum) = &url.checksum {
            let want = match checksum {
                Checksum::Digest(d) => d.clone(),
                Checksum::File(file) => from_checksum_file(file, &url.url)?,
            };
            verify(&bytes, &want).map_err(|e| format!("the document at {}: {e}", url.url))?;
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("the document at {} is not valid JSON: {e}", url.url))?
    } else {
        serde_json::from_str(info)
            .map_err(|e| format!("{missing}, and the plan's info is neither JSON nor a URL: {e}"))?
    };
    let platform = &request.platform;
    let url =
        pick_binary(&document["binaries"], &platform.os, &platform.arch).ok_or_else(|| {
            format!(
                "{missing}, and the plan's binaries map has neither {}/{} nor any",
                platform.os, platform.arch
            )
        })?;
    let parsed = checked(url, request.checksum_required)?;
    log(
        Level::Info,
        &format!("download for {}: {url}", request.plan.name),
    );
    Ok(Decision::Fetch(vec![Artifact {
        url: url.to_string(),
        checksum: artifact_checksum(&parsed),
        format: ArchiveFormat::Auto,
    }]))
}

/// The URL's checksum as the contract carries one, so that a policy after this resolver sees
/// the digest whatever form the plan gave it in: `?checksum=sha256:…`, a bare digest, or a
/// checksum file (fetched for its line; if it cannot be read here the host still fetches it and
/// verifies). md5 and sha1 have no place in the contract's `checksum`: they stay in the URL,
/// which the host verifies as well.
fn artifact_checksum(url: &GetterUrl) -> Option<types::Checksum> {
    let digest = match url.checksum.as_ref()? {
        Checksum::Digest(d) => d.clone(),
        Checksum::File(file) => match from_checksum_file(file, &url.url) {
            Ok(d) => d,
            Err(e) => {
                log(
                    Level::Warn,
                    &format!("{e}: the host reads it at the download"),
                );
                return None;
            }
        },
    };
    let algorithm = match digest.algorithm {
        Algorithm::Sha256 => types::HashAlgorithm::Sha256,
        Algorithm::Sha512 => types::HashAlgorithm::Sha512,
        Algorithm::Md5 | Algorithm::Sha1 => return None,
    };
    Some(types::Checksum {
        algorithm,
        hex: digest.hex,
    })
}

/// The URL taken apart, refused when its go-getter parameters are malformed or, with
/// `required`, when it has no checksum.
fn checked(url: &str, required: bool) -> Result<GetterUrl, String> {
    let parsed = getter::parse_url(url).map_err(|e| format!("{url}: {e}"))?;
    if required && parsed.checksum.is_none() {
        return Err(format!(
            "{url} has no ?checksum= and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on: add one to the plan's URL"
        ));
    }
    Ok(parsed)
}

/// The digest for `target` in the checksum file at `file`.
fn from_checksum_file(file: &str, target: &str) -> Result<Digest, String> {
    let url = checked(file, false)?;
    let bytes = get(&url.url)?;
    if let Some(Checksum::Digest(d)) = &url.checksum {
        verify(&bytes, d).map_err(|e| format!("the checksum file {file}: {e}"))?;
    }
    let text = String::from_utf8_lossy(&bytes);
    getter::checksum_from_file(
        &text,
        &getter::url_path(target),
        &getter::url_path(&url.url),
    )
    .map_err(|e| format!("the checksum file {file}: {e}"))
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

fn verify(bytes: &[u8], want: &Digest) -> Result<(), String> {
    let actual = match want.algorithm {
        Algorithm::Md5 => hex(&Md5::digest(bytes)),
        Algorithm::Sha1 => hex(&Sha1::digest(bytes)),
        Algorithm::Sha256 => hex(&Sha256::digest(bytes)),
        Algorithm::Sha512 => hex(&Sha512::digest(bytes)),
    };
    if want.matches(&actual) {
        Ok(())
    } else {
        Err(format!(
            "{} checksum mismatch: expected {}, got {actual}",
            want.algorithm, want.hex
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Cosmovisor);
