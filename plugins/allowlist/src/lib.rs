//! A policy resolver: only binaries that pass the configured rules go on. Put it after the
//! resolver that proposes the binary.
//!
//! Settings (at least one; with none, everything is refused — fail closed):
//! - `sha256`: one or more hex digests, separated by commas or spaces (the key may repeat):
//!   the staged binary's sha256 must be listed, and a download's declared sha256 (the
//!   resolver's checksum, or the URL's `?checksum=`) must be;
//! - `min-checksum` (`md5`, `sha1`, `sha256`, `sha512`): a download must carry a checksum at
//!   least this strong. A `?checksum=file:` (a checksum file) is judged by its algorithm only
//!   once fetched, by the host: with `min-checksum` above md5 it is refused here.
//!
//! `use-staged` passes the `sha256` rule (a staged binary is not downloaded, so `min-checksum`
//! does not apply); `fetch` keeps the artifacts that pass both rules, and refuses when none is
//! left; a refusal before this resolver stays a refusal.

use wasmvisor_plugin_support::getter::{self, Algorithm, Checksum};
use wasmvisor_plugin_support::{setting, setting_list};

wit_bindgen::generate!({ world: "resolver", path: "../../wit/plugin-0.2", generate_all });

use exports::wasmvisor::plugin::resolve::Guest;
use wasmvisor::plugin::types::{Artifact, Decision, HashAlgorithm, Request, Settings};

struct Allowlist;

/// The rules, from the settings.
struct Rules {
    sha256: Vec<String>,
    min: Option<Algorithm>,
}

impl Guest for Allowlist {
    fn resolve(request: Request, previous: Option<Decision>, settings: Settings) -> Decision {
        let rules = match rules(&settings) {
            Ok(r) => r,
            Err(e) => return Decision::Refuse(format!("allowlist: {e}")),
        };
        match previous {
            None => Decision::Refuse(
                "allowlist: nothing proposed a binary (put a resolver before this one)".into(),
            ),
            // No binary to judge: fail closed, so a resolver placed after this policy cannot
            // supply one it never saw.
            Some(Decision::Unresolved(reason)) => {
                Decision::Refuse(format!("allowlist: no binary to judge: {reason}"))
            }
            Some(d @ (Decision::Refuse(_) | Decision::NotBefore(_))) => d,
            Some(Decision::UseStaged) => {
                let sha = request.staged.and_then(|s| s.sha256).unwrap_or_default();
                if rules.sha256.is_empty() || rules.sha256.contains(&sha) {
                    Decision::UseStaged
                } else {
                    Decision::Refuse(format!(
                        "allowlist: the staged binary's sha256 {sha} is not allowed"
                    ))
                }
            }
            Some(Decision::Fetch(artifacts)) => {
                let mut why = Vec::new();
                let kept: Vec<Artifact> = artifacts
                    .into_iter()
                    .filter(|a| match judge(&rules, a) {
                        Ok(()) => true,
                        Err(e) => {
                            why.push(e);
                            false
                        }
                    })
                    .collect();
                if kept.is_empty() {
                    Decision::Refuse(format!("allowlist: {}", why.join("; ")))
                } else {
                    Decision::Fetch(kept)
                }
            }
        }
    }
}

fn rules(settings: &Settings) -> Result<Rules, String> {
    let sha256: Vec<String> = setting_list(settings, "sha256")
        .into_iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let min = match setting(settings, "min-checksum") {
        None => None,
        Some(name) => Some(Algorithm::from_name(name).ok_or_else(|| {
            format!("min-checksum = {name:?} is not one of md5, sha1, sha256, sha512")
        })?),
    };
    if sha256.is_empty() && min.is_none() {
        return Err("neither sha256 nor min-checksum is configured; refusing everything".into());
    }
    Ok(Rules { sha256, min })
}

/// Whether a proposed download passes the rules; if not, why.
fn judge(rules: &Rules, artifact: &Artifact) -> Result<(), String> {
    let url = getter::parse_url(&artifact.url).map_err(|e| format!("{}: {e}", artifact.url))?;
    // The declared digests: the resolver's, and the URL's.
    let mut declared: Vec<(Algorithm, String)> = Vec::new();
    if let Some(c) = &artifact.checksum {
        let algorithm = match c.algorithm {
            HashAlgorithm::Sha256 => Algorithm::Sha256,
            HashAlgorithm::Sha512 => Algorithm::Sha512,
        };
        declared.push((algorithm, c.hex.to_ascii_lowercase()));
    }
    let mut file = false;
    match &url.checksum {
        Some(Checksum::Digest(d)) => declared.push((d.algorithm, d.hex.clone())),
        Some(Checksum::File(_)) => file = true,
        None => {}
    }
    if let Some(min) = rules.min {
        let strongest = declared.iter().map(|(a, _)| *a).max();
        match strongest {
            Some(a) if a >= min => {}
            _ if file && min == Algorithm::Md5 => {}
            Some(a) => {
                return Err(format!(
                    "{} has a {a} checksum; min-checksum is {min}",
                    url.url
                ));
            }
            None if file => {
                return Err(format!(
                    "{}: its checksum is in a checksum file, whose algorithm is known only once fetched; min-checksum is {min}: put a typed checksum in the URL",
                    url.url
                ));
            }
            None => {
                return Err(format!(
                    "{} has no checksum; min-checksum is {min}",
                    url.url
                ));
            }
        }
    }
    if !rules.sha256.is_empty()
        && !declared
            .iter()
            .any(|(a, hex)| *a == Algorithm::Sha256 && rules.sha256.contains(hex))
    {
        return Err(format!("{} has no allowed sha256", url.url));
    }
    Ok(())
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Allowlist);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmvisor::plugin::types::ArchiveFormat;

    fn artifact(url: &str) -> Artifact {
        Artifact {
            url: url.into(),
            checksum: None,
            format: ArchiveFormat::Auto,
        }
    }

    #[test]
    fn min_checksum_judges_the_urls_checksum() {
        let rules = Rules {
            sha256: vec![],
            min: Some(Algorithm::Sha256),
        };
        let sha256 = "a".repeat(64);
        assert!(judge(&rules, &artifact(&format!("https://h/b?checksum={sha256}"))).is_ok());
        assert!(
            judge(
                &rules,
                &artifact(&format!("https://h/b?checksum=sha512:{}", "b".repeat(128)))
            )
            .is_ok()
        );
        let md5 = judge(
            &rules,
            &artifact(&format!("https://h/b?checksum=md5:{}", "c".repeat(32))),
        );
        assert!(
            md5.unwrap_err()
                .contains("md5 checksum; min-checksum is sha256")
        );
        assert!(
            judge(&rules, &artifact("https://h/b"))
                .unwrap_err()
                .contains("no checksum")
        );
        assert!(
            judge(
                &rules,
                &artifact("https://h/b?checksum=file:https://h/SUMS")
            )
            .unwrap_err()
            .contains("checksum file")
        );
        assert!(judge(&rules, &artifact("https://h/b?checksum=zz")).is_err());
    }

    #[test]
    fn listed_digests_from_the_url_count() {
        let sha = "d".repeat(64);
        let rules = Rules {
            sha256: vec![sha.clone()],
            min: None,
        };
        assert!(
            judge(
                &rules,
                &artifact(&format!(
                    "https://h/b?checksum=sha256:{}",
                    sha.to_uppercase()
                ))
            )
            .is_ok()
        );
        assert!(
            judge(
                &rules,
                &artifact(&format!("https://h/b?checksum={}", "e".repeat(64)))
            )
            .is_err()
        );
    }
}
