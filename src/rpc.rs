//! The node's CometBFT RPC, read for one thing: the latest block height (`/status`).
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
    /// Accepts `http://host:port`, `tcp://host:port` (CometBFT's laddr form) or `host:port`.
    pub fn parse(address: &str) -> Result<Endpoint, String> {
        let rest = address
            .strip_prefix("http://")
            .or_else(|| address.strip_prefix("tcp://"))
            .unwrap_or(address);
        if address.starts_with("https://") {
            return Err(format!(
                "{address:?}: https is not supported; use the node's plain RPC address (http://127.0.0.1:26657)"
            ));
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
            format!("{address:?} is not an address; write it like http://127.0.0.1:26657")
        })?;
        let port: u16 = port.parse().map_err(|_| {
            format!("{address:?} has no valid port; write it like http://127.0.0.1:26657")
        })?;
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "{address:?} is not an address; write it like http://127.0.0.1:26657"
            ));
        }
        Ok(Endpoint {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        })
    }

    /// The latest committed height the node reports, or why it could not be read.
    pub async fn latest_height(&self, timeout: Duration) -> Result<u64, String> {
        let body = tokio::time::timeout(timeout, self.get("/status"))
            .await
            .map_err(|_| "timed out".to_string())??;
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        let height = &value["result"]["sync_info"]["latest_block_height"];
        match height {
            serde_json::Value::String(s) => s
                .parse()
                .map_err(|_| format!("bad latest_block_height {s:?}")),
            serde_json::Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| format!("bad latest_block_height {n}")),
            _ => Err("no result.sync_info.latest_block_height in /status".into()),
        }
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
    }

    #[test]
    fn decodes_chunked_bodies() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
    }
}
