//! The chain's current upgrade plan, asked of the node: the query
//! `cosmos.upgrade.v1beta1.Query/CurrentPlan`, over gRPC at `DAEMON_GRPC_ADDRESS` as Cosmovisor
//! asks it, or through CometBFT's `abci_query` at `WASMVISOR_RPC_ADDRESS`, which reaches the same
//! query in the application (for a node whose gRPC server is off).
//!
//! The answer is protobuf: `QueryCurrentPlanResponse { Plan plan = 1; }`, with
//! `Plan { string name = 1; Timestamp time = 2; int64 height = 3; string info = 4; … }`; an empty
//! message means no plan. Decoded here by hand: five fields are not worth a code generator.

use std::time::Duration;

use crate::config::{Endpoint, GrpcAddress};
use crate::tree::Plan;

/// The gRPC method, and the `abci_query` path that routes to it.
const METHOD: &str = "/cosmos.upgrade.v1beta1.Query/CurrentPlan";
/// A plan is a few KiB (its `info` is a JSON document at most).
const MAX_ANSWER: usize = 1 << 20;

/// Where the answer came from, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub plan: Option<Plan>,
    pub from: String,
}

/// Asks the node for the chain's current plan: gRPC first, then `abci_query`. The error names
/// both addresses and what each said.
pub async fn current_plan(
    grpc: &GrpcAddress,
    rpc: &Endpoint,
    timeout: Duration,
) -> Result<Answer, String> {
    let by_grpc = match tokio::time::timeout(timeout, ask_grpc(grpc)).await {
        Ok(Ok(message)) => {
            let from = format!("gRPC at {grpc}");
            return decode_response(&message)
                .map(|plan| Answer {
                    plan,
                    from: from.clone(),
                })
                .map_err(|e| unreadable(&from, "DAEMON_GRPC_ADDRESS", &e));
        }
        Ok(Err(e)) => e,
        Err(_) => "no answer in time".into(),
    };
    let by_rpc = match tokio::time::timeout(timeout, ask_abci(rpc)).await {
        Ok(Ok(message)) => {
            tracing::debug!("gRPC at {grpc} did not answer ({by_grpc}); asked the RPC");
            let from = format!("abci_query at {}", rpc.address);
            return decode_response(&message)
                .map(|plan| Answer {
                    plan,
                    from: from.clone(),
                })
                .map_err(|e| unreadable(&from, "WASMVISOR_RPC_ADDRESS", &e));
        }
        Ok(Err(e)) => e,
        Err(_) => "no answer in time".into(),
    };
    Err(format!(
        "the node answers neither on gRPC at {grpc} (DAEMON_GRPC_ADDRESS: {by_grpc}) nor on its RPC at {} (WASMVISOR_RPC_ADDRESS: {by_rpc}); start the node, or point these at its gRPC (app.toml [grpc]) or RPC (config.toml [rpc] laddr)",
        rpc.address
    ))
}

/// An answer that came but does not decode: where it came from, and the variable naming that.
fn unreadable(from: &str, variable: &str, error: &str) -> String {
    format!(
        "the CurrentPlan answer of {from} ({variable}) cannot be read: {error}; is {variable} the node's own address?"
    )
}

/// The query over gRPC: one unary call on an HTTP/2 connection (cleartext, prior knowledge).
async fn ask_grpc(address: &GrpcAddress) -> Result<Vec<u8>, String> {
    if address.tls {
        return Err("https (TLS) gRPC is not supported: give the node's plain gRPC address".into());
    }
    let tcp = tokio::net::TcpStream::connect((address.host.as_str(), address.port))
        .await
        .map_err(|e| e.to_string())?;
    let authority = match address.host.contains(':') {
        true => format!("[{}]:{}", address.host, address.port),
        false => format!("{}:{}", address.host, address.port),
    };
    // The request message is empty: a frame of flag 0 and length 0.
    let response = super::http2::post(
        tcp,
        &authority,
        METHOD,
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("user-agent", "wasmvisor"),
        ],
        &[0, 0, 0, 0, 0],
        MAX_ANSWER,
    )
    .await?;
    match response.field(":status") {
        Some("200") => {}
        other => return Err(format!("HTTP status {}", other.unwrap_or("missing"))),
    }
    // A failed call may come as headers only; otherwise the status is in the trailers.
    let status = response.field("grpc-status").unwrap_or("");
    if status != "0" {
        let message = response
            .field("grpc-message")
            .map(wasmvisor_plugin_support::getter::percent_decode)
            .unwrap_or_default();
        return Err(format!("gRPC status {status:?} {message}")
            .trim_end()
            .to_string());
    }
    // One length-prefixed message: [compressed flag][length, big-endian][bytes].
    match response.body.as_slice() {
        [0, a, b, c, d, rest @ ..]
            if u32::from_be_bytes([*a, *b, *c, *d]) as usize == rest.len() =>
        {
            Ok(rest.to_vec())
        }
        [1, ..] => Err("the answer is compressed, which was not asked for".into()),
        _ => Err("the answer is not one gRPC message".into()),
    }
}

/// The query through CometBFT's `abci_query`.
async fn ask_abci(rpc: &Endpoint) -> Result<Vec<u8>, String> {
    let path = format!("/abci_query?path=%22{METHOD}%22");
    let answer = super::rpc::get_json(rpc, &path).await?;
    abci_value(&answer)
}

/// The message in an `abci_query` answer: `result.response` is CometBFT's `ResponseQuery` in its
/// JSON, `code` a number (uint32, 0 = OK), `value` the bytes in base64 — both left out when zero
/// or empty (`omitempty`), and `value` null for nil bytes. Anything else is not an answer to
/// trust as "no plan": an error that quotes it (the caller names the address).
fn abci_value(answer: &serde_json::Value) -> Result<Vec<u8>, String> {
    if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
        return Err(format!("abci_query: {}", quote(error)));
    }
    let response = &answer["result"]["response"];
    if !response.is_object() {
        return Err(format!(
            "no result.response in the abci_query answer: {}",
            quote(answer)
        ));
    }
    let code = match response.get("code") {
        None => 0,
        Some(code) => code
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| {
                format!(
                    "the abci_query answer's code is {}, not a number from 0 to 4294967295: {}",
                    quote(code),
                    quote(response)
                )
            })?,
    };
    if code != 0 {
        return Err(format!(
            "the application refused the query (code {code}, codespace {}): {}",
            quote(&response["codespace"]),
            quote(&response["log"])
        ));
    }
    match response.get("value") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(b64)) => base64_decode(b64).ok_or_else(|| {
            format!(
                "the abci_query answer's value is not base64: {}",
                quote(&response["value"])
            )
        }),
        Some(other) => Err(format!(
            "the abci_query answer's value is {}, not a base64 string",
            quote(other)
        )),
    }
}

/// A JSON value as the answer gave it, cut to a line's worth.
fn quote(value: &serde_json::Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The plan in a `QueryCurrentPlanResponse` (none when the chain has none).
pub fn decode_response(message: &[u8]) -> Result<Option<Plan>, String> {
    let mut plan = None;
    for field in Fields(message) {
        match field? {
            (1, Wire::Bytes(bytes)) => plan = Some(decode_plan(bytes)?),
            // A plan that is not a message is not "no plan".
            (1, _) => return Err("field 1 (plan) is not a message".into()),
            _ => {}
        }
    }
    Ok(plan)
}

fn decode_plan(message: &[u8]) -> Result<Plan, String> {
    let (mut name, mut height, mut info) = (String::new(), 0i64, String::new());
    for field in Fields(message) {
        match field? {
            (1, Wire::Bytes(b)) => name = text(b, "name")?,
            // int64 is a varint of the two's complement: negative heights are refused below.
            (3, Wire::Varint(v)) => height = v as i64,
            (4, Wire::Bytes(b)) => info = text(b, "info")?,
            (2 | 5, Wire::Bytes(_)) => {}
            (number @ (1..=5), _) => {
                let what = ["name", "time", "height", "info", "upgraded_client_state"];
                return Err(format!(
                    "the plan's field {number} ({}) has the wrong wire type",
                    what[number as usize - 1]
                ));
            }
            _ => {}
        }
    }
    if name.is_empty() || height <= 0 {
        return Err(format!(
            "the chain's plan has no name or height (name {name:?}, height {height})"
        ));
    }
    Ok(Plan {
        name,
        height: height as u64,
        info,
    })
}

fn text(bytes: &[u8], field: &str) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("the plan's {field} is not UTF-8"))
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of a protobuf message: (number, value).
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let result = (|| {
            let key = varint(&mut self.0)?;
            // Field numbers are 1 to 2^29 - 1.
            let number = key >> 3;
            if number == 0 || number > MAX_FIELD {
                return Err(format!("a protobuf field number of {number}"));
            }
            let wire = match key & 7 {
                0 => Wire::Varint(varint(&mut self.0)?),
                1 => {
                    self.0 = self.0.get(8..).ok_or("truncated message")?;
                    Wire::Fixed
                }
                2 => {
                    let len = varint(&mut self.0)?;
                    let bytes = usize::try_from(len)
                        .ok()
                        .and_then(|len| self.0.get(..len))
                        .ok_or_else(|| {
                            format!(
                                "a field of {len} bytes where {} are left (truncated message)",
                                self.0.len()
                            )
                        })?;
                    self.0 = &self.0[bytes.len()..];
                    Wire::Bytes(bytes)
                }
                5 => {
                    self.0 = self.0.get(4..).ok_or("truncated message")?;
                    Wire::Fixed
                }
                other => return Err(format!("unknown protobuf wire type {other}")),
            };
            Ok((number, wire))
        })();
        if result.is_err() {
            self.0 = &[];
        }
        Some(result)
    }
}

/// The largest protobuf field number.
const MAX_FIELD: u64 = (1 << 29) - 1;

/// A base-128 varint of at most 10 bytes, whose 10th byte holds only bit 63: more is an error,
/// not bits silently shifted out.
fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or("truncated varint")?;
        *bytes = rest;
        let bits = u64::from(b & 0x7f);
        if shift == 63 && bits > 1 {
            return Err("a varint larger than 64 bits".into());
        }
        value |= bits << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint longer than 10 bytes".into())
}

/// Standard base64 (CometBFT's encoding of byte values), padding optional.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    // Padding only at the end, at most two.
    let digits = text.trim_end_matches('=');
    if text.len() - digits.len() > 2 {
        return None;
    }
    let digits = digits.as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(decode_response(&response("", 5, "")).is_err());
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
        assert_eq!(varint(&mut ten), Err("a varint larger than 64 bits".into()));
        let mut max: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&mut max), Ok(u64::MAX));
        let mut eleven: &[u8] = &[
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ];
        assert!(
            varint(&mut eleven)
                .unwrap_err()
                .contains("longer than 10 bytes")
        );
        // A plan whose height is such a varint.
        let plan = [
            0x0a, 0x02, b'v', b'2', 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x7f,
        ];
        let mut message = vec![0x0a, plan.len() as u8];
        message.extend_from_slice(&plan);
        assert!(decode_response(&message).unwrap_err().contains("64 bits"));
    }

    #[test]
    fn a_length_past_the_message_is_an_error() {
        // Field 1, length u64::MAX, nothing after.
        let message = [
            0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        let err = decode_response(&message).unwrap_err();
        assert!(
            err.contains("18446744073709551615 bytes where 0 are left"),
            "{err}"
        );
        // Fixed-size fields cut short.
        assert!(decode_response(&[0x09, 1, 2, 3]).is_err());
        assert!(decode_response(&[0x0d, 1, 2, 3]).is_err());
    }

    #[test]
    fn what_is_not_a_plan_is_not_read_as_no_plan() {
        // Field number 0, and one past 2^29 - 1: the old decoder skipped both.
        assert!(decode_response(&[0x00, 0x00]).is_err());
        assert!(decode_response(&[0x80, 0x80, 0x80, 0x80, 0x10, 0x00]).is_err());
        // Field 1 as a varint instead of a message: the old decoder answered "no plan".
        let err = decode_response(&[0x08, 0x01]).unwrap_err();
        assert!(err.contains("plan"), "{err}");
        // A plan whose height is a string.
        let plan = [0x0a, 0x02, b'v', b'2', 0x1a, 0x01, b'5'];
        let mut message = vec![0x0a, plan.len() as u8];
        message.extend_from_slice(&plan);
        let err = decode_response(&message).unwrap_err();
        assert!(err.contains("field 3 (height)"), "{err}");
        // Unknown fields and groups-free wire types are skipped: the plan still reads.
        let mut message = response("v2", 7, "");
        message.extend_from_slice(&[0x10, 0x05, 0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(decode_response(&message).unwrap().unwrap().height, 7);
    }

    #[test]
    fn abci_query_answers_are_read_as_cometbft_writes_them() {
        use serde_json::json;
        let plan = response("v2", 7, "");
        let b64 = encode(&plan);
        let answer = |response: serde_json::Value| json!({"jsonrpc": "2.0", "id": -1, "result": {"response": response}});
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
        assert!(
            err.contains("code 6") && err.contains("unknown query path"),
            "{err}"
        );
        // Codes that are not a uint32 number, values that are not a string: the old reader
        // took each for code 0 and no value — "no plan".
        for response in [
            json!({"code": -1}),
            json!({"code": "5"}),
            json!({"code": "0"}),
            json!({"code": 1.5}),
            json!({"code": null}),
            json!({"code": 4_294_967_296u64}),
            json!({"code": 0, "value": 5}),
            json!({"code": 0, "value": ["CgJ2Mg=="]}),
            json!({"value": {"bytes": "CgJ2Mg=="}}),
            json!({"value": true}),
            json!({"value": "not base64!"}),
        ] {
            let err = abci_value(&answer(response.clone())).unwrap_err();
            assert!(!err.is_empty(), "{response}");
        }
        let err = abci_value(&answer(json!({"code": -1, "log": "x"}))).unwrap_err();
        assert!(err.contains("code is -1"), "{err}");
        let err = abci_value(&answer(json!({"value": 5}))).unwrap_err();
        assert!(err.contains("value is 5"), "{err}");
        // No response, or a JSON-RPC error.
        assert!(abci_value(&json!({"result": {}})).is_err());
        assert!(abci_value(&json!({"error": {"code": -32603, "message": "x"}})).is_err());
        // What is quoted stays a line.
        let long = "x".repeat(10_000);
        let err = abci_value(&answer(json!({"code": "5", "log": long}))).unwrap_err();
        assert!(err.len() < 1000, "{}", err.len());
    }

    /// Standard base64 with padding, as CometBFT writes it.
    fn encode(bytes: &[u8]) -> String {
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
            err.contains(&format!("gRPC at {grpc}")) && err.contains("DAEMON_GRPC_ADDRESS"),
            "{err}"
        );
        assert!(err.contains("5 bytes where 1 are left"), "{err}");

        // The same through abci_query, gRPC being closed.
        let grpc = GrpcAddress::parse(&format!("127.0.0.1:{}", rpc.port)).unwrap();
        let rpc = rpc_server(format!(
            r#"{{"jsonrpc":"2.0","id":-1,"result":{{"response":{{"code":0,"value":"{}"}}}}}}"#,
            encode(&[0x0a, 0x05, 0x01])
        ));
        let err = current_plan(&grpc, &rpc, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(
            err.contains(&format!("abci_query at {}", rpc.address))
                && err.contains("WASMVISOR_RPC_ADDRESS"),
            "{err}"
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
}

#[cfg(test)]
mod fuzz;
