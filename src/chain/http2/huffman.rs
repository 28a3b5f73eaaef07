//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B), decoded from the code lengths alone: the
//! code is canonical, so the table of 257 codes is computed once rather than written out.

/// Why a Huffman-coded string did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HuffmanError {
    #[error("an invalid Huffman code")]
    Invalid,
    #[error("a Huffman-coded string holds EOS")]
    Eos,
    #[error("a Huffman-coded string padded wrongly")]
    Padding,
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
pub(super) fn huffman_decode(bytes: &[u8]) -> Result<Vec<u8>, HuffmanError> {
    let c = canonical();
    // At most 8/5 symbols a byte (the shortest code is 5 bits).
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(8) / 5);
    let (mut code, mut len) = (0u32, 0usize);
    for &byte in bytes {
        for bit in (0..8).rev() {
            code = code << 1 | u32::from(byte >> bit & 1);
            len += 1;
            if len > 30 {
                return Err(HuffmanError::Invalid);
            }
            let index = code.wrapping_sub(c.first[len]);
            if code >= c.first[len] && index < c.count[len] {
                let symbol = c.symbols[c.offset[len] + index as usize] as usize;
                if symbol == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(symbol as u8);
                code = 0;
                len = 0;
            }
        }
    }
    if len >= 8 || code != (1 << len) - 1 {
        return Err(HuffmanError::Padding);
    }
    Ok(out)
}
