//! Property tests of the listener's request reading: whatever bytes a client sends (arbitrary
//! ones, valid requests mutated, heads across the size limit, in any pieces), the answer is a
//! well-formed HTTP/1.1 response or nothing at all — never a panic.

use std::time::Duration;

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Checks `answer` is one whole response: a status line, `Name: value` headers, and a body of
/// exactly the `Content-Length` they give.
fn well_formed(answer: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(answer).map_err(|e| format!("not UTF-8: {e}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of head: {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let code = status
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.split_once(' '))
        .map(|(code, _)| code)
        .ok_or_else(|| format!("a bad status line: {status:?}"))?;
    if !matches!(code, "200" | "404" | "405" | "503") {
        return Err(format!("an unexpected status: {status:?}"));
    }
    let mut length = None;
    for line in lines {
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| format!("a bad header: {line:?}"))?;
        if name.is_empty() || line.contains(['\r', '\n']) {
            return Err(format!("a bad header: {line:?}"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|e| format!("{value:?}: {e}"))?,
            );
        }
    }
    match length {
        Some(n) if n == body.len() => Ok(()),
        other => Err(format!(
            "Content-Length {other:?} for {} body bytes",
            body.len()
        )),
    }
}

/// Requests the listener answers, as a client would send them.
fn valid() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        4 => Just("GET"),
        1 => Just("POST"),
        1 => Just("get"),
        1 => Just(""),
    ];
    let path = prop_oneof![
        Just("/livez"),
        Just("/readyz"),
        Just("/metrics"),
        Just("/status"),
        Just("/livez?verbose=1"),
        Just("/"),
        Just("*"),
    ];
    let headers = prop::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,40}"), 0..6);
    (method, path, headers).prop_map(|(method, path, headers)| {
        let mut request = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.into_bytes()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    /// A run of bytes, to cross the head limit.
    Pad(usize, u8, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop_oneof![
                Just(b'a'),
                Just(b'\r'),
                Just(b'\n'),
                Just(b' '),
                any::<u8>()
            ],
            MAX_HEAD - 40..MAX_HEAD + 40
        )
            .prop_map(|(at, b, n)| Mutation::Pad(at, b, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        // Positions wrap onto the bytes there are (one past the end for insertions).
        let at = |i: usize, len: usize| i.checked_rem(len).unwrap_or(0);
        match *m {
            Mutation::Replace(i, b) if !bytes.is_empty() => {
                let i = at(i, bytes.len());
                bytes[i] = b;
            }
            Mutation::Insert(i, b) => {
                let i = at(i, bytes.len() + 1);
                bytes.insert(i, b);
            }
            Mutation::Remove(i) if !bytes.is_empty() => {
                bytes.remove(at(i, bytes.len()));
            }
            Mutation::Truncate(i) => {
                let i = at(i, bytes.len() + 1);
                bytes.truncate(i);
            }
            Mutation::Pad(i, b, n) => {
                let i = at(i, bytes.len() + 1);
                bytes.splice(i..i, std::iter::repeat_n(b, n));
            }
            _ => {}
        }
    }
    bytes
}

/// What a client that sends `request` in pieces of `pieces` bytes (then ends its side) reads
/// back from `answer`.
fn exchange(request: &[u8], pieces: &[usize]) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let observer = Observer::new();
        let served = async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            let _ = answer(&mut server, &observer, deadline, || {}).await;
            // Closes both ways: a client still sending is told, not left blocked.
            drop(server);
        };
        let (mut reader, mut writer) = tokio::io::split(&mut client);
        let sent = async move {
            let mut rest = request;
            for &n in pieces.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, after) = rest.split_at(n.clamp(1, rest.len()));
                if writer.write_all(piece).await.is_err() {
                    return;
                }
                rest = after;
            }
            let _ = writer.shutdown().await;
        };
        let mut got = Vec::new();
        let read = reader.read_to_end(&mut got);
        let ((), (), _) = tokio::join!(served, sent, read);
        got
    })
}

proptest! {
    #[test]
    fn any_head_gets_a_whole_response(head in prop::collection::vec(any::<u8>(), 0..2 * MAX_HEAD)) {
        let answer = respond(&head, &Observer::new(), None);
        prop_assert!(well_formed(&answer).is_ok(), "{:?}", well_formed(&answer));
    }

    #[test]
    fn arbitrary_bytes_in_any_pieces_get_a_whole_response_or_none(
        request in prop::collection::vec(any::<u8>(), 0..3 * MAX_HEAD),
        pieces in prop::collection::vec(1usize..2048, 1..8),
    ) {
        let got = exchange(&request, &pieces);
        prop_assert!(got.is_empty() || well_formed(&got).is_ok(), "{:?}", well_formed(&got));
    }

    #[test]
    fn mutated_requests_get_a_whole_response_or_none(
        request in valid(),
        mutations in prop::collection::vec(mutation(), 0..6),
        pieces in prop::collection::vec(1usize..64, 1..8),
    ) {
        let request = mutate(request, &mutations);
        let got = exchange(&request, &pieces);
        prop_assert!(got.is_empty() || well_formed(&got).is_ok(), "{:?}", well_formed(&got));
    }

    #[test]
    fn a_valid_request_in_any_pieces_is_answered(
        request in valid(),
        pieces in prop::collection::vec(1usize..16, 1..8),
    ) {
        let got = exchange(&request, &pieces);
        prop_assert!(well_formed(&got).is_ok(), "{:?}", well_formed(&got));
    }
}
