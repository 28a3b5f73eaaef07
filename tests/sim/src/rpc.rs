//! The CometBFT-shaped JSON RPC: `/status` (with the latest block's time), `/blockchain` (block
//! headers, for the pace), `/block` (the block
//! store's height; with `?height=h`, that block's header, time and the votes for the block
//! before), `/commit` (a block's votes), `/abci_info` and
//! `/abci_query` (the upgrade module's `CurrentPlan`, the gov module's `Proposals`), one
//! connection per request.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::node::Node;
use crate::{commit, die, gov, grpc};

/// The node's P2P id: 20 bytes in hex, as CometBFT derives from `config/node_key.json`; here
/// from the home folder, so every version of one home is the same node.
fn node_id(home: &Path) -> String {
    crate::commit::home_hex(home, 0, 40, false)
}

pub(crate) fn serve_rpc(node: Arc<Node>) {
    let addr = format!("127.0.0.1:{}", node.cfg.rpc_port);
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match TcpListener::bind(&addr) {
            Ok(l) => break l,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Err(e) => die(&format!("cannot serve RPC on {addr}: {e}"), 4),
        }
    };
    for stream in listener.incoming().flatten() {
        let node = node.clone();
        thread::spawn(move || answer(&node, stream));
    }
}

fn answer(node: &Node, mut stream: TcpStream) {
    let mut line = String::new();
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (app, stored) = node.reported();
    let route = path.split('?').next().unwrap_or("");
    let body = match route {
        "/status" => status(node, stored),
        "/block" => match query(path, "height") {
            None => {
                json!({"jsonrpc": "2.0", "id": -1, "result": {"block": {"header": {"height": stored.to_string(), "chain_id": "sim-1"}}}})
            }
            Some(h) => match h.trim_matches('"').parse::<u64>() {
                Ok(h) if h >= 1 && h <= stored => block(node, h),
                // As CometBFT refuses a height it does not hold.
                _ => return refuse_height(&mut stream, h, stored),
            },
        },
        "/commit" => match commit::height(query(path, "height"), stored) {
            Ok(h) => commit::answer(node, h, stored),
            Err(h) => return refuse_height(&mut stream, &h, stored),
        },
        "/blockchain" => match blockchain(node, path, stored) {
            Ok(answer) => answer,
            Err(why) => return refuse(&mut stream, &why),
        },
        "/abci_query"
            if path.contains("cosmos.upgrade.v1beta1.Query%2FCurrentPlan")
                || path.contains("cosmos.upgrade.v1beta1.Query/CurrentPlan") =>
        {
            let message = grpc::current_plan(node);
            let mut response = json!({"height": app.to_string(), "codespace": "", "log": ""});
            // Empty bytes are left out, as CometBFT's JSON does.
            if !message.is_empty() {
                response["value"] = json!(grpc::base64(&message));
            }
            json!({"jsonrpc": "2.0", "id": -1, "result": {"response": response}})
        }
        "/abci_query" if abci_method(path).is_some_and(|m| m == gov::V1 || m == gov::V1BETA1) => {
            gov_query(node, path, app)
        }
        // Amino JSON leaves out zero values, as CometBFT does.
        "/abci_info" => {
            let mut response =
                json!({"data": "sim", "version": node.cfg.version, "app_version": "1"});
            if app > 0 {
                response["last_block_height"] = json!(app.to_string());
            }
            if let Some(lie) = node.lie(app) {
                response["last_block_height"] = lie;
            }
            json!({"jsonrpc": "2.0", "id": -1, "result": {"response": response}})
        }
        _ => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
    };
    let body = body.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `/block?height=h`: that block's header and, from block 2, the votes for the block before.
fn block(node: &Node, h: u64) -> serde_json::Value {
    let mut block = json!({"header": header(node, h), "data": {"txs": []},
        "evidence": {"evidence": []}});
    if h > 1 {
        block["last_commit"] = commit::commit(node, h - 1);
    }
    json!({"jsonrpc": "2.0", "id": -1, "result": {
        "block_id": {"hash": format!("{h:064X}"), "parts": {"total": 1, "hash": format!("{h:064X}")}},
        "block": block}})
}

/// Block `h`'s header (the fields a client reads).
pub(crate) fn header(node: &Node, h: u64) -> serde_json::Value {
    json!({"version": {"block": "11", "app": "0"}, "chain_id": "sim-1",
        "height": h.to_string(), "time": rfc3339(node.block_time_ms(h))})
}

/// `/blockchain?minHeight=a&maxHeight=b`: the headers of blocks b down to a (at most 20), as
/// CometBFT's `BlockchainInfo` answers, its bounds taken as `filterMinMax` takes them.
fn blockchain(node: &Node, path: &str, stored: u64) -> Result<serde_json::Value, String> {
    let bound = |name: &str| -> Result<u64, String> {
        match query(path, name).map(|v| v.trim_matches('"')) {
            None | Some("") => Ok(0),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| format!("error converting {name}: {v:?} is not a number")),
        }
    };
    let (min, max) = (bound("minHeight")?, bound("maxHeight")?);
    let max = if max == 0 { stored } else { max.min(stored) };
    let min = min.max(1).max((max + 1).saturating_sub(20));
    if min > max {
        return Err(format!(
            "min height {min} can't be greater than max height {max}"
        ));
    }
    let metas: Vec<serde_json::Value> = (min..=max)
        .rev()
        .map(|h| {
            json!({"block_id": {"hash": format!("{h:064X}"), "parts": {"total": 1, "hash": format!("{h:064X}")}},
                "block_size": "1893",
                "header": {"version": {"block": "11", "app": "0"}, "chain_id": "sim-1",
                    "height": h.to_string(), "time": rfc3339(node.block_time_ms(h))},
                "num_txs": "0"})
        })
        .collect();
    Ok(
        json!({"jsonrpc": "2.0", "id": -1, "result": {"last_height": stored.to_string(), "block_metas": metas}}),
    )
}

/// The value of `name` in the query string of `path` (as sent: not decoded).
fn query<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    path.split_once('?')?
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// The gRPC method an `abci_query` path names: `path="/cosmos.gov.v1.Query/Proposals"`, quoted
/// with `%22` or `"`, slashes plain or `%2F`.
fn abci_method(path: &str) -> Option<String> {
    let raw = query(path, "path")?;
    let method = raw
        .replace("%22", "")
        .replace('"', "")
        .replace("%2F", "/")
        .replace("%2f", "/");
    Some(method)
}

/// `0x`-prefixed hex, as CometBFT's URI form takes bytes.
fn hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.strip_prefix("0x")?;
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Unix milliseconds as CometBFT writes a time: RFC 3339 in UTC, the fraction's trailing zeros
/// dropped (Go's `RFC3339Nano`).
pub(crate) fn rfc3339(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    let mut text = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
    if milli > 0 {
        text.push_str(format!(".{milli:03}").trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// `/status`: the node, and the latest block with its time (the earliest too, once there is one).
fn status(node: &Node, stored: u64) -> serde_json::Value {
    let mut sync = json!({"latest_block_height": stored.to_string(), "catching_up": false});
    if stored > 0 {
        sync["latest_block_time"] = json!(rfc3339(node.block_time_ms(stored)));
        sync["earliest_block_height"] = json!("1");
        sync["earliest_block_time"] = json!(rfc3339(node.block_time_ms(1)));
    }
    json!({"jsonrpc": "2.0", "id": -1, "result": {
        "node_info": {"id": node_id(&node.home), "network": "sim-1", "version": "0.38.0", "moniker": node.cfg.version},
        "sync_info": sync,
        "validator_info": commit::validator_info(node),
    }})
}

/// `/abci_query` of a gov `Proposals` query, as CometBFT v0.38 writes the `ResponseQuery`.
fn gov_query(node: &Node, path: &str, app: u64) -> serde_json::Value {
    let method = abci_method(path).unwrap_or_default();
    let data = query(path, "data").and_then(hex).unwrap_or_default();
    let response = match gov::answer(node, &method, &data) {
        Some(Ok(message)) => {
            node.event(json!({"event": "abci-query", "method": method, "bytes": message.len()}));
            let mut r = json!({"code": 0, "log": "", "info": "", "index": "0", "key": null,
                "value": null, "proofOps": null, "height": app.to_string(), "codespace": ""});
            if !message.is_empty() {
                r["value"] = json!(grpc::base64(&message));
            }
            r
        }
        // The SDK's answer for a query path it has no route for.
        _ => json!({"code": 6, "log": "unknown query path: unknown request", "info": "",
            "index": "0", "key": null, "value": null, "proofOps": null,
            "height": app.to_string(), "codespace": "sdk"}),
    };
    json!({"jsonrpc": "2.0", "id": -1, "result": {"response": response}})
}

/// CometBFT's refusal of `/block?height=h` beyond its store.
fn refuse_height(stream: &mut TcpStream, h: &str, stored: u64) {
    refuse(
        stream,
        &format!("height {h} must be less than or equal to the current blockchain height {stored}"),
    )
}

/// A refusal as CometBFT sends one: HTTP 500, a JSON-RPC error whose `data` says why.
fn refuse(stream: &mut TcpStream, why: &str) {
    let body =
        json!({"jsonrpc": "2.0", "id": -1, "error": {"code": -32603, "message": "Internal error",
        "data": why}})
        .to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
