//! What the supervisor knows of the upcoming upgrades, on disk for `status`:
//! `cosmovisor/wasmvisor-upcoming.json`, replaced atomically after every look. It is
//! information, never a decision: the halt decides from the plan files as it always did.

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use super::upcoming::Source;
use crate::fs::{Follow, ReadError};

pub const RECORD_FILE: &str = "wasmvisor-upcoming.json";
/// The record's format; a reader ignores a record of another.
pub const RECORD_VERSION: u32 = 1;
/// A record lists a few plans with bounded texts; the cap keeps a hostile file from costing
/// memory.
const MAX_RECORD: u64 = 1 << 20;

/// The record: when it was written, by whom, what the chain said, and every upcoming plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub written_unix: u64,
    pub supervisor_pid: u32,
    /// `WASMVISOR_PLAN_POLL` as configured (`off`, or a duration).
    pub plan_poll: String,
    pub chain: ChainSeen,
    pub upcoming: Vec<Entry>,
}

/// The last answer of the chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChainSeen {
    /// Where the plans were asked ("gRPC at …", "abci_query at …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Why the last look could not ask it, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why its pace (and so the ETAs) could not be read at the last answer, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace_error: Option<String>,
    /// When it last answered (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_unix: Option<u64>,
    /// Its latest height then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Its mean block interval over the recent blocks, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_seconds: Option<f64>,
}

/// One upcoming plan and its readiness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub height: u64,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voting_end_unix: Option<i64>,
    /// Seconds from `written_unix` to the height, from the chain's recent pace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
    /// Prepared and preflighted (`None`: not prepared, as a proposal is not unless asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Why it is not ready, or why it was not prepared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The staged binary, relative to the cosmovisor folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// What the staged binary printed when the preflight ran it (bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmed_unix: Option<u64>,
}

impl Entry {
    /// The seconds left to the height at `now_unix`, as of the record (never below zero).
    pub fn eta_at(&self, written_unix: u64, now_unix: u64) -> Option<f64> {
        let elapsed = now_unix.saturating_sub(written_unix) as f64;
        self.eta_seconds.map(|eta| (eta - elapsed).max(0.0))
    }
}

/// Why the record cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{RECORD_FILE}: {0}")]
    Read(ReadError),
    #[error("{RECORD_FILE}: not a record of the upcoming upgrades: {0}")]
    Format(serde_json::Error),
}

impl Record {
    /// Writes the record beside the journal (atomically; its loss only costs information).
    pub fn write(&self, root: &Dir) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        crate::fs::replace(root, RECORD_FILE, &bytes)
    }

    /// The record, if there is one of this format.
    pub fn read(root: &Dir) -> Result<Option<Record>, RecordError> {
        let bytes = match crate::fs::read_regular(root, RECORD_FILE, MAX_RECORD, Follow::No) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(e) => return Err(RecordError::Read(e)),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(RecordError::Format)?;
        if value.get("version").and_then(|v| v.as_u64()) != Some(u64::from(RECORD_VERSION)) {
            return Ok(None);
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(RecordError::Format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    fn record() -> Record {
        Record {
            version: RECORD_VERSION,
            written_unix: 1_000,
            supervisor_pid: 7,
            plan_poll: "1m".into(),
            chain: ChainSeen {
                from: Some("gRPC at localhost:9090".into()),
                height: Some(10),
                block_seconds: Some(6.0),
                ..ChainSeen::default()
            },
            upcoming: vec![Entry {
                name: "v2".into(),
                height: 20,
                source: Source::Chain,
                proposal: None,
                voting_end_unix: None,
                eta_seconds: Some(60.0),
                ready: Some(false),
                reason: Some("no binary".into()),
                binary: None,
                sha256: None,
                preflight: None,
                prepared_unix: None,
                checked_unix: None,
                warmed_unix: None,
            }],
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_another_version_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        assert!(Record::read(&dir).unwrap().is_none());
        record().write(&dir).unwrap();
        assert_eq!(Record::read(&dir).unwrap(), Some(record()));
        let text = std::fs::read_to_string(tmp.path().join(RECORD_FILE)).unwrap();
        assert!(text.contains("\"source\": \"chain\""), "{text}");
        std::fs::write(tmp.path().join(RECORD_FILE), r#"{"version": 2}"#).unwrap();
        assert!(Record::read(&dir).unwrap().is_none());
        std::fs::write(tmp.path().join(RECORD_FILE), "{").unwrap();
        let e = Record::read(&dir).unwrap_err().to_string();
        assert!(
            e.starts_with("wasmvisor-upcoming.json: not a record"),
            "{e}"
        );
    }

    #[test]
    fn the_eta_counts_down_from_the_record_and_stops_at_zero() {
        let e = &record().upcoming[0];
        assert_eq!(e.eta_at(1_000, 1_030), Some(30.0));
        assert_eq!(e.eta_at(1_000, 5_000), Some(0.0));
        assert_eq!(e.eta_at(1_000, 900), Some(60.0));
    }
}
