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
            return decode_response(&message).map(|plan| Answer {
                plan,
                from: format!("gRPC at {grpc}"),
            });
        }
        Ok(Err(e)) => e,
        Err(_) => "no answer in time".into(),
    };
    let by_rpc = match tokio::time::timeout(timeout, ask_abci(rpc)).await {
        Ok(Ok(message)) => {
            tracing::debug!("gRPC at {grpc} did not answer ({by_grpc}); asked the RPC");
            return decode_response(&message).map(|plan| Answer {
                plan,
                from: format!("abci_query at {}", rpc.address),
            });
        }
        Ok(Err(e)) => e,
        Err(_) => "no answer in time".into(),
    };
    Err(format!(
        "the node answers neither on gRPC at {grpc} (DAEMON_GRPC_ADDRESS: {by_grpc}) nor on its RPC at {} (WASMVISOR_RPC_ADDRESS: {by_rpc}); start the node, or point these at its gRPC (app.toml [grpc]) or RPC (config.toml [rpc] laddr)",
        rpc.address
    ))
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
    if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
        return Err(format!("abci_query: {error}"));
    }
    let response = &answer["result"]["response"];
    if !response.is_object() {
        return Err("no result.response in the abci_query answer".into());
    }
    // Amino JSON leaves out zero values: no code is code 0, no value an empty message.
    let code = response["code"].as_u64().unwrap_or(0);
    if code != 0 {
        return Err(format!(
            "the application refused the query (code {code}): {}",
            response["log"].as_str().unwrap_or("")
        ));
    }
    match response["value"].as_str() {
        None | Some("") => Ok(Vec::new()),
        Some(b64) => base64_decode(b64).ok_or_else(|| "the answer's value is not base64".into()),
    }
}

/// The plan in a `QueryCurrentPlanResponse` (none when the chain has none).
pub fn decode_response(message: &[u8]) -> Result<Option<Plan>, String> {
    let mut plan = None;
    for field in Fields(message) {
        if let (1, Wire::Bytes(bytes)) = field? {
            plan = Some(decode_plan(bytes)?);
        }
    }
    Ok(plan)
}

fn decode_plan(message: &[u8]) -> Result<Plan, String> {
    let (mut name, mut height, mut info) = (String::new(), 0i64, String::new());
    for field in Fields(message) {
        match field? {
            (1, Wire::Bytes(b)) => name = text(b, "name")?,
            (3, Wire::Varint(v)) => height = v as i64,
            (4, Wire::Bytes(b)) => info = text(b, "info")?,
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
            let wire = match key & 7 {
                0 => Wire::Varint(varint(&mut self.0)?),
                1 => {
                    self.0 = self.0.get(8..).ok_or("truncated message")?;
                    Wire::Fixed
                }
                2 => {
                    let len = varint(&mut self.0)? as usize;
                    let bytes = self.0.get(..len).ok_or("truncated message")?;
                    self.0 = &self.0[len..];
                    Wire::Bytes(bytes)
                }
                5 => {
                    self.0 = self.0.get(4..).ok_or("truncated message")?;
                    Wire::Fixed
                }
                other => return Err(format!("unknown protobuf wire type {other}")),
            };
            Ok((key >> 3, wire))
        })();
        if result.is_err() {
            self.0 = &[];
        }
        Some(result)
    }
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or("truncated varint")?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
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
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
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
    fn response(name: &str, height: i64, info: &str) -> Vec<u8> {
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
}
