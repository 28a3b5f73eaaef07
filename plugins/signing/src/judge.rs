//! The verdict on the node's RPC answers, apart from how they are fetched (the unit tests feed
//! it real answers of CometBFT v0.34 to v1).

use serde_json::Value;
use wasmvisor_plugin_support::setting;

/// What the operator configured.
#[derive(Debug)]
pub struct Settings {
    address: Option<String>,
    blocks: u64,
    window: u64,
    require_active: bool,
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Healthy(String),
    Unhealthy(String),
    Pending(String),
}

impl Settings {
    pub fn read(settings: &[(String, String)]) -> Result<Settings, String> {
        let number = |key: &str, default: u64| -> Result<u64, String> {
            match setting(settings, key) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(format!(
                        "the setting {key} = {v:?} is not a whole number of at least 1"
                    )),
                },
            }
        };
        let require_active = match setting(settings, "require-active") {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => {
                return Err(format!(
                    "the setting require-active = {v:?} is neither true nor false"
                ));
            }
        };
        let (blocks, window) = (number("blocks", 3)?, number("window", 20)?);
        if blocks > window {
            return Err(format!(
                "blocks = {blocks} exceeds window = {window}: the node would be unhealthy before \
                 it could be healthy"
            ));
        }
        let address = setting(settings, "address")
            .map(crate::address::parse)
            .transpose()?;
        Ok(Settings {
            address,
            blocks,
            window,
            require_active,
        })
    }

    /// Judges the validator's signatures in the blocks after the upgrade at height `upgrade`;
    /// `get` fetches an RPC path (`/status`, `/commit?height=h`).
    pub fn judge(
        &self,
        upgrade: u64,
        mut get: impl FnMut(&str) -> Result<Vec<u8>, String>,
    ) -> Verdict {
        let node = match get("/status").and_then(|b| Status::read(&b)) {
            Ok(s) => s,
            Err(e) => return Verdict::Pending(format!("the RPC's /status: {e}")),
        };
        let address = self.address.clone().unwrap_or_else(|| node.address.clone());
        if address.is_empty() {
            return Verdict::Pending(
                "the node's /status names no validator (validator_info.address): set address"
                    .into(),
            );
        }
        if address == node.address && node.power == 0 && !self.require_active {
            return Verdict::Healthy(format!(
                "validator {address} is not in the active set (voting power 0): it has no block \
                 to sign (require-active = true would require it)"
            ));
        }
        // Block `upgrade` itself was decided, its votes cast, before the old binary failed to
        // execute it: the first votes of the new binary are for the block after it. The commit
        // of height h is final (canonical) once block h+1 is stored.
        let first = upgrade + 1;
        if node.height <= first {
            return Verdict::Pending(format!(
                "no block after the upgrade height {upgrade} is final yet (the node is at {}): \
                 blocks resume once two thirds of the voting power runs the new binary",
                node.height
            ));
        }
        let newest = node.height - 1;
        let final_commits = newest - first + 1;
        let oldest = newest + 1 - final_commits.min(self.window);
        let mut signed = Vec::new();
        let mut unknown = None;
        for h in (oldest..=newest).rev() {
            match get(&format!("/commit?height={h}")).and_then(|b| signed_by(&b, h, &address)) {
                Ok(true) => signed.push(h),
                Ok(false) => {}
                Err(e) => unknown = Some(e),
            }
            if signed.len() as u64 >= self.blocks {
                return Verdict::Healthy(format!(
                    "validator {address} signs again: its votes are in the commits of heights {} \
                     (upgrade at {upgrade})",
                    list(&signed)
                ));
            }
        }
        let span = format!("{oldest}..{newest}");
        match unknown {
            None if signed.is_empty() && final_commits >= self.window => {
                Verdict::Unhealthy(format!(
                    "validator {address} signed none of the {} commits {span} since the upgrade at \
                 {upgrade}: the node follows the chain without voting (a remote signer not \
                 connected, a consensus key not found?)",
                    self.window
                ))
            }
            None => Verdict::Pending(format!(
                "validator {address}: {} of {} signatures in the commits {span}",
                signed.len(),
                self.blocks
            )),
            Some(e) => Verdict::Pending(format!(
                "validator {address}: {} of {} signatures in the commits {span}; one could not \
                 be read: {e}",
                signed.len(),
                self.blocks
            )),
        }
    }
}

fn list(heights: &[u64]) -> String {
    let mut sorted = heights.to_vec();
    sorted.sort_unstable();
    sorted
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `/status` says of the node.
struct Status {
    height: u64,
    address: String,
    power: u64,
}

impl Status {
    fn read(body: &[u8]) -> Result<Status, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let result = &v["result"];
        let height = number(&result["sync_info"]["latest_block_height"])
            .ok_or("no sync_info.latest_block_height")?;
        let info = &result["validator_info"];
        Ok(Status {
            height,
            address: info["address"].as_str().unwrap_or("").to_ascii_uppercase(),
            power: number(&info["voting_power"]).unwrap_or(0),
        })
    }
}

/// A number as CometBFT writes one: an int64 as a string, a small one bare.
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        v => v.as_u64(),
    }
}

/// Whether the final commit of height `h` in a `/commit` answer carries a vote of `address`
/// that is not absent (x/slashing's rule: a nil vote is signed too).
fn signed_by(body: &[u8], h: u64, address: &str) -> Result<bool, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("/commit?height={h}: not JSON: {e}"))?;
    let result = &v["result"];
    let commit = &result["signed_header"]["commit"];
    if number(&commit["height"]) != Some(h) {
        return Err(format!("/commit?height={h} answered another height"));
    }
    if result["canonical"] == Value::Bool(false) {
        return Err(format!("the commit of height {h} is not final yet"));
    }
    let signatures = commit["signatures"]
        .as_array()
        .ok_or_else(|| format!("/commit?height={h} has no signatures"))?;
    Ok(signatures.iter().any(|s| {
        let absent = match &s["block_id_flag"] {
            Value::String(flag) => {
                flag == "BLOCK_ID_FLAG_ABSENT" || flag == "BLOCK_ID_FLAG_UNKNOWN"
            }
            flag => flag.as_u64().is_none_or(|f| f <= 1),
        };
        !absent
            && s["validator_address"]
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case(address))
    }))
}

#[cfg(test)]
mod tests;
