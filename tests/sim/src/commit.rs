//! The validators' votes as CometBFT's RPC reports them: the validator set (this node's
//! validator and three others), `/commit?height=h` and a block's `last_commit`, in the JSON of
//! v0.34 to v1 (one shape): `block_id_flag` 2 for a signature, 1 for an absent vote, whose
//! address, timestamp and signature are empty.

use std::path::Path;

use serde_json::{Value, json};

use crate::grpc::base64;
use crate::node::Node;

/// The other validators of the simulated chain (power 10 each).
const OTHERS: [&str; 3] = [
    "1E4B0A8F27C6D3395E01B7A2C4F6D8E9A0B1C2D3",
    "5F2D9E0C1B3A47586970812A3B4C5D6E7F809112",
    "C0FFEE00DEADBEEF0123456789ABCDEF01234567",
];

/// 20 bytes of hex (as many as `len`) hashed from the home folder and `salt`: every version
/// of one home is the same node and the same validator.
pub(crate) fn home_hex(home: &Path, salt: u8, len: usize, upper: bool) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(salt);
    let mut out = String::new();
    for round in 0u8.. {
        if out.len() >= len {
            break;
        }
        for b in home.as_os_str().as_encoded_bytes().iter().chain([&round]) {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        out.push_str(&format!("{hash:016x}"));
    }
    out.truncate(len);
    if upper { out.to_uppercase() } else { out }
}

/// This node's validator address: uppercase hex, as CometBFT writes addresses.
pub(crate) fn address(home: &Path) -> String {
    home_hex(home, 1, 40, true)
}

/// `/status`'s `validator_info`.
pub(crate) fn validator_info(node: &Node) -> Value {
    let key: Vec<u8> = home_hex(&node.home, 2, 64, false)
        .as_bytes()
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0))
        .collect();
    json!({"address": address(&node.home),
        "pub_key": {"type": "tendermint/PubKeyEd25519", "value": base64(&key)},
        "voting_power": node.cfg.voting_power.to_string()})
}

/// The votes for block `h`: one entry per validator of the set, ordered by address (equal
/// powers), this node's absent when it did not sign `h` and left out when it has no power.
pub(crate) fn commit(node: &Node, h: u64) -> Value {
    let ours = address(&node.home);
    let signed = node.state.lock().unwrap().signed(h);
    let mut set: Vec<&str> = OTHERS.to_vec();
    if node.cfg.voting_power > 0 {
        set.push(&ours);
    }
    set.sort_unstable();
    let time = node.block_time_ms(h);
    let signatures: Vec<Value> = set
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            if *addr == ours && !signed {
                return json!({"block_id_flag": 1, "validator_address": "",
                    "timestamp": "0001-01-01T00:00:00Z", "signature": null});
            }
            let sig: Vec<u8> = (0..64u8)
                .map(|k| k ^ (h as u8) ^ addr.as_bytes()[usize::from(k) % 40])
                .collect();
            json!({"block_id_flag": 2, "validator_address": addr,
                "timestamp": crate::rpc::rfc3339(time + 40 + 7 * i as i64),
                "signature": base64(&sig)})
        })
        .collect();
    json!({"height": h.to_string(), "round": 0,
        "block_id": {"hash": format!("{h:064X}"), "parts": {"total": 1, "hash": format!("{h:064X}")}},
        "signatures": signatures})
}

/// `/commit?height=h`: block `h`'s header and its votes; canonical (as block h+1 carries them)
/// once a later block is stored.
pub(crate) fn answer(node: &Node, h: u64, stored: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": -1, "result": {
        "signed_header": {"header": crate::rpc::header(node, h), "commit": commit(node, h)},
        "canonical": h < stored}})
}

/// The height `/commit` is asked for (`height` as sent; none: the latest), or the text of one
/// it does not hold.
pub(crate) fn height(height: Option<&str>, stored: u64) -> Result<u64, String> {
    match height.unwrap_or("").trim_matches('"') {
        "" => Ok(stored),
        h => match h.parse::<u64>() {
            Ok(h) if (1..=stored).contains(&h) => Ok(h),
            _ => Err(h.to_string()),
        },
    }
}
