//! The validator's signing state, `priv_validator_state.json`: the height, round and step it last
//! signed. CometBFT refuses to sign anything at or below it, which is what stops a validator
//! from signing two different blocks at one height. Restoring an older copy would lower that
//! guard, so a restore keeps whichever of the two records is further ahead — and when either
//! cannot be read, the one the node last wrote.

use std::io;

use cap_std::fs::Dir;
use serde_json::Value;

use crate::fs::{self, Follow, ReadError};

/// Where CometBFT keeps it by default, relative to the data folder.
pub const SIGNING_STATE: &str = "priv_validator_state.json";
/// A few hundred bytes; anything far larger is not a signing state.
const MAX_STATE: u64 = 1 << 20;

/// `(height, round, step)` of a signing state.
fn position(bytes: &[u8]) -> Option<(u64, i64, i64)> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    // Amino JSON writes the height as a string; accept a number too.
    let height = match &v["height"] {
        Value::String(s) => s.parse().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    Some((height, v["round"].as_i64()?, v["step"].as_i64()?))
}

/// Copies `old`'s signing state over `restored`'s unless the restored one is strictly further
/// ahead. Returns whether `old`'s was kept. A signing state that is a symlink (to a volume of its
/// own) was captured as the same symlink, so it already is the current one.
pub fn keep_newer(old: &Dir, restored: &Dir) -> io::Result<bool> {
    let current = match fs::read_regular(old, SIGNING_STATE, MAX_STATE, Follow::No) {
        Ok(Some(bytes)) => bytes,
        Ok(None) | Err(ReadError::NotRegular(_) | ReadError::TooLarge(_)) => return Ok(false),
        Err(ReadError::Io(e)) => return Err(e),
    };
    let backed_up = fs::read_regular(restored, SIGNING_STATE, MAX_STATE, Follow::No)
        .ok()
        .flatten();
    let restored_ahead = match (backed_up.as_deref().and_then(position), position(&current)) {
        (Some(b), Some(c)) => b > c,
        _ => false,
    };
    if restored_ahead {
        return Ok(false);
    }
    fs::write_atomic(restored, SIGNING_STATE, &current)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn reads_cometbft_signing_states() {
        let real = br#"{
  "height": "19639471",
  "round": 0,
  "step": 3,
  "signature": "dGVzdA==",
  "signbytes": "AB"
}"#;
        assert_eq!(position(real), Some((19_639_471, 0, 3)));
        assert_eq!(
            position(br#"{"height":"0","round":0,"step":0}"#),
            Some((0, 0, 0))
        );
        assert_eq!(
            position(br#"{"height":12,"round":1,"step":2}"#),
            Some((12, 1, 2))
        );
        assert_eq!(position(b"{}"), None);
        assert_eq!(position(br#"{"height":"x","round":0,"step":0}"#), None);
        assert!(
            position(br#"{"height":"5","round":1,"step":1}"#)
                > position(br#"{"height":"5","round":0,"step":3}"#)
        );
    }
}
