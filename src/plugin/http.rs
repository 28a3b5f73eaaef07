//! The `http` host interface: GET to the hosts allowlisted for the calling plugin, nothing else;
//! and what every request of a call, `http` or wasi:http, is held to (`Outbound`).

use std::io::Read;
use std::time::{Duration, Instant};

use crate::plugin::spec::AllowHost;

/// A response handed to a plugin as the `response` resource.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send + Sync>,
    /// Keeps the connection reachable by a stop request until the response is dropped.
    _cancel: crate::cancel::Registered,
}

/// What one call's HTTP requests may reach and what bounds them, through the `http` import and
/// wasi:http alike (`wasi_http.rs` makes it the store's wasi:http hooks): the plugin's
/// allow-hosts, the call's deadline, the longest silence while reading, and the stop request
/// that shuts a request down.
#[derive(Clone)]
pub struct Outbound {
    pub plugin: String,
    pub allow: Allow,
    pub deadline: Instant,
    pub read_idle: Duration,
    pub cancel: crate::cancel::Cancel,
}

/// The hosts one plugin may reach: its `allow-hosts`, parsed when `plugins.toml` was read
/// (`spec::AllowHost`: `*`, `host`, `host:port`, `[IPv6]:port`, `*.domain`, each with an
/// optional port). No entry, no host.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    hosts: Vec<AllowHost>,
}

impl Allow {
    pub fn new(hosts: &[AllowHost]) -> Allow {
        Allow {
            hosts: hosts.to_vec(),
        }
    }

    /// Whether `host` (as the request's URI writes it) on `port` is allowed.
    pub fn permits(&self, host: &str, port: u16) -> bool {
        self.hosts.iter().any(|h| h.permits(host, port))
    }
}

/// Why a request was not made or failed.
pub enum GetError {
    Denied(String),
    Failed(String),
}

/// Why no request can be started.
pub enum NotStarted {
    /// The call's deadline has passed.
    Deadline,
    /// wasmvisor is shutting down.
    Stopped,
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotStarted::Deadline => "the call's deadline has passed",
            NotStarted::Stopped => "stopped: wasmvisor is shutting down",
        })
    }
}

impl Outbound {
    /// Whether the plugin may send a request to `uri`: http or https, to a host in its
    /// allow-hosts. A refusal is logged, and says why.
    // A String: the refusal is what the plugin is told (the WIT `http-error`, wasi:http's error).
    pub fn permit(&self, uri: &ureq::http::Uri) -> Result<(), String> {
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => return Err(format!("{uri}: only http and https URLs are allowed")),
        };
        let host = uri.host().unwrap_or("");
        let port = uri.port_u16().unwrap_or(default_port);
        if !self.allow.permits(host, port) {
            tracing::warn!(
                plugin = self.plugin,
                host,
                port,
                "plugin asked for a host that is not in its allow-hosts"
            );
            return Err(format!("{host}:{port} is not in this plugin's allow-hosts"));
        }
        Ok(())
    }

    /// The agent of one request, shut down by a stop request while the returned guard lives: no
    /// redirect followed (the plugin sees the 3xx), statuses passed through. Every time limit
    /// is clamped to the time left before the call's deadline, less the time the plugin is left
    /// to answer after a request that ran out ([`answer_margin`]) — epoch interruption cannot stop
    /// a plugin blocked in a host call, so the request itself must end by then: connecting (at
    /// most 15 s), the response's head (at most 60 s) and `idle`, the longest silence while
    /// reading the body (a server that stops sending mid-body is noticed after it, not at the
    /// deadline).
    pub fn agent(
        &self,
        connect: Option<Duration>,
        first_byte: Option<Duration>,
        idle: Duration,
    ) -> Result<(ureq::Agent, crate::cancel::Registered), NotStarted> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NotStarted::Deadline);
        }
        // The request ends a little before the call does, so that the plugin is told its
        // request timed out and can still answer (a health check's `pending`) instead of being
        // stopped at its deadline without a word.
        let total = left.saturating_sub(answer_margin(left));
        let clamp = |d: Option<Duration>, most: Duration| d.unwrap_or(most).min(most).min(total);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(total))
            .timeout_connect(Some(clamp(connect, Duration::from_secs(15))))
            .timeout_recv_response(Some(clamp(first_byte, Duration::from_secs(60))))
            .timeout_per_read(Some(idle.min(total)))
            .user_agent(concat!("wasmvisor/", env!("CARGO_PKG_VERSION")))
            .tls_config(crate::tls::config())
            .build()
            .into();
        let registered = self.cancel.register(&agent).ok_or(NotStarted::Stopped)?;
        Ok((agent, registered))
    }

    /// Performs one GET for the plugin, without following redirects.
    pub fn get(&self, url: &str, headers: &[(String, String)]) -> Result<Response, GetError> {
        let uri: ureq::http::Uri = url
            .parse()
            .map_err(|e| GetError::Denied(format!("{url:?} is not a valid URL: {e}")))?;
        self.permit(&uri).map_err(GetError::Denied)?;
        let headers = request_headers(headers).map_err(|why| {
            tracing::warn!(
                plugin = self.plugin,
                url,
                "plugin HTTP request refused: {why}"
            );
            GetError::Denied(why)
        })?;
        let (agent, registered) = self
            .agent(None, None, self.read_idle)
            .map_err(|e| GetError::Failed(e.to_string()))?;
        let mut request = agent.get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .call()
            .map_err(|e| GetError::Failed(format!("GET {url}: {e}")))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        tracing::debug!(plugin = self.plugin, url, status, "plugin HTTP request");
        let body = response.into_body().into_reader();
        Ok(Response {
            status,
            headers,
            body: Box::new(body),
            _cancel: registered,
        })
    }
}

/// Whether a plugin may not set this header on an `http` request. The same rule as wasi:http's
/// (wasmtime-wasi-http's `DEFAULT_FORBIDDEN_HEADERS`, which refuses them in the `fields` a
/// plugin builds): `host` — the host writes it from the URI that was checked against
/// allow-hosts, or a plugin allowed to reach a CDN or proxy could address another site behind
/// it — and the headers of the connection itself (`connection`, `keep-alive`,
/// `transfer-encoding`, `upgrade`, `proxy-*`, `http2-settings`). And `content-length`: the
/// import sends a GET without a body, so a length would leave the server waiting for bytes that
/// never come until the call's deadline (wasi:http checks it against the body it is given).
pub fn forbidden_header(name: &ureq::http::HeaderName) -> bool {
    wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(name)
        || name == ureq::http::header::CONTENT_LENGTH
}

/// The headers a plugin asked for, checked: a valid name and value, and not a forbidden one.
/// A refusal is an error the plugin sees (as wasi:http's `forbidden`), naming the header.
// A String: the refusal is what the plugin is told (wasi:http's `forbidden`, the WIT `http-error`).
pub fn request_headers(
    headers: &[(String, String)],
) -> Result<Vec<(ureq::http::HeaderName, ureq::http::HeaderValue)>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let parsed = ureq::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header {name:?}: not a valid header name"))?;
            if forbidden_header(&parsed) {
                let list: Vec<String> = wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS
                    .iter()
                    .map(|h| h.as_str().to_string())
                    .chain(["content-length".to_string()])
                    .collect();
                return Err(format!(
                    "header {name:?}: a plugin may not set it, wasmvisor does (forbidden: {})",
                    list.join(", ")
                ));
            }
            let value = ureq::http::HeaderValue::from_str(value)
                .map_err(|_| format!("header {name:?}: its value is not a valid header value"))?;
            Ok((parsed, value))
        })
        .collect()
}

/// The largest read a plugin may ask for at once.
pub const MAX_READ: u32 = 1 << 20;

/// Reads up to `max` bytes (capped) from a response.
// A String: it is the WIT `http-error.failed` the plugin is given.
pub fn read(response: &mut Response, max: u32) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; max.min(MAX_READ) as usize];
    let n = response.body.read(&mut buf).map_err(|e| {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut
            || e.get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>())
                .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)));
        if timed_out {
            format!("reading the body: the server sent nothing for too long ({e})")
        } else {
            format!("reading the body: {e}")
        }
    })?;
    buf.truncate(n);
    Ok(buf)
}

pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// How long before the call's deadline a request is made to end (`left` is what remains of
/// the call): a tenth of it, at most a second — the plugin's own answer takes microseconds.
pub fn answer_margin(left: Duration) -> Duration {
    (left / 10).min(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::{Allow, AllowHost, request_headers};

    fn allow(entries: &[&str]) -> Allow {
        let hosts: Vec<AllowHost> = entries
            .iter()
            .map(|e| AllowHost::parse(e).unwrap())
            .collect();
        Allow::new(&hosts)
    }

    #[test]
    fn allowlist_patterns() {
        let a = allow(&["github.com", "*.githubusercontent.com", "127.0.0.1:8080"]);
        assert!(a.permits("GitHub.com", 443));
        assert!(a.permits("objects.githubusercontent.com", 443));
        assert!(!a.permits("githubusercontent.com", 443));
        assert!(a.permits("127.0.0.1", 8080));
        assert!(!a.permits("127.0.0.1", 8081));
        assert!(!a.permits("evil.com", 443));
        assert!(!a.permits("github.com.evil.com", 443));
        assert!(allow(&["*"]).permits("anything", 1));
        assert!(!Allow::new(&[]).permits("localhost", 80));
        assert!(allow(&["[::1]:9"]).permits("[::1]", 9));
        assert!(!allow(&["[::1]:9"]).permits("[::1]", 26657));
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forbidden_headers_are_refused_naming_the_header() {
        for name in [
            "Host",
            "host",
            "HOST",
            "Connection",
            "Keep-Alive",
            "Transfer-Encoding",
            "Content-Length",
            "Upgrade",
            "Proxy-Authorization",
            "Proxy-Authenticate",
            "Proxy-Connection",
            "HTTP2-Settings",
        ] {
            let headers = pairs(&[("range", "bytes=0-"), (name, "x")]);
            let err = request_headers(&headers).expect_err(name);
            assert!(err.contains(&format!("header {name:?}")), "{err}");
            assert!(err.contains("may not set it"), "{err}");
        }
    }

    #[test]
    fn the_list_is_wasi_http_s_and_content_length() {
        for name in wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.iter() {
            assert!(super::forbidden_header(name), "{name}");
        }
        assert!(super::forbidden_header(&ureq::http::header::CONTENT_LENGTH));
        assert!(!super::forbidden_header(&ureq::http::header::RANGE));
    }

    #[test]
    fn other_headers_pass_and_malformed_ones_are_refused() {
        let ok = request_headers(&pairs(&[
            ("Range", "bytes=10-"),
            ("Accept", "application/json"),
            ("Authorization", "Bearer t"),
            ("User-Agent", "plugin/1"),
        ]))
        .unwrap();
        assert_eq!(ok.len(), 4);
        assert_eq!(ok[0].0, ureq::http::header::RANGE);
        assert_eq!(ok[0].1, "bytes=10-");
        for bad in [("bad name", "v"), ("", "v"), ("x-a", "line\r\nHost: evil")] {
            assert!(request_headers(&pairs(&[bad])).is_err(), "{bad:?}");
        }
    }
}
