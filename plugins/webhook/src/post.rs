//! One POST over wasi:http (the standard interface; the host sends it through its own client,
//! only to this plugin's `allow-hosts`, within the call's deadline). Every step blocks: a
//! plugin call has no event loop to return to.

use crate::wasi::http::outgoing_handler;
use crate::wasi::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::wasi::io::streams::StreamError;

/// What is read of an answer's body: enough for the reason of a refusal.
const MAX_ANSWER: usize = 4096;

/// POSTs `body` to `url` with `headers`; the status and the start of the answer's body.
pub fn post(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some(("http", rest)) => (Scheme::Http, rest),
        _ => return Err(format!("{url}: only http and https URLs can be posted to")),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let fields =
        Fields::from_list(&fields).map_err(|e| format!("{url}: a header is refused: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    let set = |ok: Result<(), ()>, what: &str| ok.map_err(|()| format!("{url}: bad {what}"));
    set(request.set_method(&Method::Post), "method")?;
    set(request.set_scheme(Some(&scheme)), "scheme")?;
    set(request.set_authority(Some(authority)), "host")?;
    set(request.set_path_with_query(Some(path)), "path")?;
    let out = request
        .body()
        .map_err(|()| format!("{url}: no request body"))?;
    let options = RequestOptions::new();
    // The host clamps these to the call's deadline; a receiver that accepts the connection and
    // never answers fails here, in the plugin, rather than at the deadline.
    let _ = options.set_connect_timeout(Some(3_000_000_000));
    let _ = options.set_first_byte_timeout(Some(4_000_000_000));
    let future = outgoing_handler::handle(request, Some(options)).map_err(|e| describe(url, &e))?;
    let sent = send(url, &out, body);
    if sent.is_ok() {
        OutgoingBody::finish(out, None).map_err(|e| describe(url, &e))?;
    }
    let answer = loop {
        if let Some(answer) = future.get() {
            break answer;
        }
        future.subscribe().block();
    };
    // A refused request closes the body's stream first: its answer says why.
    let response = answer
        .map_err(|()| format!("{url}: the answer was taken twice"))?
        .map_err(|e| describe(url, &e))?;
    sent?;
    let status = response.status();
    let mut read = Vec::new();
    if let Ok(body) = response.consume()
        && let Ok(stream) = body.stream()
    {
        while read.len() < MAX_ANSWER {
            match stream.blocking_read((MAX_ANSWER - read.len()) as u64) {
                Ok(bytes) => read.extend_from_slice(&bytes),
                Err(_) => break,
            }
        }
    }
    Ok((status, read))
}

/// Writes the request's body, 4 KiB at a time (what one blocking write may take).
fn send(url: &str, out: &OutgoingBody, body: &[u8]) -> Result<(), String> {
    let stream = out
        .write()
        .map_err(|()| format!("{url}: the request body cannot be written"))?;
    for chunk in body.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| format!("{url}: sending the body: {}", stream_error(&e)))?;
    }
    Ok(())
}

fn describe(url: &str, e: &ErrorCode) -> String {
    match e {
        ErrorCode::HttpRequestDenied => format!("{url}: not in this plugin's allow-hosts"),
        ErrorCode::ConnectionRefused => format!("{url}: the connection was refused"),
        ErrorCode::ConnectionTimeout => format!("{url}: no connection within 3 s"),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            format!("{url}: no answer within 4 s")
        }
        ErrorCode::DnsError(d) => format!(
            "{url}: the name does not resolve ({})",
            d.rcode.clone().unwrap_or_default()
        ),
        ErrorCode::InternalError(Some(why)) => format!("{url}: {why}"),
        other => format!("{url}: {other:?}"),
    }
}

fn stream_error(e: &StreamError) -> String {
    match e {
        StreamError::Closed => "the connection closed".into(),
        StreamError::LastOperationFailed(err) => err.to_debug_string(),
    }
}
