//! A query (CurrentPlan, gov Proposals) through CometBFT's `abci_query`: the RPC's JSON answer
//! read for the application's `ResponseQuery`, its code checked and its base64 value decoded.

use crate::chain::rpc::{self, RpcError};
use crate::config::Endpoint;

/// Why `abci_query` gave no message. The texts follow "WASMVISOR_RPC_ADDRESS: " in the error
/// `prepare` prints; the JSON they quote is cut to a line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AbciError {
    #[error("no answer in time")]
    Timeout,
    #[error("{0}")]
    Rpc(#[from] RpcError),
    /// The JSON-RPC `error` member.
    #[error("abci_query: {}", quote(.0))]
    JsonRpc(serde_json::Value),
    /// The whole answer, which has no `result.response` object.
    #[error("no result.response in the abci_query answer: {}", quote(.0))]
    NoResponse(serde_json::Value),
    #[error(
        "the abci_query answer's code is {}, not a number from 0 to 4294967295: {}",
        quote(.code),
        quote(.response)
    )]
    BadCode {
        code: serde_json::Value,
        response: serde_json::Value,
    },
    #[error(
        "the application refused the query (code {code}, codespace {}): {}",
        quote(.codespace),
        quote(.log)
    )]
    Refused {
        code: u32,
        codespace: serde_json::Value,
        log: serde_json::Value,
    },
    #[error("the abci_query answer's value is not base64: {}", quote(.0))]
    NotBase64(serde_json::Value),
    #[error("the abci_query answer's value is {}, not a base64 string", quote(.0))]
    NotAString(serde_json::Value),
}

/// The answer message of the gRPC `method` to `request`, as the application encoded it. The
/// request goes as `data`, hex with `0x` as CometBFT's URI form takes bytes (left out when
/// empty, as the CurrentPlan query has always been sent).
pub(super) async fn ask(
    rpc: &Endpoint,
    method: &str,
    request: &[u8],
) -> Result<Vec<u8>, AbciError> {
    let answer = rpc::get_json(rpc, &query_path(method, request)).await?;
    abci_value(&answer)
}

/// The `abci_query` URI for `method` and `request`.
pub(super) fn query_path(method: &str, request: &[u8]) -> String {
    let mut path = format!("/abci_query?path=%22{method}%22");
    if !request.is_empty() {
        path.push_str("&data=0x");
        for byte in request {
            path.push_str(&format!("{byte:02x}"));
        }
    }
    path
}

impl AbciError {
    /// The SDK's answer to a query path it has no route for (`sdkerrors.ErrUnknownRequest`,
    /// code 6 in codespace `sdk`, "unknown query path"): a module the chain does not have.
    pub(super) fn unknown_path(&self) -> bool {
        matches!(self, AbciError::Refused { code: 6, codespace, .. } if codespace == "sdk")
    }
}

/// The message in an `abci_query` answer: `result.response` is CometBFT's `ResponseQuery` in its
/// JSON, `code` a number (uint32, 0 = OK), `value` the bytes in base64 — both left out when zero
/// or empty (`omitempty`), and `value` null for nil bytes. Anything else is not an answer to
/// trust as "no plan": an error that quotes it (the caller names the address).
pub(super) fn abci_value(answer: &serde_json::Value) -> Result<Vec<u8>, AbciError> {
    if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
        return Err(AbciError::JsonRpc(error.clone()));
    }
    let response = &answer["result"]["response"];
    if !response.is_object() {
        return Err(AbciError::NoResponse(answer.clone()));
    }
    let code = match response.get("code") {
        None => 0,
        Some(code) => code
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| AbciError::BadCode {
                code: code.clone(),
                response: response.clone(),
            })?,
    };
    if code != 0 {
        return Err(AbciError::Refused {
            code,
            codespace: response["codespace"].clone(),
            log: response["log"].clone(),
        });
    }
    match response.get("value") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(b64)) => {
            base64_decode(b64).ok_or_else(|| AbciError::NotBase64(response["value"].clone()))
        }
        Some(other) => Err(AbciError::NotAString(other.clone())),
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

/// Standard base64 (CometBFT's encoding of byte values), padding optional.
pub(super) fn base64_decode(text: &str) -> Option<Vec<u8>> {
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
