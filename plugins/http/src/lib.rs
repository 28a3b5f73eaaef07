//! The HTTP(S) source, bundled into wasmvisor as the default.
//!
//! GETs the artifact through the host (which allows only this plugin's allowlisted hosts),
//! follows up to ten redirects, resumes from the bytes the host already holds with a `range`
//! request, and sorts failures into retryable (network, 408, 429, 5xx) and permanent (other
//! statuses) so the host retries only what may succeed.

wit_bindgen::generate!({ world: "source", path: "../../wit/plugin-0.2", generate_all });

use exports::wasmvisor::plugin::fetch::Guest;
use wasmvisor::plugin::host::{Level, log};
use wasmvisor::plugin::http::{self, HttpError};
use wasmvisor::plugin::sink::Output;
use wasmvisor::plugin::types::{Artifact, FetchError, Settings};

const CHUNK: u32 = 256 * 1024;
const MAX_REDIRECTS: usize = 10;

struct Http;

impl Guest for Http {
    fn fetch(artifact: Artifact, _settings: Settings, out: &Output) -> Result<(), FetchError> {
        let mut url = artifact.url.clone();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(FetchError::Unsupported);
        }
        for _ in 0..=MAX_REDIRECTS {
            let offset = out.written();
            let headers = if offset > 0 {
                vec![("range".to_string(), format!("bytes={offset}-"))]
            } else {
                Vec::new()
            };
            let response = http::get(&url, &headers).map_err(|e| match e {
                HttpError::Denied(m) => FetchError::Failed(m),
                HttpError::Failed(m) => FetchError::Retryable(m),
            })?;
            let status = response.status();
            match status {
                301 | 302 | 303 | 307 | 308 => {
                    let location = response.header("location").ok_or_else(|| {
                        FetchError::Failed(format!("{url}: HTTP {status} without a location"))
                    })?;
                    url = join(&url, &location);
                    continue;
                }
                200 => {
                    if offset > 0 {
                        log(
                            Level::Info,
                            "the server ignored the range request: starting over",
                        );
                        out.reset();
                    }
                }
                206 => {
                    let range = response.header("content-range").unwrap_or_default();
                    if !range.starts_with(&format!("bytes {offset}-")) {
                        out.reset();
                        return Err(FetchError::Retryable(format!(
                            "{url}: asked for bytes from {offset}, got {range:?}"
                        )));
                    }
                    log(Level::Info, &format!("resuming at byte {offset}"));
                }
                416 => {
                    out.reset();
                    return Err(FetchError::Retryable(format!(
                        "{url}: range not satisfiable; starting over"
                    )));
                }
                408 | 429 | 500..=599 => {
                    return Err(FetchError::Retryable(format!("{url}: HTTP {status}")));
                }
                _ => return Err(FetchError::Failed(format!("{url}: HTTP {status}"))),
            }
            loop {
                let chunk = response.read(CHUNK).map_err(|e| match e {
                    HttpError::Denied(m) | HttpError::Failed(m) => FetchError::Retryable(m),
                })?;
                if chunk.is_empty() {
                    return Ok(());
                }
                out.write(&chunk).map_err(FetchError::Failed)?;
            }
        }
        Err(FetchError::Failed(format!(
            "{}: more than {MAX_REDIRECTS} redirects",
            artifact.url
        )))
    }
}

/// Resolves a redirect's `location` against the URL it came from.
fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with("//") {
        format!("{}{}", &base[..scheme_end - 2], location)
    } else if location.starts_with('/') {
        format!("{}{location}", &base[..authority_end])
    } else {
        let path = base.split(['?', '#']).next().unwrap_or(base);
        let dir = path
            .rfind('/')
            .filter(|&i| i >= authority_end)
            .map_or(path.len(), |i| i + 1);
        let mut out = path[..dir].to_string();
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(location);
        out
    }
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(Http);

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn redirect_locations() {
        assert_eq!(
            join("https://a.io/x/y?q", "https://b.io/z"),
            "https://b.io/z"
        );
        assert_eq!(join("https://a.io/x/y?q", "/z"), "https://a.io/z");
        assert_eq!(join("https://a.io/x/y", "z"), "https://a.io/x/z");
        assert_eq!(join("https://a.io", "z"), "https://a.io/z");
        assert_eq!(join("https://a.io/x", "//c.io/w"), "https://c.io/w");
    }
}
