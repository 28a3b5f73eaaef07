//! The node's CometBFT RPC, read for one thing: the height the application last committed
//! (`/abci_info`).
//! Plain HTTP/1.1 on the configured address (loopback by default), with a timeout and a size cap.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_RESPONSE: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Accepts `http://host:port`, `tcp://host:port` (CometBFT's laddr form) or `host:port`, the
    /// host a name, an IPv4 address or a bracketed IPv6 address.
    pub fn parse(address: &str) -> Result<Endpoint, String> {
        let example = "write it like http://127.0.0.1:26657";
        if address.starts_with("https://") {
            return Err(format!(
                "{address:?}: https is not supported; use the node's plain RPC address (http://127.0.0.1:26657)"
            ));
        }
        let rest = address
            .strip_prefix("http://")
            .or_else(|| address.strip_prefix("tcp://"))
            .unwrap_or(address);
        if rest.contains("://") {
            return Err(format!("{address:?}: unknown scheme; {example}"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = split_host_port(rest)
            .ok_or_else(|| format!("{address:?} is not a host:port address; {example}"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{address:?} has no valid port (1-65535); {example}"))?;
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }

    /// The last height the node's application committed (`/abci_info`), or why it could not be
    /// read. CometBFT's `/status` reports the block store, which is one block ahead of the
    /// application while a block executes and after a halt (the halted block is stored, never
    /// applied); where `/abci_info` is not answered, `/status` minus one stands in as a lower bound.
    pub async fn app_height(&self, timeout: Duration) -> Result<u64, String> {
        let info = tokio::time::timeout(timeout, self.get_json("/abci_info"))
            .await
            .map_err(|_| "timed out".to_string())
            .and_then(|r| r);
        match info {
            Ok(value) => {
                let response = &value["result"]["response"];
                if !response.is_object() {
                    return Err("no result.response in /abci_info".into());
                }
                // Amino JSON leaves out zero values: no field means height 0 (a fresh chain).
                match &response["last_block_height"] {
                    serde_json::Value::Null => Ok(0),
                    h => number(h, "last_block_height"),
                }
            }
            Err(e) if e.starts_with("HTTP ") => {
                let status = tokio::time::timeout(timeout, self.get_json("/status"))
                    .await
                    .map_err(|_| "timed out".to_string())??;
                let stored = number(
                    &status["result"]["sync_info"]["latest_block_height"],
                    "latest_block_height",
                )?;
                Ok(stored.saturating_sub(1))
            }
            Err(e) => Err(e),
        }
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value, String> {
        let body = self.get(path).await?;
        serde_json::from_slice(&body).map_err(|e| format!("{path}: not JSON: {e}"))
    }

    async fn get(&self, path: &str) -> Result<Vec<u8>, String> {
        let mut stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nAccept: application/json\r\n\r\n",
            self.host, self.port
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            response.extend_from_slice(&chunk[..n]);
            if response.len() > MAX_RESPONSE {
                return Err("response too large".into());
            }
        }
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("malformed HTTP response")?;
        let head = String::from_utf8_lossy(&response[..split]);
        let status_ok = head
            .lines()
            .next()
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("200"));
        if !status_ok {
            return Err(format!("HTTP {}", head.lines().next().unwrap_or("")));
        }
        let body = response[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return dechunk(&body);
        }
        Ok(body)
    }
}

/// A height CometBFT writes as a decimal string (or, from some proxies, a number).
fn number(value: &serde_json::Value, field: &str) -> Result<u64, String> {
    match value {
        serde_json::Value::String(s) => s.parse().map_err(|_| format!("bad {field} {s:?}")),
        serde_json::Value::Number(n) => n.as_u64().ok_or_else(|| format!("bad {field} {n}")),
        _ => Err(format!("no {field} in the answer")),
    }
}

/// Splits `host:port`, where the host is a name, IPv4 address or `[IPv6]`.
pub fn split_host_port(text: &str) -> Option<(&str, &str)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        (inside, after.strip_prefix(':')?)
    } else {
        let (host, port) = text.rsplit_once(':')?;
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        if !valid {
            return None;
        }
        (host, port)
    };
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some((host, port))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("truncated chunked body".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:26657").unwrap(),
            Endpoint {
                host: "127.0.0.1".into(),
                port: 26657
            }
        );
        assert_eq!(Endpoint::parse("tcp://localhost:1234/").unwrap().port, 1234);
        assert_eq!(Endpoint::parse("[::1]:5").unwrap().host, "::1");
        assert!(Endpoint::parse("https://x:1").is_err());
        assert!(Endpoint::parse("localhost").is_err());
        assert!(Endpoint::parse("http://x:notaport").is_err());
        for bad in [
            "http://[::1",
            "http://[::1]",
            "[not-ip]:80",
            "http://:26657",
            "http://a b:1",
            "grpc://h:1",
            "h:0",
            "h:70000",
            "http://host:1/path",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Endpoint::parse("http://[::1]:26657").unwrap().host, "::1");
    }

    #[test]
    fn decodes_chunked_bodies() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
    }
}
