//! Just enough HTTP/2 (RFC 9113) for one unary gRPC call on a cleartext connection with prior
//! knowledge, and the HPACK decoder (RFC 7541) its answer needs — Huffman-coded strings and the
//! dynamic table included, since real servers (grpc-go, h2) use both. A general-purpose HTTP/2
//! library (the `h2` crate) cost the static binary 0.36 MiB for this one query.
//!
//! The request: the preface, SETTINGS (no push; a stream window large enough for the whole
//! answer, so no flow control is needed on our side), a WINDOW_UPDATE of the connection to match,
//! the HEADERS (HPACK literals, never indexed: nothing for the server to remember) and one DATA
//! frame. The answer: the server's SETTINGS and PINGs are acknowledged, the response headers,
//! DATA and trailers of stream 1 collected; RST_STREAM or GOAWAY before the end is an error.

use std::collections::VecDeque;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame a peer may send without our asking for more (SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: usize = 16_384;
/// The one stream used.
const STREAM: u32 = 1;

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
) -> Result<Response, String> {
    let io = |e: std::io::Error| e.to_string();
    stream
        .write_all(&request(authority, path, headers, body, limit)?)
        .await
        .map_err(io)?;
    let mut exchange = Exchange::new(limit);
    loop {
        let mut head = [0u8; 9];
        stream
            .read_exact(&mut head)
            .await
            .map_err(|e| format!("the connection ended early: {e}"))?;
        let (kind, flags, id, len) = parse_head(&head)?;
        let mut payload = vec![0u8; len];
        stream
            .read_exact(&mut payload)
            .await
            .map_err(|e| format!("the connection ended early: {e}"))?;
        match exchange.on_frame(kind, flags, id, &payload)? {
            Step::More => {}
            Step::Reply(reply) => stream.write_all(&reply).await.map_err(io)?,
            Step::Done => return Ok(exchange.response),
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
) -> Result<Vec<u8>, String> {
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
    let mut block = Vec::new();
    block.push(0x83); // :method POST (static index 3)
    block.push(0x86); // :scheme http (static index 6)
    literal(&mut block, 4, path); // :path
    literal(&mut block, 1, authority); // :authority
    for (name, value) in headers {
        block.push(0x00);
        string(&mut block, name);
        string(&mut block, value);
    }
    // One frame each, within the size every peer accepts (a longer address or path would need
    // CONTINUATION; none is that long).
    if block.len() > MAX_FRAME || body.len() > MAX_FRAME {
        return Err(format!(
            "the request ({} bytes of headers, {} of body) does not fit in an HTTP/2 frame of {MAX_FRAME} bytes",
            block.len(),
            body.len()
        ));
    }
    frame(&mut out, HEADERS, END_HEADERS, STREAM, &block);
    frame(&mut out, DATA, END_STREAM, STREAM, body);
    Ok(out)
}

/// Appends a frame (its payload at most `MAX_FRAME` bytes: see `request`).
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_FRAME);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A frame header: its type, flags, stream and payload length (at most `MAX_FRAME`: we never
/// allowed more).
fn parse_head(head: &[u8; 9]) -> Result<(u8, u8, u32, usize), String> {
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    if len > MAX_FRAME {
        return Err(format!("a frame of {len} bytes, larger than allowed"));
    }
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Ok((head[3], head[4], id, len))
}

/// What to do after a frame.
#[derive(Debug)]
enum Step {
    More,
    /// Send these bytes (an acknowledgement), then read on.
    Reply(Vec<u8>),
    /// The answer is complete.
    Done,
}

/// The answer being read, frame by frame.
struct Exchange {
    decoder: Decoder,
    response: Response,
    got_headers: bool,
    /// A header block whose CONTINUATION frames are still to come, and whether it ends the stream.
    pending: Option<(Vec<u8>, bool)>,
    limit: usize,
}

impl Exchange {
    fn new(limit: usize) -> Exchange {
        Exchange {
            decoder: Decoder::new(),
            response: Response::default(),
            got_headers: false,
            pending: None,
            limit,
        }
    }

    fn on_frame(&mut self, kind: u8, flags: u8, id: u32, payload: &[u8]) -> Result<Step, String> {
        // A header block is one run of frames: nothing may come between (RFC 9113 §6.10).
        if self.pending.is_some() && kind != CONTINUATION {
            return Err("a header block interrupted by another frame".into());
        }
        match (kind, id) {
            (SETTINGS, 0) if flags & ACK == 0 => {
                let mut ack = Vec::new();
                frame(&mut ack, SETTINGS, ACK, 0, &[]);
                Ok(Step::Reply(ack))
            }
            (PING, 0) if flags & ACK == 0 => {
                if payload.len() != 8 {
                    return Err(format!("a PING of {} bytes, not 8", payload.len()));
                }
                let mut pong = Vec::new();
                frame(&mut pong, PING, ACK, 0, payload);
                Ok(Step::Reply(pong))
            }
            (GOAWAY, 0) => {
                let code = payload
                    .get(4..8)
                    .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                Err(format!(
                    "the server closed the connection (HTTP/2 GOAWAY, error code {code})"
                ))
            }
            (RST_STREAM, STREAM) => {
                let code = payload
                    .get(..4)
                    .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                Err(format!(
                    "the server reset the stream (HTTP/2 error code {code})"
                ))
            }
            (PUSH_PROMISE, _) => Err("the server pushed, which was not allowed".into()),
            (HEADERS, STREAM) => {
                let fragment = unpad(payload, flags, true)?;
                self.pending = Some((fragment.to_vec(), flags & END_STREAM != 0));
                self.end_of_block(flags)
            }
            (CONTINUATION, STREAM) => {
                let (block, _) = self
                    .pending
                    .as_mut()
                    .ok_or("a CONTINUATION frame out of place")?;
                block.extend_from_slice(payload);
                if block.len() > self.limit {
                    return Err("the answer's headers are too large".into());
                }
                self.end_of_block(flags)
            }
            (CONTINUATION, _) => Err("a CONTINUATION frame out of place".into()),
            (DATA, STREAM) => {
                let data = unpad(payload, flags, false)?;
                if data.len() > self.limit.saturating_sub(self.response.body.len()) {
                    return Err(format!("the answer is larger than {} bytes", self.limit));
                }
                self.response.body.extend_from_slice(data);
                Ok(if flags & END_STREAM != 0 {
                    Step::Done
                } else {
                    Step::More
                })
            }
            _ => Ok(Step::More),
        }
    }

    /// After a HEADERS or CONTINUATION frame: a complete header block is decoded.
    fn end_of_block(&mut self, flags: u8) -> Result<Step, String> {
        if flags & END_HEADERS == 0 {
            return Ok(Step::More);
        }
        let Some((block, end)) = self.pending.take() else {
            return Ok(Step::More);
        };
        let fields = self.decoder.decode(&block)?;
        if self.got_headers {
            self.response.trailers = fields;
        } else {
            self.response.headers = fields;
            self.got_headers = true;
        }
        Ok(if end { Step::Done } else { Step::More })
    }
}

/// A frame's payload without its padding (and, for HEADERS, its priority fields).
fn unpad(payload: &[u8], flags: u8, headers: bool) -> Result<&[u8], String> {
    let mut p = payload;
    let mut pad = 0usize;
    if flags & PADDED != 0 {
        let (&n, rest) = p
            .split_first()
            .ok_or("a padded frame without its pad length")?;
        pad = usize::from(n);
        p = rest;
    }
    if headers && flags & PRIORITY != 0 {
        p = p.get(5..).ok_or("a HEADERS frame cut short")?;
    }
    p.len()
        .checked_sub(pad)
        .and_then(|end| p.get(..end))
        .ok_or_else(|| "a frame's padding is longer than the frame".into())
}

/// A literal header field never indexed, its name the static table's `index`.
fn literal(out: &mut Vec<u8>, index: u8, value: &str) {
    out.push(0x10 | index);
    string(out, value);
}

/// A string literal, not Huffman-coded.
fn string(out: &mut Vec<u8>, s: &str) {
    integer(out, 0x00, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// An HPACK integer with an `n`-bit prefix after the bits `first`.
fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// RFC 7541 Appendix A.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The HPACK decoder of one connection: the dynamic table outlives a header block.
pub struct Decoder {
    table: VecDeque<(String, String)>,
    size: usize,
    max: usize,
}

/// The dynamic table size we allow (SETTINGS_HEADER_TABLE_SIZE, left at its default).
const TABLE_SIZE: usize = 4096;
/// The most a header block may decode to (a gRPC answer's are a few hundred bytes).
const MAX_DECODED: usize = 64 << 10;

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: TABLE_SIZE,
        }
    }

    pub fn decode(&mut self, mut block: &[u8]) -> Result<Vec<(String, String)>, String> {
        let mut fields: Vec<(String, String)> = Vec::new();
        // One byte may name a table entry of 4 KiB: what is bounded is the decoded size.
        let mut decoded = 0usize;
        // Table size updates come first in a block (RFC 7541 §4.2), before any field.
        let mut at_start = true;
        while let Some(&first) = block.first() {
            let field = if first & 0x80 != 0 {
                let index = read_integer(&mut block, 7)?;
                self.entry(index)?
            } else if first & 0xc0 == 0x40 {
                let field = self.literal(&mut block, 6)?;
                self.insert(field.clone());
                field
            } else if first & 0xe0 == 0x20 {
                if !at_start {
                    return Err("an HPACK table size update after a header field".into());
                }
                let size = read_integer(&mut block, 5)?;
                if size > TABLE_SIZE {
                    return Err(format!(
                        "a dynamic table of {size} bytes, over {TABLE_SIZE}"
                    ));
                }
                self.max = size;
                self.evict();
                continue;
            } else {
                // Without indexing (0000) or never indexed (0001).
                self.literal(&mut block, 4)?
            };
            at_start = false;
            decoded = decoded
                .saturating_add(field.0.len())
                .saturating_add(field.1.len());
            if decoded > MAX_DECODED {
                return Err(format!(
                    "the answer's headers decode to more than {MAX_DECODED} bytes"
                ));
            }
            fields.push(field);
        }
        Ok(fields)
    }

    fn literal(&self, block: &mut &[u8], prefix: u32) -> Result<(String, String), String> {
        let index = read_integer(block, prefix)?;
        let name = if index == 0 {
            read_string(block)?
        } else {
            self.entry(index)?.0
        };
        Ok((name, read_string(block)?))
    }

    fn entry(&self, index: usize) -> Result<(String, String), String> {
        match index {
            1..=61 => {
                let (n, v) = STATIC[index - 1];
                Ok((n.into(), v.into()))
            }
            _ => index
                .checked_sub(62)
                .and_then(|i| self.table.get(i))
                .cloned()
                .ok_or_else(|| format!("HPACK index {index} refers to nothing")),
        }
    }

    /// Adds an entry; one larger than the table empties it and is not kept (RFC 7541 §4.4).
    fn insert(&mut self, field: (String, String)) {
        let size = entry_size(&field);
        if size > self.max {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.size = self.size.saturating_add(size);
        self.table.push_front(field);
        self.evict();
    }

    fn evict(&mut self) {
        while self.size > self.max {
            match self.table.pop_back() {
                Some(field) => self.size = self.size.saturating_sub(entry_size(&field)),
                None => self.size = 0,
            }
        }
    }
}

/// An entry's size as the table counts it: its name, its value and 32 (RFC 7541 §4.1).
fn entry_size((name, value): &(String, String)) -> usize {
    name.len().saturating_add(value.len()).saturating_add(32)
}

/// The largest HPACK integer read: more than any index, length or table size of an answer of
/// `MAX_ANSWER` (RFC 7541 §5.1 lets a decoder set this limit).
const MAX_INTEGER: usize = (1 << 28) - 1;

/// An HPACK integer (RFC 7541 §5.1) with an `n`-bit prefix (1 to 8): continuation bytes past
/// `MAX_INTEGER` are an error, never an overflow.
fn read_integer(block: &mut &[u8], n: u32) -> Result<usize, String> {
    let (&first, rest) = block.split_first().ok_or("an HPACK block cut short")?;
    *block = rest;
    let max = (1usize << n) - 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let (&b, rest) = block.split_first().ok_or("an HPACK integer cut short")?;
        *block = rest;
        value = usize::from(b & 0x7f)
            .checked_shl(shift)
            .filter(|_| shift < 28)
            .and_then(|bits| value.checked_add(bits))
            .filter(|&v| v <= MAX_INTEGER)
            .ok_or("an HPACK integer too large")?;
        if b & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

fn read_string(block: &mut &[u8]) -> Result<String, String> {
    let huffman = block.first().is_some_and(|b| b & 0x80 != 0);
    let len = read_integer(block, 7)?;
    let (bytes, rest) = block
        .split_at_checked(len)
        .ok_or("an HPACK string cut short")?;
    *block = rest;
    let bytes = if huffman {
        huffman_decode(bytes)?
    } else {
        bytes.to_vec()
    };
    String::from_utf8(bytes).map_err(|_| "a header that is not UTF-8".into())
}

/// The code length of each symbol of HPACK's Huffman code (RFC 7541 Appendix B; 256 is EOS).
/// The code is canonical: the codes follow from the lengths.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];
const EOS: usize = 256;

/// For each length: the first canonical code of that length, how many there are, and where
/// their symbols start in the symbols sorted by (length, value).
struct Canonical {
    first: [u32; 31],
    count: [u32; 31],
    offset: [usize; 31],
    symbols: [u16; 257],
}

fn canonical() -> &'static Canonical {
    static TABLE: std::sync::OnceLock<Canonical> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut c = Canonical {
            first: [0; 31],
            count: [0; 31],
            offset: [0; 31],
            symbols: [0; 257],
        };
        for &l in &LENGTHS {
            c.count[l as usize] += 1;
        }
        let mut code = 0u32;
        let mut at = 0usize;
        for len in 1..31 {
            c.first[len] = code;
            c.offset[len] = at;
            at += c.count[len] as usize;
            code = (code + c.count[len]) << 1;
        }
        let mut next = c.offset;
        for (symbol, &l) in LENGTHS.iter().enumerate() {
            c.symbols[next[l as usize]] = symbol as u16;
            next[l as usize] += 1;
        }
        c
    })
}

/// Decodes a Huffman-coded string: the padding must be the most significant bits of EOS (all
/// ones), shorter than a byte, and EOS itself must not appear.
pub fn huffman_decode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let c = canonical();
    // At most 8/5 symbols a byte (the shortest code is 5 bits).
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(8) / 5);
    let (mut code, mut len) = (0u32, 0usize);
    for &byte in bytes {
        for bit in (0..8).rev() {
            code = code << 1 | u32::from(byte >> bit & 1);
            len += 1;
            if len > 30 {
                return Err("an invalid Huffman code".into());
            }
            let index = code.wrapping_sub(c.first[len]);
            if code >= c.first[len] && index < c.count[len] {
                let symbol = c.symbols[c.offset[len] + index as usize] as usize;
                if symbol == EOS {
                    return Err("a Huffman-coded string holds EOS".into());
                }
                out.push(symbol as u8);
                code = 0;
                len = 0;
            }
        }
    }
    if len >= 8 || code != (1 << len) - 1 {
        return Err("a Huffman-coded string padded wrongly".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(huffman_decode(&hex("f1e3 c2e5 f23a 6ba0 ab90 f400")).is_err());
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
        assert!(bomb.decode(&block).unwrap_err().contains("more than"));
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
        assert_eq!(
            read_integer(&mut block, 7),
            Err("an HPACK integer too large".into())
        );
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
        assert!(
            Decoder::new()
                .decode(&block)
                .unwrap_err()
                .contains("cut short")
        );
        // Index 0 is no entry.
        assert!(Decoder::new().decode(&[0x80]).is_err());
    }

    #[test]
    fn a_table_size_update_comes_first_or_not_at_all() {
        // Size 0, then :method GET: fine.
        assert_eq!(Decoder::new().decode(&[0x20, 0x82]).unwrap().len(), 1);
        // :method GET, then a size update.
        let err = Decoder::new().decode(&[0x82, 0x20]).unwrap_err();
        assert!(err.contains("table size update"), "{err}");
        assert!(
            Decoder::new().decode(&[0x3f, 0xe2, 0x1f]).is_err(),
            "4097 bytes"
        );
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
        assert!(err.contains("does not fit"), "{err}");
        assert!(request("a:1", "/p", &[], &vec![0; MAX_FRAME + 1], 1 << 20).is_err());
        let ok = request("a:1", "/p", &[("te", "trailers")], &[0; 5], 1 << 20).unwrap();
        assert!(ok.starts_with(PREFACE));
        // A limit past u32 is a window of 2^31 - 1, not the limit's low bits.
        let big = request("a:1", "/p", &[], &[], (1usize << 32) + 10).unwrap();
        let window = &big[PREFACE.len() + 9 + 8..PREFACE.len() + 9 + 12];
        assert_eq!(window, 0x7fff_ffffu32.to_be_bytes());
    }

    fn exchange(frames: &[(u8, u8, u32, &[u8])]) -> Result<Response, String> {
        let mut e = Exchange::new(1 << 20);
        for &(kind, flags, id, payload) in frames {
            if let Step::Done = e.on_frame(kind, flags, id, payload)? {
                return Ok(e.response);
            }
        }
        Err("no end".into())
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
        .unwrap();
        assert_eq!(answer.field(":status"), Some("200"));
        assert_eq!(answer.field("grpc-status"), Some("0"));
        assert_eq!(answer.body, [7, 8]);
        // Another frame inside a header block; a short PING; padding longer than the frame.
        for frames in [
            &[
                (HEADERS, 0, STREAM, &[0x88][..]),
                (DATA, END_STREAM, STREAM, &[][..]),
            ][..],
            &[(PING, 0, 0, &[1; 7][..])][..],
            &[(DATA, PADDED, STREAM, &[3, 1, 1][..])][..],
            &[(CONTINUATION, END_HEADERS, STREAM, &[][..])][..],
        ] {
            assert!(exchange(frames).is_err(), "{frames:?}");
        }
        // A body over the limit.
        let mut e = Exchange::new(3);
        assert!(matches!(
            e.on_frame(DATA, 0, STREAM, &[0; 3]),
            Ok(Step::More)
        ));
        assert!(
            e.on_frame(DATA, 0, STREAM, &[0])
                .unwrap_err()
                .contains("larger")
        );
    }
}

#[cfg(test)]
mod fuzz;
