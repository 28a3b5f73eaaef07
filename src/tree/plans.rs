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

/// Why a JSON value is not a plan, in words that name the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("expected a JSON object with \"name\" and \"height\"")]
    NotObject,
    #[error("\"name\" is missing or empty")]
    NoName,
    #[error("\"name\" must be a string, got {0}")]
    NameNotText(Value),
    #[error("\"height\" must be a positive whole number, got {0}")]
    HeightNotWhole(serde_json::Number),
    #[error("\"height\" must be a positive whole number, got {0:?}")]
    HeightTextNotWhole(String),
    #[error("\"height\" is missing")]
    NoHeight,
    #[error("\"height\" must be a number, got {0}")]
    HeightNotNumber(Value),
    #[error("\"height\" must be greater than zero")]
    ZeroHeight,
    #[error("\"time\" is {0}: time-based upgrades are not supported, the plan must use a height")]
    TimeBased(Value),
    #[error("\"info\" must be a string, got {0}")]
    InfoNotText(Value),
}

/// Why the batch file's bytes are not a list of plans.
#[derive(Debug, thiserror::Error)]
pub enum BatchParseError {
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("expected a JSON array of plans")]
    NotArray,
    #[error("entry {index}: {source}")]
    Entry { index: usize, source: PlanError },
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
        Err(reason) => Read::Invalid(reason.to_string()),
    }
}

/// Validates one plan object: a non-empty name, a height > 0 (number or decimal string), `time`
/// absent or the zero time, `info` a string or a JSON object (kept as its JSON text).
pub fn plan_from_value(value: &Value) -> Result<Plan, PlanError> {
    let obj = value.as_object().ok_or(PlanError::NotObject)?;
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None => return Err(PlanError::NoName),
        Some(other) => return Err(PlanError::NameNotText(other.clone())),
    };
    let height = match obj.get("height") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| PlanError::HeightNotWhole(n.clone()))?,
        Some(Value::String(s)) => s
            .parse::<u64>()
            .map_err(|_| PlanError::HeightTextNotWhole(s.clone()))?,
        None => return Err(PlanError::NoHeight),
        Some(other) => return Err(PlanError::HeightNotNumber(other.clone())),
    };
    if height == 0 {
        return Err(PlanError::ZeroHeight);
    }
    match obj.get("time") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == ZERO_TIME || t.is_empty() => {}
        Some(other) => return Err(PlanError::TimeBased(other.clone())),
    }
    let info = match obj.get("info") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other @ Value::Object(_)) => other.to_string(),
        Some(other) => return Err(PlanError::InfoNotText(other.clone())),
    };
    Ok(Plan { name, height, info })
}

impl Plan {
    /// A plan as `add-upgrade --upgrade-height` and the batches give it: a name and a height,
    /// no `info`.
    pub fn manual(name: impl Into<String>, height: u64) -> Plan {
        Plan {
            name: name.into(),
            height,
            info: String::new(),
        }
    }

    /// The JSON the SDK writes, used for the record kept in the upgrade folder.
    pub fn to_json(&self) -> String {
        serde_json::json!({"name": self.name, "time": ZERO_TIME, "height": self.height, "info": self.info}).to_string()
    }
}

/// Parses the batch file: a JSON array of plans. Every entry must be valid.
pub fn parse_batch(bytes: &[u8]) -> Result<Vec<Plan>, BatchParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(BatchParseError::NotJson)?;
    let items = value.as_array().ok_or(BatchParseError::NotArray)?;
    let mut plans = items
        .iter()
        .enumerate()
        .map(|(index, v)| {
            plan_from_value(v).map_err(|source| BatchParseError::Entry { index, source })
        })
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
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct BatchError {
    pub path: PathBuf,
    #[source]
    pub reason: BatchReason,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchReason {
    #[error(transparent)]
    Read(#[from] fs::ReadError),
    #[error(transparent)]
    Parse(#[from] BatchParseError),
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
        let fail = |reason: BatchReason| BatchError {
            path: self.batch_path(),
            reason,
        };
        match fs::read_regular(&self.data, BATCH_FILE, MAX_PLAN_FILE, Follow::Yes) {
            Ok(None) => Ok(Vec::new()),
            Ok(Some(bytes)) => parse_batch(&bytes).map_err(|e| fail(e.into())),
            Err(e) => Err(fail(e.into())),
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

    /// The words an operator reads, exactly as they were when the reasons were strings.
    #[test]
    fn reasons_read_as_before() {
        let plan = |json: &str| {
            plan_from_value(&serde_json::from_str(json).unwrap())
                .unwrap_err()
                .to_string()
        };
        for (json, reason) in [
            ("[1]", r#"expected a JSON object with "name" and "height""#),
            (r#"{"name":" "}"#, r#""name" is missing or empty"#),
            (r#"{"name":7}"#, r#""name" must be a string, got 7"#),
            (
                r#"{"name":"v2","height":-4}"#,
                r#""height" must be a positive whole number, got -4"#,
            ),
            (
                r#"{"name":"v2","height":"x1"}"#,
                r#""height" must be a positive whole number, got "x1""#,
            ),
            (r#"{"name":"v2"}"#, r#""height" is missing"#),
            (
                r#"{"name":"v2","height":[1]}"#,
                r#""height" must be a number, got [1]"#,
            ),
            (
                r#"{"name":"v2","height":0}"#,
                r#""height" must be greater than zero"#,
            ),
            (
                r#"{"name":"v2","height":5,"time":"2030-01-01T00:00:00Z"}"#,
                r#""time" is "2030-01-01T00:00:00Z": time-based upgrades are not supported, the plan must use a height"#,
            ),
            (
                r#"{"name":"v2","height":5,"info":3}"#,
                r#""info" must be a string, got 3"#,
            ),
        ] {
            assert_eq!(plan(json), reason, "{json}");
        }
        let batch = |text: &str| parse_batch(text.as_bytes()).unwrap_err().to_string();
        assert_eq!(batch("{}"), "expected a JSON array of plans");
        assert_eq!(
            batch(r#"[{"name":"v2"}]"#),
            r#"entry 0: "height" is missing"#
        );
        assert!(batch("[").starts_with("not JSON: EOF"), "{}", batch("["));
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
