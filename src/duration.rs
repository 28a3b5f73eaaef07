//! Go-style durations (`300ms`, `1m30s`, `1.5h`), the format every Cosmovisor duration variable uses.

use std::time::Duration;

/// Why a text is not a duration; each message quotes the text and says how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("{text:?} is negative; durations must be greater than zero")]
    Negative { text: String },
    #[error("{text:?} has no unit; write it like 300ms, 30s or 2m")]
    NoUnit { text: String },
    #[error("{text:?} is not a duration; write it like 300ms, 30s or 2m")]
    NoNumber { text: String },
    #[error("{text:?} has unknown unit {unit:?}; use ns, us, ms, s, m or h")]
    UnknownUnit { text: String, unit: String },
    #[error("{text:?} is not a duration")]
    BadNumber { text: String },
    #[error("{text:?} is too long")]
    TooLong { text: String },
    #[error("{text:?} is zero; durations must be greater than zero")]
    Zero { text: String },
}

/// Parses a Go duration string. Bare numbers, negative values and zero are refused: every duration
/// Cosmovisor accepts must be a positive amount with a unit.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let owned = || text.to_string();
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative { text: owned() });
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::NoUnit { text: owned() })?;
        if number_len == 0 {
            return Err(DurationError::NoNumber { text: owned() });
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
                return Err(DurationError::UnknownUnit {
                    text: owned(),
                    unit: unit.to_string(),
                });
            }
        };
        let nanos =
            scale(number, unit_nanos).ok_or_else(|| DurationError::BadNumber { text: owned() })?;
        // Past u64 nanoseconds (584 years) the answer is "too long" whatever follows: stopping
        // here also keeps the sum of many huge components from wrapping.
        total_nanos = nanos
            .and_then(|n| total_nanos.checked_add(n))
            .filter(|&n| n <= u128::from(u64::MAX))
            .ok_or_else(|| DurationError::TooLong { text: owned() })?;
    }
    if total_nanos == 0 {
        return Err(DurationError::Zero { text: owned() });
    }
    let nanos = u64::try_from(total_nanos).map_err(|_| DurationError::TooLong { text: owned() })?;
    Ok(Duration::from_nanos(nanos))
}

/// `number` (digits with at most one dot) times `unit_nanos`, exactly, without floating point:
/// `None` if it is not a number, `Some(None)` if it does not fit in u128.
fn scale(number: &str, unit_nanos: u128) -> Option<Option<u128>> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    // Only digits are left: a whole part that does not parse is one too large for u128.
    let whole: u128 = match whole {
        "" => 0,
        digits => match digits.parse() {
            Ok(n) => n,
            Err(_) => return Some(None),
        },
    };
    let mut nanos = whole.checked_mul(unit_nanos);
    let mut place = unit_nanos;
    for digit in fraction.bytes() {
        place /= 10;
        let digit = u128::from(digit.checked_sub(b'0')?);
        nanos = nanos.and_then(|n| n.checked_add(digit * place));
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

    /// The words an operator reads, exactly as they were when the errors were strings.
    #[test]
    fn each_refusal_quotes_the_text_and_says_how_to_write_it() {
        for (text, message) in [
            ("  ", "empty duration"),
            (
                "-1s",
                "\"-1s\" is negative; durations must be greater than zero",
            ),
            ("300", "\"300\" has no unit; write it like 300ms, 30s or 2m"),
            (
                "s",
                "\"s\" is not a duration; write it like 300ms, 30s or 2m",
            ),
            (
                "5x",
                "\"5x\" has unknown unit \"x\"; use ns, us, ms, s, m or h",
            ),
            ("1..5s", "\"1..5s\" is not a duration"),
            ("0s", "\"0s\" is zero; durations must be greater than zero"),
            (
                "18446744073709551616ns",
                "\"18446744073709551616ns\" is too long",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), message, "{text:?}");
        }
    }

    #[test]
    fn sums_too_large_for_u128_are_too_long_not_wrapped() {
        // u128::MAX nanoseconds plus 2: the old sum wrapped to 1ns (or panicked in debug).
        let max = u128::MAX.to_string();
        assert_eq!(
            parse(&format!("{max}ns2ns")),
            Err(DurationError::TooLong {
                text: format!("{max}ns2ns")
            })
        );
        // A whole part that just fits u128 once scaled (u128::MAX / 1h, remainder 1431768211455ns),
        // and half an hour more: the old fraction sum overflowed.
        assert!(
            parse("94522879700260684295381835.5h")
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
        // More digits than u128 holds.
        assert!(
            parse(&format!("{}0s", u128::MAX))
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
        // Many components, each alone within u128.
        let many = "100000000000000000000000000000000000000ns".repeat(5);
        assert!(parse(&many).unwrap_err().to_string().contains("too long"));
        assert!(
            parse("18446744073709551615s")
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
        assert_eq!(
            parse("18446744073709551615ns"),
            Ok(Duration::from_nanos(u64::MAX))
        );
        assert!(
            parse("18446744073709551615ns1ns")
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any text, and any sequence of numbers and units however large: a duration or an
        /// error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,40}") {
            let _ = parse(&text);
        }

        #[test]
        fn large_components_are_summed_exactly_or_refused(
            parts in proptest::collection::vec(
                (
                    "[0-9]{1,45}(\\.[0-9]{0,45})?",
                    proptest::sample::select(vec!["ns", "us", "µs", "ms", "s", "m", "h"]),
                ),
                1..8,
            ),
        ) {
            let text: String = parts.iter().map(|(n, u)| format!("{n}{u}")).collect();
            if let Ok(d) = parse(&text) {
                proptest::prop_assert!(d > Duration::ZERO);
                // Parsed again from its formatting, the same duration.
                proptest::prop_assert_eq!(parse(&format(d)), Ok(d));
            }
        }
    }
}
