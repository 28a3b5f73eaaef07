//! A resolver that finds an upgrade's binaries in a cosmos chain-registry `chain.json`.
//!
//! Settings:
//! - `chain-json` (required): the file, as seen inside the plugin (grant its directory, e.g.
//!   `dirs = [["/srv/registry/osmosis", "/registry"]]` and `chain-json = "/registry/chain.json"`),
//!   or an http(s) URL (allowlist its host).
//! - `prefer-staged` (default `true`): a binary already in the upgrade folder wins.
//!
//! The version is the entry of `codebase.versions[]` whose `name` equals the plan's name
//! (ignoring case); its `binaries` map gives the URL for `<os>/<arch>` (then `any`), with the
//! checksum in `?checksum=` as in Cosmovisor's maps.

use serde_json::Value;
use wasmvisor_plugin_support::{pick_binary, read_all, setting, split_checksum};

wit_bindgen::generate!({ world: "resolver", path: "../../wit/plugin-0.1" });

use exports::wasmvisor::plugin::resolve::Guest;
use wasmvisor::plugin::host::{Level, log};
use wasmvisor::plugin::http;
use wasmvisor::plugin::types::{
    ArchiveFormat, Artifact, Checksum, Decision, HashAlgorithm, Request, Settings,
};

struct ChainRegistry;

impl Guest for ChainRegistry {
    fn resolve(request: Request, previous: Option<Decision>, settings: Settings) -> Decision {
        if matches!(previous, Some(Decision::Refuse(_))) {
            return previous.unwrap();
        }
        let prefer_staged = setting(&settings, "prefer-staged") != Some("false");
        if prefer_staged && request.staged.as_ref().is_some_and(|s| s.has_binary) {
            return Decision::UseStaged;
        }
        let Some(source) = setting(&settings, "chain-json") else {
            return Decision::Refuse("chain-registry: the setting chain-json is missing".into());
        };
        let document = match load(source) {
            Ok(d) => d,
            Err(e) => return Decision::Refuse(format!("chain-registry: {e}")),
        };
        match find(
            &document,
            &request.plan.name,
            &request.platform.os,
            &request.platform.arch,
        ) {
            Ok(url) => match split_checksum(&url) {
                Ok((url, checksum)) => {
                    if checksum.is_none() && request.checksum_required {
                        return Decision::Refuse(format!(
                            "chain-registry: {url} has no checksum and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on"
                        ));
                    }
                    log(
                        Level::Info,
                        &format!("{}: {url} from {source}", request.plan.name),
                    );
                    Decision::Fetch(vec![Artifact {
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
                    }])
                }
                Err(e) => Decision::Refuse(format!("chain-registry: {e}")),
            },
            Err(e) => Decision::Refuse(format!("chain-registry: {source}: {e}")),
        }
    }
}

fn load(source: &str) -> Result<Value, String> {
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        let response =
            http::get(source, &[]).map_err(|e| format!("cannot fetch {source}: {e:?}"))?;
        if response.status() != 200 {
            return Err(format!("{source}: HTTP {}", response.status()));
        }
        read_all(source, 8 << 20, |n| response.read(n))?
    } else {
        std::fs::read(source)
            .map_err(|e| format!("cannot read {source} (is its directory granted?): {e}"))?
    };
    serde_json::from_slice(&bytes).map_err(|e| format!("{source} is not valid JSON: {e}"))
}

/// The binary URL for the upgrade `name` on `os/arch`.
pub fn find(document: &Value, name: &str, os: &str, arch: &str) -> Result<String, String> {
    let versions = document["codebase"]["versions"]
        .as_array()
        .ok_or("no codebase.versions list")?;
    let version = versions
        .iter()
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .ok_or_else(|| format!("no version named {name:?} in codebase.versions"))?;
    pick_binary(&version["binaries"], os, arch)
        .map(str::to_string)
        .ok_or_else(|| format!("version {name:?} has no binary for {os}/{arch} (nor any)"))
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(ChainRegistry);

#[cfg(test)]
mod tests {
    use super::find;
    use serde_json::json;

    #[test]
    fn finds_the_version_by_name_and_platform() {
        let doc = json!({"codebase": {"versions": [
            {"name": "v1", "binaries": {"linux/amd64": "https://a/v1"}},
            {"name": "V2", "binaries": {"linux/amd64": "https://a/v2", "linux/arm64": "https://a/v2-arm"}},
        ]}});
        assert_eq!(
            find(&doc, "v2", "linux", "arm64").unwrap(),
            "https://a/v2-arm"
        );
        assert!(
            find(&doc, "v3", "linux", "amd64")
                .unwrap_err()
                .contains("no version")
        );
        assert!(
            find(&doc, "v1", "linux", "arm64")
                .unwrap_err()
                .contains("linux/arm64")
        );
        assert!(
            find(&json!({}), "v1", "linux", "arm64")
                .unwrap_err()
                .contains("codebase")
        );
    }
}
