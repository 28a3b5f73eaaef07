//! A resolver that finds an upgrade's binaries in the cosmos chain-registry.
//!
//! The registry keeps a chain's versions in `<chain>/versions.json` (`versions[]`, since late
//! 2024) and, before that, in `<chain>/chain.json` (`codebase.versions[]`); both are read.
//!
//! Settings (one of the two ways):
//! - `chain-json`: one file in either layout, as seen inside the plugin (grant its folder, e.g.
//!   `dirs = [["/srv/chain-registry/osmosis", "/registry"]]` and
//!   `chain-json = "/registry/versions.json"`), or an http(s) URL (allowlist its host);
//! - `registry` and `chain`: a registry checkout (a granted folder) or its base URL, e.g.
//!   `registry = "https://raw.githubusercontent.com/cosmos/chain-registry/master"`, and the chain's
//!   folder in it (`osmosis`, `testnets/osmosistestnet`): `versions.json` is read, and
//!   `chain.json` where there is none.
//! - `prefer-staged` (default `true`): a binary already in the upgrade folder wins.
//!
//! Redirects are followed (up to five), each request within the plugin's `allow-hosts`. The
//! version is the entry whose `name` equals the plan's name, ignoring case (the one at the
//! plan's height, if several are); its `binaries` map gives the URL for `<os>/<arch>` (then
//! `any`), which goes to the host as the registry wrote it, `?checksum=` and all.

use serde_json::Value;
use wasmvisor_plugin_support::getter;
use wasmvisor_plugin_support::{absolute, pick_binary, read_all, setting};

wit_bindgen::generate!({ world: "resolver", path: "../../wit/plugin-0.2", generate_all });

use exports::wasmvisor::plugin::resolve::Guest;
use wasmvisor::plugin::host::{Level, log};
use wasmvisor::plugin::http;
use wasmvisor::plugin::types::{ArchiveFormat, Artifact, Decision, Request, Settings};

/// The largest registry file read (osmosis/versions.json is about 100 KiB).
const MAX_FILE: usize = 8 << 20;

struct ChainRegistry;

impl Guest for ChainRegistry {
    fn resolve(request: Request, previous: Option<Decision>, settings: Settings) -> Decision {
        // A binary named before is kept; otherwise this resolver looks (a fallback after the
        // bundled one, or the first).
        if let Some(d @ (Decision::UseStaged | Decision::Fetch(_))) = previous {
            return d;
        }
        let prefer_staged = setting(&settings, "prefer-staged") != Some("false");
        if prefer_staged && request.staged.as_ref().is_some_and(|s| s.has_binary) {
            return Decision::UseStaged;
        }
        match resolve(&request, &settings) {
            Ok(decision) => decision,
            Err(e) => Decision::Unresolved(format!("chain-registry: {e}")),
        }
    }
}

fn resolve(request: &Request, settings: &Settings) -> Result<Decision, String> {
    let (source, document) = match (
        setting(settings, "chain-json"),
        setting(settings, "registry"),
        setting(settings, "chain"),
    ) {
        (Some(file), _, _) => (
            file.to_string(),
            load(file)?.ok_or_else(|| format!("{file} does not exist"))?,
        ),
        (None, Some(registry), Some(chain)) => {
            let base = format!(
                "{}/{}",
                registry.trim_end_matches('/'),
                chain.trim_matches('/')
            );
            let versions = format!("{base}/versions.json");
            match load(&versions)? {
                Some(d) => (versions, d),
                None => {
                    let chain_json = format!("{base}/chain.json");
                    let d = load(&chain_json)?
                        .ok_or_else(|| format!("neither {versions} nor {chain_json} exists"))?;
                    (chain_json, d)
                }
            }
        }
        _ => {
            return Err(
                "set chain-json (a versions.json or chain.json), or registry and chain".into(),
            );
        }
    };
    let platform = &request.platform;
    let url = find(
        &document,
        &request.plan.name,
        request.plan.height,
        &platform.os,
        &platform.arch,
    )
    .map_err(|e| format!("{source}: {e}"))?;
    let parsed = getter::parse_url(&url).map_err(|e| format!("{url}: {e}"))?;
    if parsed.checksum.is_none() && request.checksum_required {
        return Err(format!(
            "{url} has no checksum and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on"
        ));
    }
    log(
        Level::Info,
        &format!("{}: {url} from {source}", request.plan.name),
    );
    Ok(Decision::Fetch(vec![Artifact {
        url,
        checksum: None,
        format: ArchiveFormat::Auto,
    }]))
}

/// Reads a registry file from a granted folder or over http(s); `None` when it does not exist.
fn load(source: &str) -> Result<Option<Value>, String> {
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        match get(source)? {
            Some(b) => b,
            None => return Ok(None),
        }
    } else {
        match std::fs::read(source) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "cannot read {source} (is its folder granted with dirs?): {e}"
                ));
            }
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{source} is not valid JSON: {e}"))
}

/// GETs `url`, following up to five redirects; `None` on 404.
fn get(url: &str) -> Result<Option<Vec<u8>>, String> {
    let mut url = url.to_string();
    for _ in 0..=5 {
        let response = http::get(&url, &[]).map_err(|e| format!("cannot fetch {url}: {e:?}"))?;
        match response.status() {
            200 => return read_all(&url, MAX_FILE, |n| response.read(n)).map(Some),
            404 => return Ok(None),
            status @ (301 | 302 | 303 | 307 | 308) => {
                let location = response
                    .header("location")
                    .ok_or_else(|| format!("{url}: HTTP {status} without a location"))?;
                url = absolute(&url, &location);
            }
            status => return Err(format!("{url}: HTTP {status}")),
        }
    }
    Err(format!("{url}: more than five redirects"))
}

/// The binary URL for the upgrade `name` at `height` on `os/arch`, from a versions.json
/// (`versions[]`) or a chain.json (`codebase.versions[]`).
pub fn find(
    document: &Value,
    name: &str,
    height: u64,
    os: &str,
    arch: &str,
) -> Result<String, String> {
    let versions = document["versions"]
        .as_array()
        .or_else(|| document["codebase"]["versions"].as_array())
        .ok_or("neither versions[] (versions.json) nor codebase.versions[] (chain.json)")?;
    let named: Vec<&Value> = versions
        .iter()
        .filter(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .collect();
    let version = named
        .iter()
        .find(|v| v["height"].as_u64() == Some(height))
        .or(named.first())
        .ok_or_else(|| format!("no version named {name:?}"))?;
    pick_binary(&version["binaries"], os, arch)
        .map(str::to_string)
        .ok_or_else(|| format!("version {name:?} has no binary for {os}/{arch} (nor any)"))
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(ChainRegistry);

#[cfg(test)]
mod tests;
