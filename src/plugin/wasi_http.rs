//! `wasi:http/outgoing-handler`, the standard interface every language's HTTP client for WASI
//! speaks (JavaScript's `fetch`, Python's and Rust's wasi:http clients), held to the rules of the
//! `http` host interface: only the plugin's allow-hosts, no redirect followed (the plugin sees
//! the 3xx), every request over by the call's deadline and after `idle-timeout` of silence,
//! and shut down by a stop request.
//!
//! wasmtime-wasi-http parses and checks what the plugin builds; the request itself goes through
//! the host's one HTTP client (ureq and rustls, `Outbound::agent` in `http.rs`), not the crate's
//! own (hyper and a second TLS setup). A blocking thread performs it and hands the response's body over in
//! chunks, at most `QUEUED` of them waiting: the body streams, the host never holds it whole.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::http::{NotStarted, Outbound};

/// The largest request body a plugin may send (a JSON-RPC query, a form; not an upload).
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// The size of the response body's chunks, and how many may wait for the plugin to read them.
const CHUNK: usize = 64 * 1024;
const QUEUED: usize = 4;

type SendResult = Result<
    (
        ::http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

/// The hooks of one call's store: what its requests may reach, and until when.
impl WasiHttpHooks for Outbound {
    /// ureq writes `Host` from the request's URI, so the one sent is the one allowed.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: ::http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        Box::new(send(self.clone(), request, options.unwrap_or_default()))
    }
}

async fn send(
    out: Outbound,
    request: ::http::Request<WasiBody>,
    options: RequestOptions,
) -> SendResult {
    if let Err(why) = out.permit(request.uri()) {
        tracing::debug!(plugin = out.plugin, "wasi:http request refused: {why}");
        return Err(Error::HttpRequestDenied);
    }
    let remaining = out.deadline.saturating_duration_since(Instant::now());
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, MAX_REQUEST_BODY).collect();
    let body = match tokio::time::timeout(remaining, limited).await {
        Err(_) => return Err(Error::HttpResponseTimeout),
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Error::HttpRequestBodySize(Some(MAX_REQUEST_BODY as u64)));
        }
        Ok(Err(e)) => return Err(internal(format!("reading the request body: {e}"))),
    };
    let request = ::http::Request::from_parts(parts, body);
    let (head_tx, head_rx) = tokio::sync::oneshot::channel();
    let (chunks_tx, chunks_rx) = tokio::sync::mpsc::channel(QUEUED);
    tokio::task::spawn_blocking(move || exchange(&out, &options, request, head_tx, chunks_tx));
    let head = head_rx
        .await
        .map_err(|_| internal("the request ended without a response".into()))??;
    let body = Chunks(chunks_rx).boxed_unsync();
    let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
    Ok((::http::Response::from_parts(head, body), io))
}

/// Performs the request, sends its response's head, then its body chunk by chunk until the
/// end, an error, or the plugin no longer reading it (the call ended).
fn exchange(
    out: &Outbound,
    options: &RequestOptions,
    request: ::http::Request<Bytes>,
    head: tokio::sync::oneshot::Sender<Result<::http::response::Parts, Error>>,
    chunks: tokio::sync::mpsc::Sender<Result<Bytes, Error>>,
) {
    let idle = options
        .between_bytes_timeout
        .map_or(out.read_idle, |d| d.min(out.read_idle));
    let (agent, _registered) =
        match out.agent(options.connect_timeout, options.first_byte_timeout, idle) {
            Ok(started) => started,
            Err(NotStarted::Deadline) => {
                let _ = head.send(Err(Error::HttpResponseTimeout));
                return;
            }
            Err(e @ NotStarted::Stopped) => {
                let _ = head.send(Err(internal(e.to_string())));
                return;
            }
        };
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = if request.body().is_empty() {
        agent.run(request.map(|_| ()))
    } else {
        agent.run(request.map(|b| b.to_vec()))
    };
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            // The plugin sees an error code (JavaScript's fetch not even that): the log says what.
            tracing::info!(plugin = out.plugin, %method, %uri, "wasi:http request failed: {e}");
            let _ = head.send(Err(error(e)));
            return;
        }
    };
    tracing::debug!(plugin = out.plugin, %method, %uri, status = response.status().as_u16(), "plugin HTTP request");
    let (parts, body) = response.into_parts();
    if head.send(Ok(parts)).is_err() {
        return;
    }
    let mut reader = body.into_reader();
    loop {
        let mut buf = vec![0; CHUNK];
        let next = match std::io::Read::read(&mut reader, &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
            Err(e) => {
                tracing::info!(plugin = out.plugin, %method, %uri, "wasi:http response body failed: {e}");
                Err(read_error(e))
            }
        };
        let failed = next.is_err();
        if chunks.blocking_send(next).is_err() || failed || out.cancel.is_cancelled() {
            return;
        }
    }
}

/// A response body fed by `exchange`.
struct Chunks(tokio::sync::mpsc::Receiver<Result<Bytes, Error>>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.0
            .poll_recv(cx)
            .map(|next| next.map(|r| r.map(Frame::data)))
    }
}

fn internal(message: String) -> Error {
    Error::InternalError(Some(message))
}

/// The wasi:http error code closest to what ureq says.
fn error(e: ureq::Error) -> Error {
    use ureq::Timeout;
    match e {
        ureq::Error::Timeout(Timeout::Resolve) => Error::DnsTimeout,
        ureq::Error::Timeout(Timeout::Connect) => Error::ConnectionTimeout,
        ureq::Error::Timeout(Timeout::PerRead) => Error::ConnectionReadTimeout,
        ureq::Error::Timeout(Timeout::PerWrite | Timeout::SendRequest | Timeout::SendBody) => {
            Error::ConnectionWriteTimeout
        }
        ureq::Error::Timeout(_) => Error::HttpResponseTimeout,
        ureq::Error::HostNotFound => Error::DnsError {
            rcode: Some("host not found".into()),
            info_code: None,
        },
        ureq::Error::Io(e) => read_error(e),
        ureq::Error::LargeResponseHeader(..) => Error::HttpResponseHeaderSectionSize(None),
        e @ (ureq::Error::Rustls(_) | ureq::Error::Tls(_)) => internal(format!("TLS: {e}")),
        ureq::Error::Protocol(e) => internal(format!("HTTP protocol error: {e}")),
        other => internal(other.to_string()),
    }
}

fn read_error(e: std::io::Error) -> Error {
    use std::io::ErrorKind;
    let timeout = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .and_then(|u| match u {
            ureq::Error::Timeout(ureq::Timeout::PerRead) => Some(Error::ConnectionReadTimeout),
            ureq::Error::Timeout(_) => Some(Error::HttpResponseTimeout),
            _ => None,
        });
    match (timeout, e.kind()) {
        (Some(t), _) => t,
        (None, ErrorKind::TimedOut) => Error::ConnectionReadTimeout,
        (None, ErrorKind::ConnectionRefused) => Error::ConnectionRefused,
        (None, ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
            Error::ConnectionTerminated
        }
        (None, ErrorKind::UnexpectedEof) => Error::HttpResponseIncomplete,
        (None, _) => internal(e.to_string()),
    }
}
