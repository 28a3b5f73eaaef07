//! A query over gRPC (CurrentPlan, gov Proposals): one unary call on an HTTP/2 connection
//! (cleartext, prior knowledge), its status read from the headers or trailers and its one
//! message unframed.

use super::MAX_ANSWER;
use crate::chain::http2::{self, Http2Error};
use crate::config::GrpcAddress;

/// Why the gRPC call gave no message. The texts follow "DAEMON_GRPC_ADDRESS: " in the error
/// `prepare` prints.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("no answer in time")]
    Timeout,
    #[error("https (TLS) gRPC is not supported: give the node's plain gRPC address")]
    Tls,
    #[error("{0}")]
    Connect(#[source] std::io::Error),
    #[error("{0}")]
    Http2(#[from] Http2Error),
    /// The `:status` pseudo-header, "missing" when there is none.
    #[error("HTTP status {0}")]
    HttpStatus(String),
    /// A `grpc-status` other than 0 (empty when absent), with its decoded `grpc-message`.
    #[error("{}", status_line(.status, .message))]
    Status { status: String, message: String },
    #[error("the answer is compressed, which was not asked for")]
    Compressed,
    #[error("the answer is not one gRPC message")]
    NotOneMessage,
}

impl GrpcError {
    /// gRPC's UNIMPLEMENTED (12): the server has no such service or method — a module the
    /// chain does not have (grpc-go answers "unknown service cosmos.gov.v1.Query").
    pub(super) fn unimplemented(&self) -> bool {
        matches!(self, GrpcError::Status { status, .. } if status == "12")
    }
}

/// `gRPC status "13" the message`, without trailing blanks when the message is empty.
fn status_line(status: &str, message: &str) -> String {
    format!("gRPC status {status:?} {message}")
        .trim_end()
        .to_string()
}

/// The answer message of `method` (a path, `/package.Service/Method`) to `request`, as the node
/// encoded it.
pub(super) async fn ask(
    address: &GrpcAddress,
    method: &str,
    request: &[u8],
) -> Result<Vec<u8>, GrpcError> {
    if address.tls {
        return Err(GrpcError::Tls);
    }
    let tcp = tokio::net::TcpStream::connect((address.host.as_str(), address.port))
        .await
        .map_err(GrpcError::Connect)?;
    let authority = match address.host.contains(':') {
        true => format!("[{}]:{}", address.host, address.port),
        false => format!("{}:{}", address.host, address.port),
    };
    // One length-prefixed message: flag 0 (not compressed), the length, the bytes.
    let length = u32::try_from(request.len()).map_err(|_| GrpcError::NotOneMessage)?;
    let mut body = Vec::with_capacity(5 + request.len());
    body.push(0);
    body.extend_from_slice(&length.to_be_bytes());
    body.extend_from_slice(request);
    let response = http2::post(
        tcp,
        &authority,
        method,
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("user-agent", "wasmvisor"),
        ],
        &body,
        MAX_ANSWER,
    )
    .await?;
    message(&response)
}

/// The one message of a gRPC answer that succeeded.
fn message(response: &http2::Response) -> Result<Vec<u8>, GrpcError> {
    match response.field(":status") {
        Some("200") => {}
        other => return Err(GrpcError::HttpStatus(other.unwrap_or("missing").into())),
    }
    // A failed call may come as headers only; otherwise the status is in the trailers.
    let status = response.field("grpc-status").unwrap_or("");
    if status != "0" {
        let message = response
            .field("grpc-message")
            .map(wasmvisor_plugin_support::getter::percent_decode)
            .unwrap_or_default();
        return Err(GrpcError::Status {
            status: status.into(),
            message,
        });
    }
    // One length-prefixed message: [compressed flag][length, big-endian][bytes].
    match response.body.as_slice() {
        [0, a, b, c, d, rest @ ..]
            if u32::from_be_bytes([*a, *b, *c, *d]) as usize == rest.len() =>
        {
            Ok(rest.to_vec())
        }
        [1, ..] => Err(GrpcError::Compressed),
        _ => Err(GrpcError::NotOneMessage),
    }
}

#[cfg(test)]
mod tests {
    use super::message;
    use crate::chain::http2::Response;

    #[test]
    fn grpc_answers_that_are_no_message_say_why() {
        let field = |n: &str, v: &str| (n.to_string(), v.to_string());
        let answer = |headers: Vec<(String, String)>, body: &[u8]| Response {
            headers,
            body: body.to_vec(),
            trailers: vec![],
        };
        let ok = || vec![field(":status", "200"), field("grpc-status", "0")];
        for (response, expected) in [
            (
                answer(vec![field(":status", "503")], &[]),
                "HTTP status 503",
            ),
            (answer(vec![], &[]), "HTTP status missing"),
            (
                answer(
                    vec![
                        field(":status", "200"),
                        field("grpc-status", "13"),
                        field("grpc-message", "bad%20thing"),
                    ],
                    &[],
                ),
                "gRPC status \"13\" bad thing",
            ),
            // No status at all, and a message of blanks: nothing trails.
            (
                answer(vec![field(":status", "200")], &[]),
                "gRPC status \"\"",
            ),
            (
                answer(
                    vec![
                        field(":status", "200"),
                        field("grpc-status", "2"),
                        field("grpc-message", "%20%20"),
                    ],
                    &[],
                ),
                "gRPC status \"2\"",
            ),
            (
                answer(ok(), &[1, 0, 0, 0, 0]),
                "the answer is compressed, which was not asked for",
            ),
            (
                answer(ok(), &[0, 0, 0, 0, 2, 9]),
                "the answer is not one gRPC message",
            ),
        ] {
            let err = message(&response).unwrap_err();
            assert_eq!(err.to_string(), expected, "{response:?}");
        }
        assert_eq!(message(&answer(ok(), &[0, 0, 0, 0, 1, 9])).unwrap(), [9]);
    }
}
