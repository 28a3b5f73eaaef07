//! The node's CometBFT RPC, read for one thing: the height the application last committed
//! (`/abci_info`).
//! Plain HTTP/1.1 on the configured address (loopback by default), with a timeout and a size cap.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Endpoint;

const MAX_RESPONSE: usize = 1 << 20;

/// The last height the node's application committed (`/abci_info`), or why it could not be
/// read. CometBFT's `/status` reports the block store, which is one block ahead of the
/// application while a block executes and after a halt (the halted block is stored, never
/// applied); where `/abci_info` is not answered, `/status` minus one stands in as a lower bound.
pub async fn app_height(endpoint: &Endpoint, timeout: Duration) -> Result<u64, String> {
    let info = tokio::time::timeout(timeout, get_json(endpoint, "/abci_info"))
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
            let status = tokio::time::timeout(timeout, get_json(endpoint, "/status"))
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

pub(super) async fn get_json(endpoint: &Endpoint, path: &str) -> Result<serde_json::Value, String> {
    let body = get(endpoint, path).await?;
    serde_json::from_slice(&body).map_err(|e| format!("{path}: not JSON: {e}"))
}

async fn get(endpoint: &Endpoint, path: &str) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nAccept: application/json\r\n\r\n",
        endpoint.host, endpoint.port
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

/// A height CometBFT writes as a decimal string (or, from some proxies, a number).
fn number(value: &serde_json::Value, field: &str) -> Result<u64, String> {
    match value {
        serde_json::Value::String(s) => s.parse().map_err(|_| format!("bad {field} {s:?}")),
        serde_json::Value::Number(n) => n.as_u64().ok_or_else(|| format!("bad {field} {n}")),
        _ => Err(format!("no {field} in the answer")),
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
    fn decodes_chunked_bodies() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
    }
}
