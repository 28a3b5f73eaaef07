//! Upgrade plans: `data/upgrade-info.json` (written by the node's x/upgrade module at the halt),
//! `data/upgrade-info.json.batch` (manual upgrades) and the plan record kept in each upgrade folder
//! — their format, and reading and writing them in the tree.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Current, Layout, LayoutError, UPGRADES_DIR};
use crate::fs::{self, Follow};

pub const UPGRADE_INFO_FILE: &str = "upgrade-info.json";
pub const BATCH_FILE: &str = "upgrade-info.json.batch";
/// Plan files are a few KiB; the cap keeps a hostile one from costing memory.
pub const MAX_PLAN_FILE: u64 = 1 << 20;
/// The only `time` a height-based plan may carry: Go's zero time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub height: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub info: String,
}

/// What reading upgrade-info.json found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// No file.
    Absent,
    /// Empty or cut short: the node is still writing it. Read again later.
    NotYet,
    /// Complete JSON that is not a valid plan. The reason says what is wrong.
    Invalid(String),
    Valid(Plan),
}

/// Parses the bytes of an upgrade-info.json as the node writes it.
pub fn parse(bytes: &[u8]) -> Read {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Read::NotYet;
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) if e.is_eof() => return Read::NotYet,
        Err(e) => return Read::Invalid(format!("not JSON: {e}")),
    };
    match plan_from_value(&value) {
        Ok(plan) => Read::Valid(plan),
        Err(reason) => Read::Invalid(reason),
    }
}

/// Validates one plan object: a non-empty name, a height > 0 (number or decimal string), `time`
/// absent or the zero time, `info` a string or a JSON object (kept as its JSON text).
pub fn plan_from_value(value: &Value) -> Result<Plan, String> {
    let obj = value
        .as_object()
        .ok_or("expected a JSON object with \"name\" and \"height\"")?;
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None => return Err("\"name\" is missing or empty".into()),
        Some(other) => return Err(format!("\"name\" must be a string, got {other}")),
    };
    let height = match obj.get("height") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("\"height\" must be a positive whole number, got {n}"))?,
        Some(Value::String(s)) => s
            .parse::<u64>()
            .map_err(|_| format!("\"height\" must be a positive whole number, got {s:?}"))?,
        None => return Err("\"height\" is missing".into()),
        Some(other) => return Err(format!("\"height\" must be a number, got {other}")),
    };
    if height == 0 {
        return Err("\"height\" must be greater than zero".into());
    }
    match obj.get("time") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == ZERO_TIME || t.is_empty() => {}
        Some(other) => {
            return Err(format!(
                "\"time\" is {other}: time-based upgrades are not supported, the plan must use a height"
            ));
        }
    }
    let info = match obj.get("info") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other @ Value::Object(_)) => other.to_string(),
        Some(other) => return Err(format!("\"info\" must be a string, got {other}")),
    };
    Ok(Plan { name, height, info })
}

impl Plan {
    /// The JSON the SDK writes, used for the record kept in the upgrade folder.
    pub fn to_json(&self) -> String {
        serde_json::json!({"name": self.name, "time": ZERO_TIME, "height": self.height, "info": self.info}).to_string()
    }
}

/// Parses the batch file: a JSON array of plans. Every entry must be valid.
pub fn parse_batch(bytes: &[u8]) -> Result<Vec<Plan>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let items = value.as_array().ok_or("expected a JSON array of plans")?;
    let mut plans = items
        .iter()
        .enumerate()
        .map(|(i, v)| plan_from_value(v).map_err(|e| format!("entry {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    plans.sort_by_key(|p| p.height);
    Ok(plans)
}

pub fn batch_to_json(plans: &[Plan]) -> String {
    let items: Vec<Value> = plans
        .iter()
        .map(|p| serde_json::from_str(&p.to_json()).expect("valid JSON"))
        .collect();
    serde_json::to_string_pretty(&items).expect("serializable") + "\n"
}

/// Why the batch file could not be read (its plans are then ignored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct BatchError {
    pub path: PathBuf,
    pub reason: String,
}

impl Layout {
    /// The plan record of a folder: the plan that was applied when `current` was switched to it.
    pub fn applied_plan(&self, current: &Current) -> Option<Plan> {
        let rel = current.rel_dir().join(UPGRADE_INFO_FILE);
        let bytes = fs::read_regular(&self.root, &rel, MAX_PLAN_FILE, Follow::Yes).ok()??;
        match parse(&bytes) {
            Read::Valid(p) => Some(p),
            _ => None,
        }
    }

    pub fn write_record(&self, dir_name: &str, plan: &Plan) -> Result<(), LayoutError> {
        let dir = Path::new(UPGRADES_DIR).join(dir_name);
        let sub = self.root.open_dir(&dir).map_err(|e| self.io(&dir, e))?;
        fs::write_atomic(&sub, UPGRADE_INFO_FILE, plan.to_json().as_bytes())
            .map_err(|e| self.io(dir.join(UPGRADE_INFO_FILE), e))
    }

    /// Reads `data/upgrade-info.json`. A symlink leading out of the data folder, a FIFO, a
    /// device or an oversized file reads as invalid, without blocking.
    pub fn read_upgrade_info(&self) -> Read {
        match fs::read_regular(&self.data, UPGRADE_INFO_FILE, MAX_PLAN_FILE, Follow::Yes) {
            Ok(None) => Read::Absent,
            Ok(Some(bytes)) => parse(&bytes),
            Err(e) => Read::Invalid(match e {
                fs::ReadError::Io(e) => format!("cannot read it: {e}"),
                other => other.to_string(),
            }),
        }
    }

    pub fn upgrade_info_path(&self) -> PathBuf {
        self.home.join("data").join(UPGRADE_INFO_FILE)
    }

    pub fn batch_path(&self) -> PathBuf {
        self.home.join("data").join(BATCH_FILE)
    }

    /// The manual plans of `data/upgrade-info.json.batch`, sorted by height.
    pub fn read_batch(&self) -> Result<Vec<Plan>, BatchError> {
        let fail = |reason: String| BatchError {
            path: self.batch_path(),
            reason,
        };
        match fs::read_regular(&self.data, BATCH_FILE, MAX_PLAN_FILE, Follow::Yes) {
            Ok(None) => Ok(Vec::new()),
            Ok(Some(bytes)) => parse_batch(&bytes).map_err(fail),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    pub fn write_batch(&self, plans: &[Plan]) -> io::Result<()> {
        if plans.is_empty() {
            return match self.data.remove_file(BATCH_FILE) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => fs::sync_dir(&self.data),
            };
        }
        fs::write_atomic(&self.data, BATCH_FILE, batch_to_json(plans).as_bytes())
    }

    /// Writes `data/upgrade-info.json` the way a halting node would, but atomically.
    pub fn write_upgrade_info(&self, plan: &Plan) -> io::Result<()> {
        fs::write_atomic(&self.data, UPGRADE_INFO_FILE, plan.to_json().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(json: &str) -> Plan {
        match parse(json.as_bytes()) {
            Read::Valid(p) => p,
            other => panic!("{json} gave {other:?}"),
        }
    }

    #[test]
    fn reads_what_the_sdk_writes() {
        let p = valid(
            r#"{"name":"v2","time":"0001-01-01T00:00:00Z","height":123456,"info":"see docs"}"#,
        );
        assert_eq!(
            p,
            Plan {
                name: "v2".into(),
                height: 123456,
                info: "see docs".into()
            }
        );
        assert_eq!(valid(r#"{"name":"v2","height":"77"}"#).height, 77);
        let p = valid(r#"{"name":"v2","height":5,"info":{"binaries":{"any":"https://x"}}}"#);
        assert!(p.info.contains("binaries"));
    }

    #[test]
    fn half_written_is_not_yet() {
        assert_eq!(parse(b""), Read::NotYet);
        assert_eq!(parse(b"  \n"), Read::NotYet);
        assert_eq!(parse(br#"{"name":"v2","hei"#), Read::NotYet);
    }

    #[test]
    fn bad_plans_are_invalid_with_a_reason() {
        for (json, needle) in [
            ("{}", "name"),
            (r#"{"name":"v2"}"#, "height"),
            (r#"{"height":5}"#, "name"),
            (r#"{"name":"","height":5}"#, "name"),
            (r#"{"name":"v2","height":0}"#, "greater than zero"),
            (r#"{"name":"v2","height":-4}"#, "height"),
            (r#"{"name":"v2","height":"abc"}"#, "height"),
            (r#"{"name":7,"height":5}"#, "name"),
            (
                r#"{"name":"v2","height":5,"time":"2030-01-01T00:00:00Z"}"#,
                "time",
            ),
            ("[1,2]", "object"),
            ("not json", "JSON"),
        ] {
            match parse(json.as_bytes()) {
                Read::Invalid(reason) => assert!(reason.contains(needle), "{json}: {reason}"),
                other => panic!("{json} gave {other:?}"),
            }
        }
    }

    #[test]
    fn batch_round_trips_sorted() {
        let plans = vec![
            Plan {
                name: "b".into(),
                height: 20,
                info: String::new(),
            },
            Plan {
                name: "a".into(),
                height: 10,
                info: String::new(),
            },
        ];
        let back = parse_batch(batch_to_json(&plans).as_bytes()).unwrap();
        assert_eq!(
            back.iter().map(|p| p.height).collect::<Vec<_>>(),
            vec![10, 20]
        );
    }
}

#[cfg(test)]
mod fuzz;
