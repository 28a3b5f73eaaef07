//! Just enough HTTP/2 (RFC 9113) for one unary gRPC call on a cleartext connection with prior
//! knowledge, and the HPACK decoder (RFC 7541) its answer needs — Huffman-coded strings and the
//! dynamic table included, since real servers (grpc-go, h2) use both. A general-purpose HTTP/2
//! library (the `h2` crate) cost the static binary 0.36 MiB for this one query.
//!
//! The request (`request` here): the preface, SETTINGS (no push; a stream window large enough
//! for the whole answer, so no flow control is needed on our side), a WINDOW_UPDATE of the
//! connection to match, the HEADERS (HPACK literals, never indexed: nothing for the server to
//! remember) and one DATA frame. The answer (`exchange.rs`, frame by frame): the server's
//! SETTINGS and PINGs are acknowledged, the response headers, DATA and trailers of stream 1
//! collected; RST_STREAM or GOAWAY before the end is an error. The frame layout is `frame.rs`'s,
//! the header blocks `hpack.rs`'s (its Huffman code in `huffman.rs`).

mod exchange;
mod frame;
mod hpack;
mod huffman;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use exchange::{Exchange, Step};
use frame::{DATA, END_HEADERS, END_STREAM, HEADERS, MAX_FRAME, PREFACE, SETTINGS, STREAM};
use frame::{WINDOW_UPDATE, frame, parse_head};
pub use hpack::HpackError;

/// Why an HTTP/2 exchange gave no answer. The texts are the ones the CurrentPlan error quotes
/// after "DAEMON_GRPC_ADDRESS: ".
#[derive(Debug, thiserror::Error)]
pub enum Http2Error {
    /// Writing to the connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The connection closed (or failed) before the answer was complete.
    #[error("the connection ended early: {0}")]
    EndedEarly(#[source] std::io::Error),
    #[error(
        "the request ({headers} bytes of headers, {body} of body) does not fit in an HTTP/2 frame of {MAX_FRAME} bytes"
    )]
    RequestTooLarge { headers: usize, body: usize },
    #[error("a frame of {0} bytes, larger than allowed")]
    FrameTooLarge(usize),
    #[error("a header block interrupted by another frame")]
    Interrupted,
    #[error("a PING of {0} bytes, not 8")]
    PingLength(usize),
    #[error("the server closed the connection (HTTP/2 GOAWAY, error code {0})")]
    GoAway(u32),
    #[error("the server reset the stream (HTTP/2 error code {0})")]
    Reset(u32),
    #[error("the server pushed, which was not allowed")]
    Pushed,
    #[error("a CONTINUATION frame out of place")]
    ContinuationOutOfPlace,
    #[error("the answer's headers are too large")]
    HeadersTooLarge,
    /// The body passed the limit `post` was given.
    #[error("the answer is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("a padded frame without its pad length")]
    NoPadLength,
    #[error("a HEADERS frame cut short")]
    HeadersCutShort,
    #[error("a frame's padding is longer than the frame")]
    PaddingTooLong,
    #[error("{0}")]
    Hpack(#[from] HpackError),
}

/// An answer.
#[derive(Debug, Default)]
pub struct Response {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// A header of the response, or of its trailers (where gRPC puts its status).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .chain(&self.headers)
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// POSTs `body` to `path` on `authority` over `stream`, with the extra `headers`, and reads the
/// whole answer (at most `limit` bytes of body).
pub async fn post(
    mut stream: TcpStream,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    limit: usize,
) -> Result<Response, Http2Error> {
    stream
        .write_all(&request(authority, path, headers, body, limit)?)
        .await?;
    let mut exchange = Exchange::new(limit);
    loop {
        let mut head = [0u8; 9];
        stream
            .read_exact(&mut head)
            .await
            .map_err(Http2Error::EndedEarly)?;
        let (kind, flags, id, len) = parse_head(&head)?;
        let mut payload = vec![0u8; len];
        stream
            .read_exact(&mut payload)
            .await
            .map_err(Http2Error::EndedEarly)?;
        match exchange.on_frame(kind, flags, id, &payload)? {
            Step::More => {}
            Step::Reply(reply) => stream.write_all(&reply).await?,
            Step::Done => return Ok(exchange.into_response()),
        }
    }
}

/// The bytes the client sends: everything of the request at once.
fn request(
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, Http2Error> {
    // A window the whole answer fits in: no WINDOW_UPDATE is ever needed on our side.
    let window = u32::try_from(limit)
        .unwrap_or(u32::MAX)
        .clamp(65_535, 0x7fff_ffff);
    let mut out = PREFACE.to_vec();
    // SETTINGS_ENABLE_PUSH = 0, SETTINGS_INITIAL_WINDOW_SIZE = window.
    let mut settings = Vec::new();
    settings.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
    settings.extend_from_slice(&[0, 4]);
    settings.extend_from_slice(&window.to_be_bytes());
    frame(&mut out, SETTINGS, 0, 0, &settings);
    frame(
        &mut out,
        WINDOW_UPDATE,
        0,
        0,
        &(window - 65_535).max(1).to_be_bytes(),
    );
    let block = hpack::request_block(authority, path, headers);
    // One frame each, within the size every peer accepts (a longer address or path would need
    // CONTINUATION; none is that long).
    if block.len() > MAX_FRAME || body.len() > MAX_FRAME {
        return Err(Http2Error::RequestTooLarge {
            headers: block.len(),
            body: body.len(),
        });
    }
    frame(&mut out, HEADERS, END_HEADERS, STREAM, &block);
    frame(&mut out, DATA, END_STREAM, STREAM, body);
    Ok(out)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
