//! What the runs are reduced to: percentiles, the CDF plot, the machine they ran on.

use serde_json::{Value, json};

use crate::runs::Run;

pub(crate) fn pct(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub(crate) fn stats(values: &[f64]) -> Value {
    json!({"n": values.len(), "p50": pct(values, 0.5), "p99": pct(values, 0.99), "max": pct(values, 1.0)})
}

/// CDFs of the total latency per set-up, log-scaled milliseconds.
pub(crate) fn svg(runs: &[(&str, &str, &Run)]) -> String {
    let (w, h, left, bottom, top, right) = (760.0, 420.0, 60.0, 50.0, 30.0, 20.0);
    let all: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.2.totals.iter().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let lo = pct(&all, 0.0).max(0.01).log10().floor();
    let hi = pct(&all, 1.0).log10().ceil().max(lo + 1.0);
    let x = |ms: f64| left + (ms.max(10f64.powf(lo)).log10() - lo) / (hi - lo) * (w - left - right);
    let y = |q: f64| top + (1.0 - q) * (h - top - bottom);
    let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f", "#d62728"];
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="18" text-anchor="middle" font-size="14">swap-to-restart latency, cumulative distribution (log scale)</text>
"#,
        w / 2.0
    );
    let mut decade = lo;
    while decade <= hi {
        let px = x(10f64.powf(decade));
        out += &format!(
            r##"<line x1="{px}" y1="{top}" x2="{px}" y2="{}" stroke="#ddd"/><text x="{px}" y="{}" text-anchor="middle">{} ms</text>
"##,
            h - bottom,
            h - bottom + 16.0,
            10f64.powf(decade)
        );
        decade += 1.0;
    }
    for q in [0.0, 0.5, 0.9, 0.99] {
        out += &format!(
            r##"<line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#eee"/><text x="{2}" y="{3}" text-anchor="end">{4}</text>
"##,
            y(q),
            w - right,
            left - 6.0,
            y(q) + 4.0,
            if q == 0.99 {
                "p99".to_string()
            } else {
                format!("{q}")
            }
        );
    }
    for (i, (key, title, run)) in runs.iter().enumerate() {
        let mut v = run.totals.clone();
        v.sort_by(f64::total_cmp);
        let points: Vec<String> = v
            .iter()
            .enumerate()
            .map(|(j, ms)| format!("{:.1},{:.1}", x(*ms), y((j + 1) as f64 / v.len() as f64)))
            .collect();
        out += &format!(
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>
<text x="{}" y="{}" fill="{}">({key}) {title}: p50 {:.1} ms</text>
"#,
            colors[i % colors.len()],
            points.join(" "),
            left + 10.0,
            top + 16.0 + 16.0 * i as f64,
            colors[i % colors.len()],
            pct(&run.totals, 0.5)
        );
    }
    out + &format!(
        r#"<text x="{}" y="{}" text-anchor="middle">milliseconds from upgrade-info.json written to the new binary's first instruction</text>
</svg>
"#,
        w / 2.0,
        h - 10.0
    )
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores, {}", std::env::consts::ARCH)
}
