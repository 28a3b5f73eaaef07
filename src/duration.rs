//! Go-style durations (`300ms`, `1m30s`, `1.5h`), the format every Cosmovisor duration variable uses.

use std::time::Duration;

/// Parses a Go duration string. Bare numbers, negative values and zero are refused: every duration
/// Cosmovisor accepts must be a positive amount with a unit.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err(format!(
            "{text:?} is negative; durations must be greater than zero"
        ));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?} has no unit; write it like 300ms, 30s or 2m"))?;
        if number_len == 0 {
            return Err(format!(
                "{text:?} is not a duration; write it like 300ms, 30s or 2m"
            ));
        }
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "{text:?} has unknown unit {unit:?}; use ns, us, ms, s, m or h"
                ));
            }
        };
        total_nanos +=
            scale(number, unit_nanos).ok_or_else(|| format!("{text:?} is not a duration"))?;
    }
    if total_nanos == 0 {
        return Err(format!(
            "{text:?} is zero; durations must be greater than zero"
        ));
    }
    let nanos = u64::try_from(total_nanos).map_err(|_| format!("{text:?} is too long"))?;
    Ok(Duration::from_nanos(nanos))
}

/// `number` (digits with at most one dot) times `unit_nanos`, exactly, without floating point.
fn scale(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(unit_nanos)?;
    let mut place = unit_nanos;
    for digit in fraction.bytes() {
        place /= 10;
        nanos += u128::from(digit - b'0') * place;
    }
    Some(nanos)
}

/// Formats a duration the way Go prints one, so `config` output can be pasted back into the env.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return trim_fraction(nanos, 1_000, "µs");
    }
    if nanos < 1_000_000_000 {
        return trim_fraction(nanos, 1_000_000, "ms");
    }
    let mut out = String::new();
    let total_secs = d.as_secs();
    let hours = total_secs / 3600;
    let minutes = (total_secs % 3600) / 60;
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    let sec_nanos = u128::from(total_secs % 60) * 1_000_000_000 + u128::from(d.subsec_nanos());
    out.push_str(&trim_fraction(sec_nanos, 1_000_000_000, "s"));
    out
}

fn trim_fraction(nanos: u128, unit: u128, suffix: &str) -> String {
    let whole = nanos / unit;
    let frac = nanos % unit;
    if frac == 0 {
        return format!("{whole}{suffix}");
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}{suffix}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn refuses_what_go_would_not_accept_here() {
        for bad in [
            "", "300", "0", "0s", "-1s", "5x", "s", "1..5s", "ms5", "1 s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::from_millis(300)), "300ms");
        assert_eq!(format(Duration::from_secs(30)), "30s");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_secs(120)), "2m0s");
        for text in ["300ms", "30s", "1h30m0s", "1.5s", "2m0s", "250µs"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
