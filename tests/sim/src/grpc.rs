//! The upgrade module's `CurrentPlan` query, as the node answers it: over gRPC (HTTP/2,
//! cleartext) and, encoded the same way, through `/abci_query`.

use std::sync::Arc;

use crate::gov;
use crate::node::Node;

const METHOD: &str = "/cosmos.upgrade.v1beta1.Query/CurrentPlan";

/// The `QueryCurrentPlanResponse` for the node's state: the first plan governance passed that
/// the chain has not applied or passed (empty when there is none).
pub fn current_plan(node: &Node) -> Vec<u8> {
    let state = node.state.lock().unwrap();
    let all = node.plans();
    let mut plans: Vec<_> = all
        .iter()
        .filter(|p| !state.applied.contains(&p.name) && p.height > state.height)
        .collect();
    plans.sort_by_key(|p| p.height);
    let Some(plan) = plans.first() else {
        return Vec::new();
    };
    let mut response = Vec::new();
    bytes_field(
        &mut response,
        1,
        &plan_message(&plan.name, plan.height, &plan.info),
    );
    response
}

/// A `Plan` as the SDK encodes a height-based one.
pub(crate) fn plan_message(name: &str, height: u64, info: &str) -> Vec<u8> {
    // gogoproto writes the zero time as Timestamp{seconds: -62135596800}.
    let mut time = Vec::new();
    varint(&mut time, 1 << 3);
    varint(&mut time, (-62_135_596_800i64) as u64);
    let mut message = Vec::new();
    bytes_field(&mut message, 1, name.as_bytes());
    bytes_field(&mut message, 2, &time);
    varint(&mut message, 3 << 3);
    varint(&mut message, height);
    if !info.is_empty() {
        bytes_field(&mut message, 4, info.as_bytes());
    }
    message
}

pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn bytes_field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Serves the query over gRPC on `127.0.0.1:<grpc_port>` (any other method: UNIMPLEMENTED).
pub fn serve(node: Arc<Node>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let address = format!("127.0.0.1:{}", node.cfg.grpc_port);
        let listener = loop {
            match tokio::net::TcpListener::bind(&address).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        node.event(serde_json::json!({"event": "grpc", "address": address}));
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let node = node.clone();
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    let method = request.uri().path().to_string();
                    let node = node.clone();
                    if let Some(code) = node.cfg.grpc_error {
                        // A failure comes as headers only ("Trailers-Only").
                        let head = http::Response::builder()
                            .status(200)
                            .header("content-type", "application/grpc")
                            .header("grpc-status", code.to_string())
                            .header("grpc-message", "query%20service%20unavailable")
                            .body(())
                            .unwrap();
                        let _ = respond.send_response(head, true);
                        continue;
                    }
                    tokio::spawn(async move {
                        let request = read_body(request.into_body()).await;
                        let head = http::Response::builder()
                            .status(200)
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let Ok(mut send) = respond.send_response(head, false) else {
                            return;
                        };
                        let mut trailers = http::HeaderMap::new();
                        match answer(&node, &method, &request) {
                            Ok(message) => {
                                node.event(serde_json::json!({"event": "grpc-query", "method": method, "bytes": message.len()}));
                                let mut frame = vec![0u8];
                                frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
                                frame.extend_from_slice(&message);
                                let _ = send.send_data(frame.into(), false);
                                trailers.insert("grpc-status", "0".parse().unwrap());
                            }
                            Err(text) => {
                                trailers.insert("grpc-status", "12".parse().unwrap());
                                trailers.insert("grpc-message", text.parse().unwrap());
                            }
                        }
                        let _ = send.send_trailers(trailers);
                    });
                }
            });
        }
    });
}

/// The answer to one call: the message, or the (percent-encoded) text of UNIMPLEMENTED.
fn answer(node: &Node, method: &str, request: &[u8]) -> Result<Vec<u8>, &'static str> {
    if method == METHOD {
        return Ok(current_plan(node));
    }
    match gov::answer(node, method, request) {
        Some(Ok(message)) => Ok(message),
        // grpc-go's answer for a service the server does not register.
        Some(Err(gov::Unknown)) => Err("unknown%20service%20cosmos.gov.v1.Query"),
        None => Err("unknown%20method"),
    }
}

/// The request's one message, unframed (empty when it is not one message).
async fn read_body(mut body: h2::RecvStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
        if bytes.len() > 1 << 20 {
            break;
        }
    }
    bytes.get(5..).map(<[u8]>::to_vec).unwrap_or_default()
}
