//! The chain's pace, for an upgrade's ETA: the latest block's height and time (`/status`'s
//! `sync_info`), and the time of a block some way back, whose difference over the blocks between
//! is the mean interval.
//!
//! That block's time is read from its header alone: `/blockchain?minHeight=h&maxHeight=h`
//! (CometBFT v0.34, v0.37, v0.38 and v1: `result.block_metas[].header`, a few KiB whatever the
//! block's size), not `/block?height=h`, whose whole block — transactions, commit, evidence — is
//! more than the client's 1 MiB cap on chains of big blocks (dYdX, Injective, Celestia, a busy
//! Osmosis). `/header?height=h` would do too, but exists only from v0.38.
//!
//! CometBFT writes times as RFC 3339 in UTC with up to nine fractional digits, trailing zeros
//! dropped (Go's `RFC3339Nano`: "2024-06-11T14:07:57.12519517Z"); they are read by hand here,
//! with checked arithmetic, rather than with a date crate.

use super::{Rpc, RpcError, number};

/// Where the chain is and how fast it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    /// The latest block the node stored.
    pub height: u64,
    /// That block's time (Unix milliseconds).
    pub time_unix_ms: i64,
    /// The mean interval of the blocks before it, in milliseconds; none when the node holds too
    /// few blocks (a new chain, a fresh snapshot) or their times do not advance.
    pub block_ms: Option<f64>,
}

impl Rpc {
    /// The chain's pace over the last `over` blocks (fewer when the node's store begins later:
    /// `/status`'s `earliest_block_height`, a pruned or state-synced node). Every error names
    /// the request and what was wrong with its answer.
    pub async fn pace(&self, over: u64) -> Result<Pace, RpcError> {
        let status = self.answer("/status").await?;
        let sync = &status["result"]["sync_info"];
        let height = number(
            &sync["latest_block_height"],
            "/status",
            "latest_block_height",
        )?;
        let latest = time(&sync["latest_block_time"], "/status", "latest_block_time")?;
        let time_unix_ms = unix_ms(latest);
        // The store's first block, when the node says (an older node may not).
        let earliest = number(
            &sync["earliest_block_height"],
            "/status",
            "earliest_block_height",
        )
        .unwrap_or(1);
        let from = height.saturating_sub(over).max(earliest).max(1);
        if from >= height {
            return Ok(Pace {
                height,
                time_unix_ms,
                block_ms: None,
            });
        }
        let path = format!("/blockchain?minHeight={from}&maxHeight={from}");
        let answer = self.answer(&path).await?;
        let then = header_time(&answer, from, &path)?;
        Ok(Pace {
            height,
            time_unix_ms,
            block_ms: interval(then, latest, height - from),
        })
    }
}

/// The time in the header of block `height` among a `/blockchain` answer's `block_metas`.
pub(super) fn header_time(
    answer: &serde_json::Value,
    height: u64,
    path: &str,
) -> Result<Instant, RpcError> {
    let malformed = |reason: String| RpcError::Malformed {
        path: path.to_string(),
        reason,
    };
    let Some(metas) = answer["result"]["block_metas"].as_array() else {
        return Err(malformed("no result.block_metas list in the answer".into()));
    };
    let mut held = Vec::new();
    for meta in metas {
        let header = &meta["header"];
        let at = number(&header["height"], path, "block_metas[].header.height")?;
        if at == height {
            return time(&header["time"], path, "block_metas[].header.time");
        }
        held.push(at);
    }
    // What it held instead, for the error (CometBFT answers at most 20; a node may send more).
    let shown = match held.as_slice() {
        [] => "no header".to_string(),
        [one] => format!("only block {one}'s header"),
        [first, .., last] => format!("{} headers, {first} to {last}", held.len()),
    };
    Err(malformed(format!(
        "no header of block {height} in block_metas, which holds {shown}"
    )))
}

/// The mean interval in milliseconds from `then` to `now` over `blocks`, when time advanced.
fn interval(then: Instant, now: Instant, blocks: u64) -> Option<f64> {
    let seconds = now.0.checked_sub(then.0)?;
    let nanos = i64::from(now.1) - i64::from(then.1);
    let ms = seconds as f64 * 1000.0 + nanos as f64 / 1e6;
    (ms > 0.0 && blocks > 0).then(|| ms / blocks as f64)
}

/// A moment: Unix seconds and nanoseconds (0 to 999 999 999).
pub(super) type Instant = (i64, u32);

pub(super) fn unix_ms((seconds, nanos): Instant) -> i64 {
    seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(nanos / 1_000_000))
}

/// The RFC 3339 time in `value`, or an error naming the answer and the field.
pub(super) fn time(
    value: &serde_json::Value,
    path: &str,
    field: &str,
) -> Result<Instant, RpcError> {
    let bad = |shown: String| RpcError::Malformed {
        path: path.to_string(),
        reason: format!("bad {field} {shown}"),
    };
    match value {
        serde_json::Value::String(s) => rfc3339(s).ok_or_else(|| bad(format!("{s:?}"))),
        serde_json::Value::Null => Err(RpcError::Malformed {
            path: path.to_string(),
            reason: format!("no {field} in the answer"),
        }),
        other => Err(bad(other.to_string())),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as Unix seconds and nanoseconds.
pub(super) fn rfc3339(text: &str) -> Option<Instant> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter().try_fold(0i64, |n, d| {
            n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| b.get(i) != Some(&c))
        || !matches!(b.get(10), Some(b'T' | b't'))
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    // Leap seconds (60) are allowed by RFC 3339 and read as the next second.
    if !(1..=12).contains(&month) || day < 1 || day > days_in(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        let start = at + 1;
        at = start;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let count = at - start;
        if count == 0 || count > 9 {
            return None;
        }
        let fraction = u32::try_from(digits(start..at)?).ok()?;
        nanos = fraction.checked_mul(10u32.pow(9 - count as u32))?;
    }
    let offset = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day)?;
    let seconds = days
        .checked_mul(86_400)?
        .checked_add(hour * 3600 + minute * 60 + second)?
        .checked_sub(offset * 60)?;
    Some((seconds, nanos))
}

fn days_in(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.checked_mul(146_097)?.checked_add(doe - 719_468)
}

#[cfg(test)]
mod tests;
