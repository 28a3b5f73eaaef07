//! The CometBFT-shaped JSON RPC: `/status`, `/block`, `/abci_info` and `/abci_query` (the
//! upgrade module's `CurrentPlan`), one connection per request.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::node::Node;
use crate::{die, grpc};

/// The node's P2P id: 20 bytes in hex, as CometBFT derives from `config/node_key.json`; here
/// from the home folder, so every version of one home is the same node.
fn node_id(home: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut id = String::new();
    for round in 0u8..3 {
        for b in home.as_os_str().as_encoded_bytes().iter().chain([&round]) {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        id.push_str(&format!("{hash:016x}"));
    }
    id.truncate(40);
    id
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
        "/status" => json!({"jsonrpc": "2.0", "id": -1, "result": {
            "node_info": {"id": node_id(&node.home), "network": "sim-1", "version": "0.38.0", "moniker": node.cfg.version},
            "sync_info": {"latest_block_height": stored.to_string(), "catching_up": false},
        }}),
        "/block" => {
            json!({"jsonrpc": "2.0", "id": -1, "result": {"block": {"header": {"height": stored.to_string(), "chain_id": "sim-1"}}}})
        }
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
