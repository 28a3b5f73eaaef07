//! The HTTP/2 client's parts on bytes alone: the HPACK decoder on RFC 7541's examples, its
//! integers and table accounting, the request's size check, and answers read frame by frame.

use super::exchange::{Exchange, Step};
use super::frame::*;
use super::hpack::{Decoder, HpackError, MAX_INTEGER, integer, read_integer};
use super::huffman::{HuffmanError, huffman_decode};
use super::{Http2Error, Response, request};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn huffman_strings_of_rfc_7541_appendix_c() {
    assert_eq!(
        huffman_decode(&hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")).unwrap(),
        b"www.example.com"
    );
    assert_eq!(huffman_decode(&hex("a8eb 1064 9cbf")).unwrap(), b"no-cache");
    assert_eq!(huffman_decode(&hex("6402")).unwrap(), b"302");
    assert_eq!(huffman_decode(&hex("aec3 771a 4b")).unwrap(), b"private");
    assert_eq!(
        huffman_decode(&hex("f1e3 c2e5 f23a 6ba0 ab90 f400")),
        Err(HuffmanError::Padding)
    );
}

#[test]
fn requests_of_rfc_7541_c4_share_their_dynamic_table() {
    let mut d = Decoder::new();
    let first = d
        .decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))
        .unwrap();
    assert_eq!(
        first,
        [
            (":method".into(), "GET".into()),
            (":scheme".into(), "http".into()),
            (":path".into(), "/".into()),
            (":authority".into(), "www.example.com".into())
        ]
    );
    let second = d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf")).unwrap();
    assert_eq!(second[3], (":authority".into(), "www.example.com".into()));
    assert_eq!(second[4], ("cache-control".into(), "no-cache".into()));
    assert_eq!(d.size, 110);
    assert!(d.decode(&hex("ff")).is_err());
    assert!(Decoder::new().decode(&hex("be")).is_err());
    // A big entry named again and again: bounded by what it decodes to, not its bytes.
    let mut bomb = Decoder::new();
    let mut block = vec![0x40, 0x01, b'x', 0x7f, 0xa1, 0x1e];
    block.extend(vec![b'v'; 4000]);
    block.extend(vec![0xbe; 100]);
    let err = bomb.decode(&block).unwrap_err();
    assert_eq!(err, HpackError::DecodedTooLarge);
    assert_eq!(
        err.to_string(),
        "the answer's headers decode to more than 65536 bytes"
    );
}

#[test]
fn integers_round_trip() {
    for (n, v) in [
        (5u32, 10usize),
        (5, 1337),
        (7, 126),
        (7, 127),
        (4, 1_000_000),
    ] {
        let mut out = Vec::new();
        integer(&mut out, 0, n, v);
        let mut slice = out.as_slice();
        assert_eq!(read_integer(&mut slice, n).unwrap(), v, "{n} {v}");
        assert!(slice.is_empty());
    }
}
#[test]
fn hpack_integers_past_the_limit_are_errors() {
    // Ten continuation bytes: no value, an error.
    let mut block: &[u8] = &[
        0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    let err = read_integer(&mut block, 7).unwrap_err();
    assert_eq!(err, HpackError::IntegerTooLarge);
    assert_eq!(err.to_string(), "an HPACK integer too large");
    // Four continuation bytes, all ones: 31 + 2^28 - 1, past MAX_INTEGER.
    let mut block: &[u8] = &[0x1f, 0xff, 0xff, 0xff, 0x7f];
    assert!(read_integer(&mut block, 5).is_err());
    // The largest accepted.
    let mut out = Vec::new();
    integer(&mut out, 0, 7, MAX_INTEGER);
    assert_eq!(read_integer(&mut out.as_slice(), 7), Ok(MAX_INTEGER));
    // A string whose length is the largest integer: cut short, not sliced out of range.
    let mut block = vec![0x00, 0x7f];
    block.extend_from_slice(&out[1..]);
    assert_eq!(
        Decoder::new().decode(&block),
        Err(HpackError::StringCutShort)
    );
    // Index 0 is no entry.
    let err = Decoder::new().decode(&[0x80]).unwrap_err();
    assert_eq!(err.to_string(), "HPACK index 0 refers to nothing");
}

#[test]
fn a_table_size_update_comes_first_or_not_at_all() {
    // Size 0, then :method GET: fine.
    assert_eq!(Decoder::new().decode(&[0x20, 0x82]).unwrap().len(), 1);
    // :method GET, then a size update.
    let err = Decoder::new().decode(&[0x82, 0x20]).unwrap_err();
    assert_eq!(err, HpackError::SizeUpdateLate);
    assert_eq!(
        err.to_string(),
        "an HPACK table size update after a header field"
    );
    let err = Decoder::new().decode(&[0x3f, 0xe2, 0x1f]).unwrap_err();
    assert_eq!(err.to_string(), "a dynamic table of 4097 bytes, over 4096");
}

#[test]
fn an_entry_larger_than_the_table_empties_it() {
    let mut d = Decoder::new();
    d.decode(&hex("4001 6101 62")).unwrap(); // a: b, indexed
    assert_eq!((d.table.len(), d.size), (1, 34));
    // A table of 40 bytes, then an entry of 45: the table is empty afterwards.
    let mut block = vec![0x3f, 0x09, 0x40, 0x01, b'x', 0x0c];
    block.extend_from_slice(b"abcdefghijkl");
    d.decode(&block).unwrap();
    assert_eq!((d.table.len(), d.size), (0, 0));
    assert!(d.decode(&[0xbe]).is_err());
}

#[test]
fn a_request_that_does_not_fit_in_a_frame_is_refused() {
    let long = "h".repeat(MAX_FRAME);
    let err = request(&long, "/p", &[], &[], 1 << 20).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the request (16394 bytes of headers, 0 of body) does not fit in an HTTP/2 frame of 16384 bytes"
    );
    assert!(request("a:1", "/p", &[], &vec![0; MAX_FRAME + 1], 1 << 20).is_err());
    let ok = request("a:1", "/p", &[("te", "trailers")], &[0; 5], 1 << 20).unwrap();
    assert!(ok.starts_with(PREFACE));
    // A limit past u32 is a window of 2^31 - 1, not the limit's low bits.
    let big = request("a:1", "/p", &[], &[], (1usize << 32) + 10).unwrap();
    let window = &big[PREFACE.len() + 9 + 8..PREFACE.len() + 9 + 12];
    assert_eq!(window, 0x7fff_ffffu32.to_be_bytes());
}

/// The answer of `frames`, `None` if they do not complete it.
fn exchange(frames: &[(u8, u8, u32, &[u8])]) -> Result<Option<Response>, Http2Error> {
    let mut e = Exchange::new(1 << 20);
    for &(kind, flags, id, payload) in frames {
        if let Step::Done = e.on_frame(kind, flags, id, payload)? {
            return Ok(Some(e.into_response()));
        }
    }
    Ok(None)
}

#[test]
fn an_answer_is_read_frame_by_frame() {
    let trailers = [&[0x00, 11][..], b"grpc-status", &[1, b'0']].concat();
    let answer = exchange(&[
        (SETTINGS, 0, 0, &[]),
        (PING, 0, 0, &[1; 8]),
        (HEADERS, 0, STREAM, &[0x88]),
        (CONTINUATION, END_HEADERS, STREAM, &[]),
        (DATA, PADDED, STREAM, &[2, 7, 8, 0, 0]),
        (HEADERS, END_HEADERS | END_STREAM, STREAM, &trailers),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(answer.field(":status"), Some("200"));
    assert_eq!(answer.field("grpc-status"), Some("0"));
    assert_eq!(answer.body, [7, 8]);
    // Another frame inside a header block; a short PING; padding longer than the frame; a
    // CONTINUATION of no block; GOAWAY and RST_STREAM with their codes.
    for (frames, expected) in [
        (
            &[
                (HEADERS, 0, STREAM, &[0x88][..]),
                (DATA, END_STREAM, STREAM, &[][..]),
            ][..],
            "a header block interrupted by another frame",
        ),
        (&[(PING, 0, 0, &[1; 7][..])][..], "a PING of 7 bytes, not 8"),
        (
            &[(DATA, PADDED, STREAM, &[3, 1, 1][..])][..],
            "a frame's padding is longer than the frame",
        ),
        (
            &[(CONTINUATION, END_HEADERS, STREAM, &[][..])][..],
            "a CONTINUATION frame out of place",
        ),
        (
            &[(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 2][..])][..],
            "the server closed the connection (HTTP/2 GOAWAY, error code 2)",
        ),
        (
            &[(GOAWAY, 0, 0, &[0, 0, 0, 1][..])][..],
            "the server closed the connection (HTTP/2 GOAWAY, error code 0)",
        ),
        (
            &[(RST_STREAM, 0, STREAM, &[0, 0, 0, 8][..])][..],
            "the server reset the stream (HTTP/2 error code 8)",
        ),
        (
            &[(PUSH_PROMISE, 0, STREAM, &[][..])][..],
            "the server pushed, which was not allowed",
        ),
    ] {
        let err = exchange(frames).unwrap_err();
        assert_eq!(err.to_string(), expected, "{frames:?}");
    }
    // A body over the limit.
    let mut e = Exchange::new(3);
    assert!(matches!(
        e.on_frame(DATA, 0, STREAM, &[0; 3]),
        Ok(Step::More)
    ));
    assert!(matches!(
        e.on_frame(DATA, 0, STREAM, &[0]),
        Err(Http2Error::BodyTooLarge(3))
    ));
    // A frame header past the size allowed.
    let err = parse_head(&[0, 0x40, 0x01, DATA, 0, 0, 0, 0, 1]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a frame of 16385 bytes, larger than allowed"
    );
}
