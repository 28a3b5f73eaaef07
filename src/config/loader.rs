//! Reading one key: from the environment first, then the TOML file, into a typed value, with
//! every problem recorded (naming the variable or key and where it came from) instead of stopping
//! at the first. The TOML file is read here too, its keys matched against the table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::keys::KEYS;
use super::{ConfigProblem, Origin};
use crate::duration;

/// A configuration file is a few KiB.
const MAX_CONFIG_FILE: u64 = 1 << 20;

/// Why the configuration file could not be read as text.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("{0}")]
    Read(#[from] crate::fs::ReadError),
    #[error("it is not UTF-8 text")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}

fn read_text(path: &Path) -> Result<String, FileError> {
    Ok(String::from_utf8(crate::fs::read_regular_path(
        path,
        MAX_CONFIG_FILE,
    )?)?)
}

/// A raw value before parsing, with its origin.
pub(super) struct Raw {
    pub value: RawValue,
    pub origin: Origin,
}

pub(super) enum RawValue {
    Str(String),
    Bool(bool),
    Int(i64),
    /// A TOML value no key accepts (a float, date, array or table): named, never stringified.
    Other(&'static str),
}

impl RawValue {
    fn describe(&self) -> String {
        match self {
            RawValue::Str(s) => format!("{s:?}"),
            RawValue::Bool(b) => b.to_string(),
            RawValue::Int(i) => i.to_string(),
            RawValue::Other(kind) => format!("a TOML {kind}"),
        }
    }
}

pub(super) struct Loader<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub file: BTreeMap<String, toml::Value>,
    pub file_path: Option<PathBuf>,
    pub problems: Vec<ConfigProblem>,
}

impl Loader<'_> {
    /// The key's value, from the environment (set and not empty) or the file.
    pub fn raw(&self, key: &str) -> Option<Raw> {
        if let Some(v) = (self.env)(key).filter(|v| !v.is_empty()) {
            return Some(Raw {
                value: RawValue::Str(v),
                origin: Origin::Env,
            });
        }
        let value = self.file.get(&key.to_ascii_lowercase())?;
        let origin = Origin::File(self.file_path.clone().unwrap_or_default());
        let value = match value {
            toml::Value::String(s) if s.is_empty() => return None,
            toml::Value::String(s) => RawValue::Str(s.clone()),
            toml::Value::Boolean(b) => RawValue::Bool(*b),
            toml::Value::Integer(i) => RawValue::Int(*i),
            toml::Value::Float(_) => RawValue::Other("float"),
            toml::Value::Datetime(_) => RawValue::Other("date-time"),
            toml::Value::Array(_) => RawValue::Other("array"),
            toml::Value::Table(_) => RawValue::Other("table"),
        };
        Some(Raw { value, origin })
    }

    pub fn problem(&mut self, key: &str, origin: Origin, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            origin,
            message: message.into(),
        });
    }

    /// A problem with the value `key` has (from wherever it came).
    pub fn fail(&mut self, key: &str, message: impl Into<String>) {
        let origin = self.raw(key).map_or(Origin::Env, |r| r.origin);
        self.problem(key, origin, message);
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        let raw = self.raw(key)?;
        match raw.value {
            RawValue::Str(s) => Some(s),
            other => {
                self.problem(
                    key,
                    raw.origin,
                    format!("expected a string, got {}", other.describe()),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, key: &str, default: bool) -> bool {
        let Some(raw) = self.raw(key) else {
            return default;
        };
        match raw.value {
            RawValue::Bool(b) => b,
            RawValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
            RawValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
            other => {
                self.problem(
                    key,
                    raw.origin,
                    format!(
                        "{} is not a boolean; accepted values: true, false",
                        other.describe()
                    ),
                );
                default
            }
        }
    }

    pub fn duration(&mut self, key: &str) -> Option<Duration> {
        let raw = self.raw(key)?;
        let why = match (&raw.value, &raw.origin) {
            (RawValue::Str(s), _) => match duration::parse(s) {
                Ok(d) => return Some(d),
                Err(e) => e.to_string(),
            },
            // A Go TOML encoder writes time.Duration as integer nanoseconds.
            (RawValue::Int(n), Origin::File(_)) if *n > 0 => {
                return Some(Duration::from_nanos(*n as u64));
            }
            (other, _) => format!("{} is not a positive duration", other.describe()),
        };
        self.problem(
            key,
            raw.origin,
            format!("{why}; accepted: a duration such as 300ms, 30s, 2m"),
        );
        None
    }

    pub fn count(&mut self, key: &str) -> u32 {
        self.count_or(key, 0, 0)
    }

    /// A whole number of at least `min`, `default` when unset.
    pub fn count_or(&mut self, key: &str, default: u32, min: u32) -> u32 {
        let Some(raw) = self.raw(key) else {
            return default;
        };
        let parsed = match &raw.value {
            RawValue::Str(s) => s.trim().parse::<u32>().ok(),
            RawValue::Int(n) => u32::try_from(*n).ok(),
            RawValue::Bool(_) | RawValue::Other(_) => None,
        };
        match parsed {
            Some(n) if n >= min => n,
            _ => {
                self.problem(
                    key,
                    raw.origin,
                    format!(
                        "{} is not a whole number of {min} or more",
                        raw.value.describe()
                    ),
                );
                default
            }
        }
    }

    pub fn choice<T: Copy>(&mut self, key: &str, default: T, choices: &[(&str, T)]) -> T {
        let Some(text) = self.string(key) else {
            return default;
        };
        let lower = text.to_ascii_lowercase();
        if let Some((_, value)) = choices.iter().find(|(name, _)| *name == lower) {
            return *value;
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        self.fail(
            key,
            format!(
                "{text:?} is not accepted; accepted values: {}",
                names.join(", ")
            ),
        );
        default
    }

    pub fn absolute_path(&mut self, key: &str) -> Option<PathBuf> {
        let text = self.string(key)?;
        let path = PathBuf::from(&text);
        if path.is_absolute() {
            Some(path)
        } else {
            self.fail(key, format!("{text:?} must be an absolute path"));
            None
        }
    }

    /// A value parsed by `parse` (whose error says what is wrong), else `default`'s.
    pub fn parsed<T, E: std::fmt::Display>(
        &mut self,
        key: &str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.string(key).unwrap_or_else(|| default.to_string());
        match parse(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(key, e.to_string());
                None
            }
        }
    }
}

/// Reads the TOML file into the loader. Keys are matched whatever their case, as Cosmovisor's
/// reader does (`DAEMON_NAME = …` is `daemon_name`); keys no table entry names go to `unknown`,
/// with the known key they are likely a typo of.
pub(super) fn read_file(loader: &mut Loader<'_>, path: &Path, unknown: &mut Vec<ConfigProblem>) {
    let text = read_text(path);
    let origin = Origin::File(path.to_path_buf());
    match text {
        Ok(text) => match text.parse::<toml::Table>() {
            Ok(table) => {
                for (key, value) in table {
                    let lower = key.to_ascii_lowercase();
                    if !KEYS.iter().any(|k| k.name.eq_ignore_ascii_case(&key)) {
                        let hint = closest_key(&lower)
                            .map(|k| format!("; did you mean {}?", k.to_ascii_lowercase()))
                            .unwrap_or_default();
                        unknown.push(ConfigProblem {
                            key,
                            origin: origin.clone(),
                            message: format!("unknown key, ignored{hint}"),
                        });
                        continue;
                    }
                    if loader.file.insert(lower.clone(), value).is_some() {
                        loader.problem(
                            &lower,
                            origin.clone(),
                            "is set twice (keys are read whatever their case); keep one",
                        );
                    }
                }
                loader.file_path = Some(path.to_path_buf());
            }
            Err(e) => loader.problem(
                "--cosmovisor-config",
                Origin::File(path.to_path_buf()),
                format!("not valid TOML: {}", e.message()),
            ),
        },
        Err(e) => loader.problem(
            "--cosmovisor-config",
            Origin::Missing,
            format!("cannot read {}: {e}", path.display()),
        ),
    }
}

/// The known key `key` is most likely a misspelling of: within two edits.
fn closest_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(key, &k.name.to_ascii_lowercase()), k.name))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, name)| name)
}

/// Levenshtein distance, over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
