//! The CurrentPlan query's parts: the protobuf decoder on real-shaped and broken answers, the
//! `abci_query` reader on what CometBFT writes, and the whole query against one-connection
//! servers — with the texts the operator reads.

use std::time::Duration;

use super::abci::{AbciError, abci_value, base64_decode};
use super::grpc::GrpcError;
use super::proto::{DecodeError, decode_response, varint};
use super::{PlanError, current_plan};
use crate::config::{Endpoint, GrpcAddress};

/// A `QueryCurrentPlanResponse` as the SDK encodes one (gogoproto: the zero time is
/// Timestamp{seconds: -62135596800}, encoded; `upgraded_client_state` absent).
pub(super) fn response(name: &str, height: i64, info: &str) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
        put(out, number << 3 | 2);
        put(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    fn put(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut time = Vec::new();
    put(&mut time, 1 << 3);
    put(&mut time, (-62_135_596_800i64) as u64);
    let mut plan = Vec::new();
    field(&mut plan, 1, name.as_bytes());
    field(&mut plan, 2, &time);
    put(&mut plan, 3 << 3);
    put(&mut plan, height as u64);
    field(&mut plan, 4, info.as_bytes());
    let mut out = Vec::new();
    field(&mut out, 1, &plan);
    out
}

#[test]
fn decodes_the_plan_of_a_real_shaped_answer() {
    // Cosmos Hub v8-Rho, as its current_plan answered.
    let info = r#"{"binaries":{"linux/amd64":"https://github.com/cosmos/gaia/releases/download/v8.0.0/gaiad-v8.0.0-linux-amd64?checksum=sha256:6d0c123e246a8b56ba534f70dd5dc72058b00fd5e5dde5ea40509ff51efc42e2"}}"#;
    let plan = decode_response(&response("v8-Rho", 14_099_412, info))
        .unwrap()
        .unwrap();
    assert_eq!(
        (plan.name.as_str(), plan.height, plan.info.as_str()),
        ("v8-Rho", 14_099_412, info)
    );
    assert_eq!(decode_response(&[]).unwrap(), None);
    let err = decode_response(&response("", 5, "")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the chain's plan has no name or height (name \"\", height 5)"
    );
    assert!(decode_response(&[0x0a, 0x05, 0x01]).is_err());
}

#[test]
fn decodes_base64_as_cometbft_writes_it() {
    assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
    assert_eq!(base64_decode("").unwrap(), b"");
    assert!(base64_decode("a$==").is_none());
}
#[test]
fn varints_longer_or_larger_than_64_bits_are_errors() {
    // Ten bytes whose last carries more than bit 63: the old decoder dropped those bits.
    let mut ten: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    let err = varint(&mut ten).unwrap_err();
    assert_eq!(err, DecodeError::VarintTooLarge);
    assert_eq!(err.to_string(), "a varint larger than 64 bits");
    let mut max: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(varint(&mut max), Ok(u64::MAX));
    let mut eleven: &[u8] = &[
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
    ];
    let err = varint(&mut eleven).unwrap_err();
    assert_eq!(err.to_string(), "a varint longer than 10 bytes");
    // A plan whose height is such a varint.
    let plan = [
        0x0a, 0x02, b'v', b'2', 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ];
    let mut message = vec![0x0a, plan.len() as u8];
    message.extend_from_slice(&plan);
    assert_eq!(decode_response(&message), Err(DecodeError::VarintTooLarge));
}

#[test]
fn a_length_past_the_message_is_an_error() {
    // Field 1, length u64::MAX, nothing after.
    let message = [
        0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    let err = decode_response(&message).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a field of 18446744073709551615 bytes where 0 are left (truncated message)"
    );
    // Fixed-size fields cut short.
    let err = decode_response(&[0x09, 1, 2, 3]).unwrap_err();
    assert_eq!(err.to_string(), "truncated message");
    assert!(decode_response(&[0x0d, 1, 2, 3]).is_err());
}

#[test]
fn what_is_not_a_plan_is_not_read_as_no_plan() {
    // Field number 0, and one past 2^29 - 1: the old decoder skipped both.
    let err = decode_response(&[0x00, 0x00]).unwrap_err();
    assert_eq!(err.to_string(), "a protobuf field number of 0");
    assert!(decode_response(&[0x80, 0x80, 0x80, 0x80, 0x10, 0x00]).is_err());
    // Field 1 as a varint instead of a message: the old decoder answered "no plan".
    let err = decode_response(&[0x08, 0x01]).unwrap_err();
    assert_eq!(err.to_string(), "field 1 (plan) is not a message");
    // A plan whose height is a string.
    let plan = [0x0a, 0x02, b'v', b'2', 0x1a, 0x01, b'5'];
    let mut message = vec![0x0a, plan.len() as u8];
    message.extend_from_slice(&plan);
    let err = decode_response(&message).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the plan's field 3 (height) has the wrong wire type"
    );
    // Unknown fields and groups-free wire types are skipped: the plan still reads.
    let mut message = response("v2", 7, "");
    message.extend_from_slice(&[0x10, 0x05, 0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(decode_response(&message).unwrap().unwrap().height, 7);
}

/// An `abci_query` answer around `response` (CometBFT's `ResponseQuery` in its JSON).
fn answer(response: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"jsonrpc": "2.0", "id": -1, "result": {"response": response}})
}

#[test]
fn abci_query_answers_are_read_as_cometbft_writes_them() {
    use serde_json::json;
    let plan = response("v2", 7, "");
    let b64 = encode(&plan);
    // As CometBFT answers: code and value left out when zero and empty, or given.
    assert_eq!(
        abci_value(&answer(json!({"log": "", "height": "5"}))),
        Ok(vec![])
    );
    assert_eq!(
        abci_value(&answer(json!({"code": 0, "value": null}))),
        Ok(vec![])
    );
    assert_eq!(
        abci_value(&answer(json!({"code": 0, "value": ""}))),
        Ok(vec![])
    );
    assert_eq!(
        abci_value(&answer(json!({"code": 0, "value": b64}))),
        Ok(plan)
    );
    // A refusal, with its log.
    let err = abci_value(&answer(
        json!({"code": 6, "log": "unknown query path", "codespace": "sdk"}),
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the application refused the query (code 6, codespace \"sdk\"): \"unknown query path\""
    );
}

#[test]
fn abci_query_answers_that_hold_no_message_are_errors() {
    use serde_json::json;
    // Codes that are not a uint32 number, values that are not a string: the old reader
    // took each for code 0 and no value — "no plan".
    for response in [
        json!({"code": -1}),
        json!({"code": "5"}),
        json!({"code": "0"}),
        json!({"code": 1.5}),
        json!({"code": null}),
        json!({"code": 4_294_967_296u64}),
    ] {
        let err = abci_value(&answer(response.clone())).unwrap_err();
        assert!(
            matches!(err, AbciError::BadCode { .. }),
            "{response}: {err}"
        );
    }
    for response in [
        json!({"code": 0, "value": 5}),
        json!({"code": 0, "value": ["CgJ2Mg=="]}),
        json!({"value": {"bytes": "CgJ2Mg=="}}),
        json!({"value": true}),
    ] {
        let err = abci_value(&answer(response.clone())).unwrap_err();
        assert!(matches!(err, AbciError::NotAString(_)), "{response}: {err}");
    }
    let err = abci_value(&answer(json!({"code": -1, "log": "x"}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"the abci_query answer's code is -1, not a number from 0 to 4294967295: {"code":-1,"log":"x"}"#
    );
    let err = abci_value(&answer(json!({"value": 5}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the abci_query answer's value is 5, not a base64 string"
    );
    let err = abci_value(&answer(json!({"value": "not base64!"}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"the abci_query answer's value is not base64: "not base64!""#
    );
    // No response, or a JSON-RPC error.
    let err = abci_value(&json!({"result": {}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"no result.response in the abci_query answer: {"result":{}}"#
    );
    let err = abci_value(&json!({"error": {"code": -32603, "message": "x"}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"abci_query: {"code":-32603,"message":"x"}"#
    );
    // What is quoted stays a line.
    let long = "x".repeat(10_000);
    let err = abci_value(&answer(json!({"code": "5", "log": long}))).unwrap_err();
    let err = err.to_string();
    assert!(err.len() < 1000, "{}", err.len());
}

/// Standard base64 with padding, as CometBFT writes it.
pub(super) fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
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

#[test]
fn base64_padding_is_only_at_the_end() {
    assert_eq!(base64_decode(&encode(b"hello!?")).unwrap(), b"hello!?");
    assert!(base64_decode("aG=VsbG8").is_none());
    assert!(base64_decode("aGVsbG8===").is_none());
    assert!(base64_decode("a").is_none());
}

/// A one-connection gRPC server that answers `message` to whatever is asked.
fn grpc_server(message: Vec<u8>) -> GrpcAddress {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let frame = |kind: u8, flags: u8, payload: &[u8]| {
            let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
            f.extend_from_slice(&[kind, flags, 0, 0, 0, 1]);
            f.extend_from_slice(payload);
            f
        };
        let mut body = vec![0];
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(&message);
        let mut out = vec![0, 0, 0, 4, 0, 0, 0, 0, 0];
        out.extend(frame(1, 4, &[0x88]));
        out.extend(frame(0, 0, &body));
        out.extend(frame(
            1,
            5,
            &[&[0x00, 11][..], b"grpc-status", &[1, b'0']].concat(),
        ));
        tcp.write_all(&out).unwrap();
        // Until the client closes: its request and SETTINGS ack are read, never reset.
        let _ = tcp.read_to_end(&mut Vec::new());
    });
    GrpcAddress::parse(&format!("127.0.0.1:{port}")).unwrap()
}

#[tokio::test]
async fn an_answer_that_does_not_decode_names_where_it_came_from() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rpc = Endpoint::parse(&format!(
        "http://127.0.0.1:{}",
        closed.local_addr().unwrap().port()
    ))
    .unwrap();
    drop(closed);
    let grpc = grpc_server(response("v2", 7, ""));
    let answer = current_plan(&grpc, &rpc, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(answer.plan.unwrap().name, "v2");
    // Truncated: a message of 5 bytes holding 1.
    let grpc = grpc_server(vec![0x0a, 0x05, 0x01]);
    let err = current_plan(&grpc, &rpc, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PlanError::Unreadable {
                source: DecodeError::FieldPastEnd { len: 5, left: 1 },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the CurrentPlan answer of gRPC at {grpc} (DAEMON_GRPC_ADDRESS) cannot be read: a field of 5 bytes where 1 are left (truncated message); is DAEMON_GRPC_ADDRESS the node's own address?"
        )
    );

    // The same through abci_query, gRPC being closed.
    let grpc = GrpcAddress::parse(&format!("127.0.0.1:{}", rpc.port)).unwrap();
    let rpc = rpc_server(format!(
        r#"{{"jsonrpc":"2.0","id":-1,"result":{{"response":{{"code":0,"value":"{}"}}}}}}"#,
        encode(&[0x0a, 0x05, 0x01])
    ));
    let err = current_plan(&grpc, &rpc, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the CurrentPlan answer of abci_query at {} (WASMVISOR_RPC_ADDRESS) cannot be read: a field of 5 bytes where 1 are left (truncated message); is WASMVISOR_RPC_ADDRESS the node's own address?",
            rpc.address
        )
    );
}

/// A one-request HTTP/1.1 server that answers `json`.
fn rpc_server(json: String) -> Endpoint {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(tcp);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 && !line.ends_with("\r\n\r\n") {}
        let mut tcp = reader.into_inner();
        let _ = write!(
            tcp,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        );
    });
    Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap()
}

#[tokio::test]
async fn neither_answering_names_both_addresses_and_what_each_said() {
    let grpc = GrpcAddress::parse("https://127.0.0.1:1").unwrap();
    let rpc = rpc_server(
        r#"{"jsonrpc":"2.0","id":-1,"error":{"code":-32603,"message":"x"}}"#.to_string(),
    );
    let err = current_plan(&grpc, &rpc, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PlanError::Unanswered { by_grpc, .. } if matches!(**by_grpc, GrpcError::Tls)
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the node answers neither on gRPC at https://127.0.0.1:1 (DAEMON_GRPC_ADDRESS: https (TLS) gRPC is not supported: give the node's plain gRPC address) nor on its RPC at {} (WASMVISOR_RPC_ADDRESS: abci_query: {{\"code\":-32603,\"message\":\"x\"}}); start the node, or point these at its gRPC (app.toml [grpc]) or RPC (config.toml [rpc] laddr)",
            rpc.address
        )
    );
}
