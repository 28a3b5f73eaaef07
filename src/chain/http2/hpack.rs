//! HPACK (RFC 7541): the request's header block written as literals never indexed, and the
//! answer's header blocks decoded — the static and dynamic tables, integers and strings, the
//! Huffman code being `huffman.rs`'s. Every length and index is bounded before it is used: a
//! header block is whatever a server sent.

use std::collections::VecDeque;

use super::huffman::{HuffmanError, huffman_decode};

/// Why a header block did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("an HPACK table size update after a header field")]
    SizeUpdateLate,
    #[error("a dynamic table of {0} bytes, over {TABLE_SIZE}")]
    TableTooLarge(usize),
    #[error("the answer's headers decode to more than {MAX_DECODED} bytes")]
    DecodedTooLarge,
    #[error("HPACK index {0} refers to nothing")]
    NoEntry(usize),
    #[error("an HPACK block cut short")]
    BlockCutShort,
    #[error("an HPACK integer cut short")]
    IntegerCutShort,
    /// Past `MAX_INTEGER`.
    #[error("an HPACK integer too large")]
    IntegerTooLarge,
    #[error("an HPACK string cut short")]
    StringCutShort,
    #[error("a header that is not UTF-8")]
    NotUtf8(#[source] std::string::FromUtf8Error),
    #[error("{0}")]
    Huffman(#[from] HuffmanError),
}

/// The request's header block: `:method POST`, `:scheme http`, then `path`, `authority` and
/// `headers` as literals never indexed.
pub(super) fn request_block(authority: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
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
    block
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
pub(super) fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
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
pub(super) struct Decoder {
    // Read by the tests, which check the table's accounting.
    pub(super) table: VecDeque<(String, String)>,
    pub(super) size: usize,
    pub(super) max: usize,
}

/// The dynamic table size we allow (SETTINGS_HEADER_TABLE_SIZE, left at its default).
pub(super) const TABLE_SIZE: usize = 4096;
/// The most a header block may decode to (a gRPC answer's are a few hundred bytes).
pub(super) const MAX_DECODED: usize = 64 << 10;

impl Decoder {
    pub(super) fn new() -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: TABLE_SIZE,
        }
    }

    pub(super) fn decode(&mut self, mut block: &[u8]) -> Result<Vec<(String, String)>, HpackError> {
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
                    return Err(HpackError::SizeUpdateLate);
                }
                let size = read_integer(&mut block, 5)?;
                if size > TABLE_SIZE {
                    return Err(HpackError::TableTooLarge(size));
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
                return Err(HpackError::DecodedTooLarge);
            }
            fields.push(field);
        }
        Ok(fields)
    }

    fn literal(&self, block: &mut &[u8], prefix: u32) -> Result<(String, String), HpackError> {
        let index = read_integer(block, prefix)?;
        let name = if index == 0 {
            read_string(block)?
        } else {
            self.entry(index)?.0
        };
        Ok((name, read_string(block)?))
    }

    fn entry(&self, index: usize) -> Result<(String, String), HpackError> {
        match index {
            1..=61 => {
                let (n, v) = STATIC[index - 1];
                Ok((n.into(), v.into()))
            }
            _ => index
                .checked_sub(62)
                .and_then(|i| self.table.get(i))
                .cloned()
                .ok_or(HpackError::NoEntry(index)),
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
pub(super) fn entry_size((name, value): &(String, String)) -> usize {
    name.len().saturating_add(value.len()).saturating_add(32)
}

/// The largest HPACK integer read: more than any index, length or table size of an answer of
/// `MAX_ANSWER` (RFC 7541 §5.1 lets a decoder set this limit).
pub(super) const MAX_INTEGER: usize = (1 << 28) - 1;

/// An HPACK integer (RFC 7541 §5.1) with an `n`-bit prefix (1 to 8): continuation bytes past
/// `MAX_INTEGER` are an error, never an overflow.
pub(super) fn read_integer(block: &mut &[u8], n: u32) -> Result<usize, HpackError> {
    let (&first, rest) = block.split_first().ok_or(HpackError::BlockCutShort)?;
    *block = rest;
    let max = (1usize << n) - 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let (&b, rest) = block.split_first().ok_or(HpackError::IntegerCutShort)?;
        *block = rest;
        value = usize::from(b & 0x7f)
            .checked_shl(shift)
            .filter(|_| shift < 28)
            .and_then(|bits| value.checked_add(bits))
            .filter(|&v| v <= MAX_INTEGER)
            .ok_or(HpackError::IntegerTooLarge)?;
        if b & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

fn read_string(block: &mut &[u8]) -> Result<String, HpackError> {
    let huffman = block.first().is_some_and(|b| b & 0x80 != 0);
    let len = read_integer(block, 7)?;
    let (bytes, rest) = block
        .split_at_checked(len)
        .ok_or(HpackError::StringCutShort)?;
    *block = rest;
    let bytes = if huffman {
        huffman_decode(bytes)?
    } else {
        bytes.to_vec()
    };
    String::from_utf8(bytes).map_err(HpackError::NotUtf8)
}
