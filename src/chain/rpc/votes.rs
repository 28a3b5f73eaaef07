//! After an upgrade, the chain's side of its downtime: the node's validator (`/status`'s
//! `validator_info`), a block's time (its `/blockchain` header, a few hundred bytes where
//! `/block` carries the whole block), and when the validator's vote for a block was cast (the
//! final commit, `/commit?height=h`, as CometBFT 0.34 to 1.x write it: a vote that is not
//! absent — flag 2, or 3 for nil, as x/slashing counts a signature — with its timestamp).

use super::pace::{header_time, time, unix_ms};
use super::{Rpc, RpcError, number};

/// The node's validator and the latest block it stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// Upper-case hex, as the commits carry it.
    pub address: String,
    pub power: u64,
    pub height: u64,
}

impl Rpc {
    /// The node's own validator and its latest stored height (`/status`).
    pub async fn validator(&self) -> Result<Validator, RpcError> {
        let status = self.answer("/status").await?;
        let result = &status["result"];
        let height = number(
            &result["sync_info"]["latest_block_height"],
            "/status",
            "latest_block_height",
        )?;
        let info = &result["validator_info"];
        let power = number(&info["voting_power"], "/status", "voting_power").unwrap_or(0);
        let address = info["address"].as_str().unwrap_or("").to_ascii_uppercase();
        Ok(Validator {
            address,
            power,
            height,
        })
    }

    /// Block `height`'s time (Unix ms), from its header.
    pub async fn block_time_ms(&self, height: u64) -> Result<i64, RpcError> {
        let path = format!("/blockchain?minHeight={height}&maxHeight={height}");
        let answer = self.answer(&path).await?;
        header_time(&answer, height, &path).map(unix_ms)
    }

    /// When `address` cast its vote for block `height` (Unix ms), from the block's final
    /// commit; none when its vote is absent or it is not in the set. A commit that is not final
    /// yet (`canonical: false`, the newest block) is an error: its votes may still change.
    pub async fn vote_ms(&self, height: u64, address: &str) -> Result<Option<i64>, RpcError> {
        let path = format!("/commit?height={height}");
        let answer = self.answer(&path).await?;
        vote_in(&answer, height, address, &path)
    }
}

fn vote_in(
    answer: &serde_json::Value,
    height: u64,
    address: &str,
    path: &str,
) -> Result<Option<i64>, RpcError> {
    let malformed = |reason: &str| RpcError::Malformed {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let result = &answer["result"];
    let commit = &result["signed_header"]["commit"];
    if number(&commit["height"], path, "commit.height")? != height {
        return Err(malformed("the commit of another height"));
    }
    if result["canonical"] == serde_json::Value::Bool(false) {
        return Err(malformed("the commit is not final yet (canonical: false)"));
    }
    let signatures = commit["signatures"]
        .as_array()
        .ok_or_else(|| malformed("no commit.signatures list"))?;
    for sig in signatures {
        let voted = matches!(sig["block_id_flag"].as_u64(), Some(2 | 3));
        let ours = sig["validator_address"]
            .as_str()
            .is_some_and(|a| a.eq_ignore_ascii_case(address));
        if voted && ours {
            let at = time(&sig["timestamp"], path, "signatures[].timestamp")?;
            return Ok(Some(unix_ms(at)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::vote_in;

    /// The v0.38 kvstore chain's `/commit?height=10` (tendermint-rs's recorded answer), its
    /// validator's vote and an absent one beside it.
    fn commit(canonical: bool) -> serde_json::Value {
        json!({"jsonrpc": "2.0", "id": -1, "result": {"canonical": canonical, "signed_header": {
            "header": {"chain_id": "dockerchain", "height": "10", "time": "2023-05-17T14:12:53.088875124Z"},
            "commit": {"height": "10", "round": 0, "signatures": [
                {"block_id_flag": 2, "signature": "5y0Kas3bSrgVYG/QKwWovMpTBfavZfy/A8DXkQHzFHVMjOcVk2TK6xhYQasfiodordg1bjDf7NDwNi/YdilaAw==",
                 "timestamp": "2023-05-17T14:12:53.605374524Z", "validator_address": "2DD9F44FD9067555C322243C3C913BA7B51D2BE0"},
                {"block_id_flag": 1, "validator_address": "", "timestamp": "0001-01-01T00:00:00Z", "signature": null}]}}}})
    }

    #[test]
    fn a_vote_s_time_is_read_from_the_final_commit() {
        let at = vote_in(
            &commit(true),
            10,
            "2dd9f44fd9067555c322243c3c913ba7b51d2be0",
            "p",
        );
        assert_eq!(at, Ok(Some(1_684_332_773_605)));
        let other = vote_in(
            &commit(true),
            10,
            "00000000000000000000000000000000000000AB",
            "p",
        );
        assert_eq!(other, Ok(None));
        assert!(
            vote_in(
                &commit(false),
                10,
                "2DD9F44FD9067555C322243C3C913BA7B51D2BE0",
                "p"
            )
            .is_err()
        );
        assert!(
            vote_in(
                &commit(true),
                11,
                "2DD9F44FD9067555C322243C3C913BA7B51D2BE0",
                "p"
            )
            .is_err()
        );
    }
}
