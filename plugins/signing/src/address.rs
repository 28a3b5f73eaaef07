//! A validator's address as an operator writes it: the 20 bytes in hex, as CometBFT's RPC
//! writes them, or the consensus address in bech32 (`cosmosvalcons1…`, what
//! `<daemon> tendermint show-address` prints).

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// The address as upper-case hex (40 digits).
pub fn parse(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(text.to_ascii_uppercase());
    }
    let Some((hrp, _)) = text.rsplit_once('1') else {
        return Err(format!(
            "address {text:?} is neither 40 hex digits nor a bech32 consensus address (…valcons1…)"
        ));
    };
    let lower = hrp.to_ascii_lowercase();
    if lower.ends_with("valoper") || (!lower.ends_with("valcons") && !lower.is_empty()) {
        return Err(format!(
            "address {text:?} is not a consensus address: the commits carry the validator's \
             consensus address ({}valcons1…, printed by `<daemon> tendermint show-address`), \
             or its 40 hex digits",
            lower.trim_end_matches("valoper")
        ));
    }
    let bytes = bech32(text)?;
    if bytes.len() != 20 {
        return Err(format!(
            "address {text:?} holds {} bytes; a consensus address holds 20",
            bytes.len()
        ));
    }
    Ok(bytes.iter().map(|b| format!("{b:02X}")).collect())
}

/// The data of a bech32 string (BIP 173), its checksum verified.
fn bech32(text: &str) -> Result<Vec<u8>, String> {
    let bad = |why: &str| format!("address {text:?} is not valid bech32: {why}");
    if text.bytes().any(|b| b.is_ascii_lowercase()) && text.bytes().any(|b| b.is_ascii_uppercase())
    {
        return Err(bad("mixed case"));
    }
    let text_lower = text.to_ascii_lowercase();
    let (hrp, data) = text_lower
        .rsplit_once('1')
        .ok_or_else(|| bad("no separator"))?;
    if hrp.is_empty() || data.len() < 6 {
        return Err(bad("too short"));
    }
    let values: Vec<u8> = data
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("a character outside its alphabet"))?;
    let mut check: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
    check.push(0);
    check.extend(hrp.bytes().map(|b| b & 31));
    check.extend(&values);
    if polymod(&check) != 1 {
        return Err(bad("its checksum does not match (a typo?)"));
    }
    regroup(&values[..values.len() - 6]).ok_or_else(|| bad("padding"))
}

fn polymod(values: &[u8]) -> u32 {
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut chk: u32 = 1;
    for &v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// 5-bit groups to bytes; the padding must be under 5 bits and zero.
fn regroup(values: &[u8]) -> Option<Vec<u8>> {
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for &v in values {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (bits < 5 && acc & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_bech32_consensus_addresses_name_the_same_bytes() {
        // Every bech32 string below encodes the same 20 bytes.
        let hex = "2DD9F44FD9067555C322243C3C913BA7B51D2BE0";
        assert_eq!(parse(&hex.to_lowercase()).unwrap(), hex);
        let encoded = encode("cosmosvalcons", &hex::decode(hex));
        assert_eq!(parse(&encoded).unwrap(), hex);
        assert_eq!(parse(&encoded.to_uppercase()).unwrap(), hex);
        let osmo = encode("osmovalcons", &hex::decode(hex));
        assert_eq!(parse(&osmo).unwrap(), hex);
    }

    #[test]
    fn real_consensus_addresses_decode_to_the_hex_the_commits_carry() {
        // Pairs from a script that rewrites a cosmoshub genesis (the consensus key's hex
        // address and its cosmosvalcons form), and BIP 173's valid test vector.
        assert_eq!(
            parse("cosmosvalcons1a0kkjnnvuy3ylv0g5twcae368ptgk83tyalw6t").unwrap(),
            "EBED694E6CE1224FB1E8A2DD8EE63A38568B1E2B"
        );
        assert_eq!(
            parse("cosmosvalcons1jjll9ffc9jsy39c59dx9hps9kdfj7hm7w63d0c").unwrap(),
            "94BFF2A5382CA04897142B4C5B8605B3532F5F7E"
        );
        assert!(bech32("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw").is_ok());
    }

    #[test]
    fn typos_operator_addresses_and_other_lengths_are_refused_with_what_to_use() {
        let hex = "2DD9F44FD9067555C322243C3C913BA7B51D2BE0";
        let good = encode("cosmosvalcons", &hex::decode(hex));
        let mut typo = good.clone().into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'q' { b'p' } else { b'q' };
        let e = parse(std::str::from_utf8(&typo).unwrap()).unwrap_err();
        assert!(e.contains("checksum"), "{e}");
        let e = parse(&encode("cosmosvaloper", &hex::decode(hex))).unwrap_err();
        assert!(
            e.contains("cosmosvalcons1") && e.contains("show-address"),
            "{e}"
        );
        let e = parse(&encode("cosmosvalcons", &[1, 2, 3])).unwrap_err();
        assert!(e.contains("20"), "{e}");
        assert!(parse("nonsense").unwrap_err().contains("40 hex digits"));
        assert!(parse("COSMOSvalcons1qqqs").is_err());
    }

    /// Test-only bech32 encoder (BIP 173).
    fn encode(hrp: &str, bytes: &[u8]) -> String {
        let mut values = Vec::new();
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in bytes {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                values.push(((acc >> bits) & 31) as u8);
            }
        }
        if bits > 0 {
            values.push(((acc << (5 - bits)) & 31) as u8);
        }
        let mut check: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
        check.push(0);
        check.extend(hrp.bytes().map(|b| b & 31));
        check.extend(&values);
        check.extend([0; 6]);
        let pm = polymod(&check) ^ 1;
        values.extend((0..6).map(|i| ((pm >> (5 * (5 - i))) & 31) as u8));
        let data: String = values
            .iter()
            .map(|&v| CHARSET[v as usize] as char)
            .collect();
        format!("{hrp}1{data}")
    }

    mod hex {
        pub fn decode(text: &str) -> Vec<u8> {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
                .collect()
        }
    }
}
