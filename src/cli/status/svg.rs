//! `status --timeline FILE.svg`: the last upgrade's timeline drawn as a picture to paste into a
//! post-mortem — one row per phase (a bar) or moment (a diamond) on a time axis from the halt.
//! The axis is logarithmic: a switch takes milliseconds and the chain's return minutes, and a
//! linear axis would show only the second.

use std::fmt::Write;

use super::timeline::{Downtime, Row};
use crate::upgrade::journal::Finished;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 800.0;
const TOP: f64 = 78.0;
const ROW: f64 = 24.0;
/// The axis starts here (ms): the halt, at 0, is drawn at the axis' start.
const LOW: f64 = 0.1;

/// The SVG document of `f`'s timeline.
pub fn draw(f: &Finished, rows: &[Row], downtime: Downtime) -> String {
    let high = rows.iter().map(|r| r.to_ms).fold(1.0, f64::max) * 1.5;
    let (low_log, high_log) = (LOW.log10(), high.log10().ceil());
    let x =
        |ms: f64| LEFT + (ms.max(LOW).log10() - low_log) / (high_log - low_log) * (RIGHT - LEFT);
    let height = TOP + ROW * rows.len() as f64 + 50.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="16" y="24" font-size="16" font-weight="bold">{}</text>
<text x="16" y="46" fill="#333333">{}</text>
"##,
        escape(&format!(
            "Upgrade {} at height {}: {} → {}",
            f.plan.name, f.plan.height, f.from, f.to
        )),
        escape(&summary(downtime)),
    );
    axis(
        &mut svg,
        &x,
        low_log,
        high_log,
        TOP + ROW * rows.len() as f64,
    );
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let label = match row.height {
            Some(h) => format!("{} ({h})", row.what),
            None => row.what.to_string(),
        };
        let _ = writeln!(
            svg,
            r##"<text x="16" y="{:.1}">{}</text><text x="{:.1}" y="{:.1}" fill="#333333">{}</text>"##,
            y + 15.0,
            escape(&label),
            RIGHT + 12.0,
            y + 15.0,
            escape(&span(row))
        );
        if row.is_moment() {
            let cx = x(row.to_ms);
            let _ = writeln!(
                svg,
                r##"<path d="M{cx:.1} {:.1} l6 6 l-6 6 l-6 -6 z" fill="#c0392b"/>"##,
                y + 5.0
            );
        } else {
            let (x1, x2) = (x(row.from_ms), x(row.to_ms));
            let _ = writeln!(
                svg,
                r##"<rect x="{x1:.1}" y="{:.1}" width="{:.1}" height="14" fill="#2e86c1"/>"##,
                y + 4.0,
                (x2 - x1).max(1.5)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The decades of the axis, with their grid lines.
fn axis(svg: &mut String, x: &dyn Fn(f64) -> f64, low_log: f64, high_log: f64, bottom: f64) {
    let mut decade = low_log.round() as i32;
    while f64::from(decade) <= high_log {
        let ms = 10f64.powi(decade);
        let at = x(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{at:.1}" y1="{:.1}" x2="{at:.1}" y2="{bottom:.1}" stroke="#dddddd"/><text x="{at:.1}" y="{:.1}" text-anchor="middle" fill="#555555">{}</text>"##,
            TOP - 6.0,
            bottom + 16.0,
            escape(&human(ms))
        );
        decade += 1;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555555">time after the halt (logarithmic)</text>"##,
        (LEFT + RIGHT) / 2.0,
        bottom + 36.0
    );
}

/// The downtime line under the title.
pub fn summary(d: Downtime) -> String {
    let mut parts = Vec::new();
    for (label, ms) in [
        ("to the new binary's start", d.start),
        ("to the chain's first block", d.first_block),
        ("to this validator's first vote", d.first_signature),
    ] {
        if let Some(ms) = ms {
            parts.push(format!("{} {label}", human(ms)));
        }
    }
    if parts.is_empty() {
        "downtime: not known yet".into()
    } else {
        format!("downtime: {}", parts.join(", "))
    }
}

/// A row's time: where a moment is, how long a phase took.
fn span(row: &Row) -> String {
    if row.is_moment() {
        format!("at {}", human(row.to_ms))
    } else {
        human(row.to_ms - row.from_ms)
    }
}

/// Milliseconds as an operator reads them: `0.42 ms`, `12 ms`, `3.2 s`, `4 min 05 s`.
pub fn human(ms: f64) -> String {
    match ms {
        ms if ms < 1.0 => format!("{ms:.2} ms"),
        ms if ms < 100.0 => format!("{ms:.1} ms"),
        ms if ms < 1000.0 => format!("{ms:.0} ms"),
        ms if ms < 60_000.0 => format!("{:.1} s", ms / 1000.0),
        ms => {
            let s = (ms / 1000.0).round() as u64;
            format!("{} min {:02} s", s / 60, s % 60)
        }
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_an_operator_reads_them() {
        assert_eq!(human(0.42), "0.42 ms");
        assert_eq!(human(12.04), "12.0 ms");
        assert_eq!(human(420.0), "420 ms");
        assert_eq!(human(3_240.0), "3.2 s");
        assert_eq!(human(245_000.0), "4 min 05 s");
    }

    #[test]
    fn names_are_escaped_and_every_row_is_drawn() {
        let rows = vec![
            Row {
                what: "halt",
                from_ms: 0.0,
                to_ms: 0.0,
                height: Some(7),
            },
            Row {
                what: "stop",
                from_ms: 0.5,
                to_ms: 3.0,
                height: None,
            },
            Row {
                what: "first vote",
                from_ms: 5000.0,
                to_ms: 5000.0,
                height: Some(9),
            },
        ];
        let mut f = crate::upgrade::journal::Finished {
            plan: crate::tree::Plan {
                name: "<v2 & \"co\">".into(),
                height: 7,
                info: String::new(),
            },
            from: "genesis".into(),
            to: "v2".into(),
            started_unix_ms: 0,
            finished_unix_ms: 0,
            phases: Vec::new(),
            backup: None,
            resumed: 0,
            health: None,
            probation: false,
            probation_until_unix_ms: None,
            rolled_back: false,
            first_block: None,
            first_vote: None,
            no_vote: None,
        };
        let svg = draw(&f, &rows, Downtime::default());
        assert!(svg.contains("&lt;v2 &amp; &quot;co&quot;&gt;"), "{svg}");
        assert!(!svg.contains("<v2"));
        assert_eq!(svg.matches("<rect x=").count(), 1, "one bar: stop");
        assert_eq!(svg.matches("<path d=").count(), 2, "two moments");
        assert!(svg.contains("first vote (9)") && svg.contains("at 5.0 s"));
        assert!(svg.trim_end().ends_with("</svg>"));
        f.plan.name = "v2".into();
        let d = Downtime {
            start: Some(12.0),
            first_block: None,
            first_signature: Some(5000.0),
        };
        assert!(
            draw(&f, &rows, d).contains(
                "downtime: 12.0 ms to the new binary&apos;s start"
                    .replace("&apos;", "'")
                    .as_str()
            )
        );
    }
}
