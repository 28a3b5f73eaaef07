//! The node's CometBFT RPC, read for what the supervisor must know of the chain: the height the
//! application last committed (`/abci_info`), who answers (`/status`'s `node_info`), and the
//! chain's pace — its latest block and the mean interval of the blocks before (`pace.rs`) —, and
//! after an upgrade the first block after its height and the node's validator's first vote in
//! the chain's commits (`votes.rs`).
//!
//! Plain HTTP/1.1 on the configured address (loopback by default) through ureq, the client the
//! plugins' requests already use: no proxy (an `HTTP_PROXY` meant for downloads must not stand
//! between the supervisor and its node), no redirect, a deadline for the whole exchange and a cap
//! on the body. ureq is blocking, so each request runs on tokio's blocking pool.

use std::time::Duration;

use crate::config::Endpoint;

mod pace;
mod votes;

pub use pace::Pace;

const MAX_RESPONSE: u64 = 1 << 20;

/// Why the RPC did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Unreachable(String),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("{path}: {reason}")]
    Malformed { path: String, reason: String },
    /// The request of `path` failed (no answer in time, no connection, an HTTP status without a
    /// JSON-RPC error), for a caller whose errors must name what it asked.
    #[error("{path}: {failure}")]
    Request {
        path: String,
        failure: Box<RpcError>,
    },
    /// The node answered `path` with a JSON-RPC `error` member: CometBFT's refusal of a height it
    /// does not hold or of a bad parameter (sent with HTTP 500), whose `data` says why.
    #[error("{path}: the node answered an error: {}", refusal(.error))]
    Refused {
        path: String,
        error: serde_json::Value,
    },
}

/// A JSON-RPC error as an operator reads it: CometBFT's `{"code": -32603, "message": "Internal
/// error", "data": "…"}` as `Internal error (-32603): …`; any other shape as its JSON, cut to a
/// line.
fn refusal(error: &serde_json::Value) -> String {
    let (code, message, data) = (&error["code"], &error["message"], &error["data"]);
    match (code.as_i64(), message.as_str()) {
        (Some(code), Some(message)) => match data.as_str() {
            Some(data) if !data.is_empty() => format!("{message} ({code}): {}", cut(data)),
            _ => format!("{message} ({code})"),
        },
        _ => cut(&error.to_string()),
    }
}

/// `text` cut to 300 characters, for an error that quotes what a node sent.
fn cut(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A client of one node's RPC. Cheap to clone (the agent's connection pool is shared).
#[derive(Clone)]
pub struct Rpc {
    endpoint: Endpoint,
    agent: ureq::Agent,
}

/// Who answers on the RPC: the node's identity (`/status` → `result.node_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's P2P key id (hex).
    pub id: String,
    /// The chain id.
    pub network: String,
}

impl Rpc {
    pub fn new(endpoint: &Endpoint, timeout: Duration) -> Rpc {
        let agent = ureq::Agent::config_builder()
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("wasmvisor/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Rpc {
            endpoint: endpoint.clone(),
            agent,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The last height the node's application committed (`/abci_info`), or why it could not be
    /// read. CometBFT's `/status` reports the block store, which is one block ahead of the
    /// application while a block executes and after a halt (the halted block is stored, never
    /// applied); where `/abci_info` is not answered, `/status` minus one stands in as a lower
    /// bound.
    pub async fn app_height(&self) -> Result<u64, RpcError> {
        match self.get_json("/abci_info").await {
            Ok(value) => abci_info_height(&value),
            Err(RpcError::Status(_)) => {
                let status = self.get_json("/status").await?;
                let stored = number(
                    &status["result"]["sync_info"]["latest_block_height"],
                    "/status",
                    "latest_block_height",
                )?;
                Ok(stored.saturating_sub(1))
            }
            Err(e) => Err(e),
        }
    }

    /// The identity of the node that answers (`/status`).
    pub async fn node_info(&self) -> Result<NodeInfo, RpcError> {
        let status = self.get_json("/status").await?;
        node_info(&status)
    }

    /// GETs `path` and parses the body as JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, RpcError> {
        let body = self.get(path).await?;
        serde_json::from_slice(&body).map_err(|e| RpcError::Malformed {
            path: path.to_string(),
            reason: format!("not JSON: {e}"),
        })
    }

    /// GETs `path` and parses the body as JSON, every failure naming `path`: a JSON-RPC
    /// `error` member (whatever the HTTP status: CometBFT sends its refusals with 500) is
    /// [`RpcError::Refused`], with what the node said.
    pub(super) async fn answer(&self, path: &str) -> Result<serde_json::Value, RpcError> {
        let at = |failure: RpcError| match failure {
            named @ RpcError::Malformed { .. } => named,
            failure => RpcError::Request {
                path: path.to_string(),
                failure: Box::new(failure),
            },
        };
        let (status, body) = self.exchange(path).await.map_err(at)?;
        let value = serde_json::from_slice::<serde_json::Value>(&body);
        if let Some(error) = value.as_ref().ok().and_then(|v| v.get("error")) {
            // Tendermint before v0.26 sent `"error": ""` with every success.
            if !error.is_null() && error.as_str() != Some("") {
                return Err(RpcError::Refused {
                    path: path.to_string(),
                    error: error.clone(),
                });
            }
        }
        if status != 200 {
            return Err(at(RpcError::Status(status)));
        }
        value.map_err(|e| RpcError::Malformed {
            path: path.to_string(),
            reason: format!("not JSON: {e}"),
        })
    }

    async fn get(&self, path: &str) -> Result<Vec<u8>, RpcError> {
        match self.exchange(path).await? {
            (200, body) => Ok(body),
            (status, _) => Err(RpcError::Status(status)),
        }
    }

    /// GETs `path`: the HTTP status and the body (at most [`MAX_RESPONSE`] bytes; empty when
    /// the body of an answer other than 200 cannot be read).
    async fn exchange(&self, path: &str) -> Result<(u16, Vec<u8>), RpcError> {
        let url = format!(
            "http://{}:{}{path}",
            host_for_url(&self.endpoint.host),
            self.endpoint.port
        );
        let agent = self.agent.clone();
        let path = path.to_string();
        let exchange = move || -> Result<(u16, Vec<u8>), RpcError> {
            let response = agent
                .get(&url)
                .header("Accept", "application/json")
                .call()
                .map_err(|e| failure(e, &path))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .into_with_config()
                .limit(MAX_RESPONSE)
                .read_to_vec();
            match body {
                Ok(body) => Ok((status, body)),
                // A refusal's body is read for what it says, but its status is the answer.
                Err(_) if status != 200 => Ok((status, Vec::new())),
                Err(e) => Err(failure(e, &path)),
            }
        };
        tokio::task::spawn_blocking(exchange)
            .await
            .map_err(|e| RpcError::Unreachable(format!("the request's thread failed: {e}")))?
    }
}

/// GETs `path` on `endpoint` and parses the body as JSON (for one-off queries).
pub async fn get_json(endpoint: &Endpoint, path: &str) -> Result<serde_json::Value, RpcError> {
    Rpc::new(endpoint, Duration::from_secs(10))
        .get_json(path)
        .await
}

/// An IPv6 literal is bracketed in a URL.
fn host_for_url(host: &str) -> std::borrow::Cow<'_, str> {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]").into()
    } else {
        host.into()
    }
}

fn failure(e: ureq::Error, path: &str) -> RpcError {
    match e {
        ureq::Error::Timeout(_) => RpcError::Timeout,
        ureq::Error::BodyExceedsLimit(_) => RpcError::Malformed {
            path: path.to_string(),
            reason: format!("larger than {} KiB", MAX_RESPONSE / 1024),
        },
        e => RpcError::Unreachable(e.to_string()),
    }
}

/// The application height in an `/abci_info` answer.
fn abci_info_height(value: &serde_json::Value) -> Result<u64, RpcError> {
    let response = &value["result"]["response"];
    if !response.is_object() {
        return Err(RpcError::Malformed {
            path: "/abci_info".into(),
            reason: "no result.response".into(),
        });
    }
    // Amino JSON leaves out zero values: no field means height 0 (a fresh chain).
    match &response["last_block_height"] {
        serde_json::Value::Null => Ok(0),
        h => number(h, "/abci_info", "last_block_height"),
    }
}

fn node_info(status: &serde_json::Value) -> Result<NodeInfo, RpcError> {
    let info = &status["result"]["node_info"];
    let field = |name: &str| match &info[name] {
        serde_json::Value::String(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(RpcError::Malformed {
            path: "/status".into(),
            reason: format!("no result.node_info.{name}"),
        }),
    };
    Ok(NodeInfo {
        id: field("id")?,
        network: field("network")?,
    })
}

/// A height CometBFT writes as a decimal string (or, from some proxies, a number). Only plain
/// decimal digits: `"+59"`, `" 59"` or `"0x3b"` are no height a node writes.
pub(super) fn number(value: &serde_json::Value, path: &str, field: &str) -> Result<u64, RpcError> {
    let bad = |shown: String| RpcError::Malformed {
        path: path.to_string(),
        reason: format!("bad {field} {shown}"),
    };
    match value {
        serde_json::Value::String(s) => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("{s:?}")));
            }
            s.parse().map_err(|_| bad(format!("{s:?}")))
        }
        serde_json::Value::Number(n) => n.as_u64().ok_or_else(|| bad(n.to_string())),
        _ => Err(RpcError::Malformed {
            path: path.to_string(),
            reason: format!("no {field} in the answer"),
        }),
    }
}

#[cfg(test)]
mod tests;
