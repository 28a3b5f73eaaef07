//! Plugin costs for each bundled plugin: compile (cranelift), deserialize (from the compiled
//! cache), and a fresh instantiate + call (what every plugin call pays).
//!
//! `cargo bench --bench plugins` — prints a table and one JSON line.

use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmvisor::bench::Download;
use wasmvisor::plugin::{
    ArchiveFormat, Artifact, Host, Plan, PluginSpec, Request, Staged, World, bundled, platform,
};
use wasmvisor::plugin::{Resolver, Source};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let host = Host::new(None).expect("engine");
    let call = wasmvisor::plugin::Call::new(&wasmvisor::cancel::Cancel::new());
    let request = Request {
        plan: Plan {
            name: "v2".into(),
            height: 100,
            info: r#"{"binaries":{"linux/amd64":"https://example.com/simd?checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000"}}"#.into(),
        },
        platform: platform(),
        daemon_name: "simd".into(),
        staged: Some(Staged {
            dir: "v2".into(),
            has_binary: true,
            sha256: None,
        }),
        downloads_allowed: true,
        checksum_required: false,
    };
    let artifact = Artifact {
        url: "mirror:not-http".into(),
        checksum: None,
        format: ArchiveFormat::Raw,
    };
    let scratch = std::env::temp_dir().join(format!("wasmvisor-bench-{}", std::process::id()));
    let mut rows = Vec::new();
    println!(
        "{:<12} {:>8} {:>12} {:>14} {:>16} {:>16}",
        "plugin", "wasm KB", "compile ms", "deserialize ms", "call p50 µs", "call p99 µs"
    );
    for (name, world) in [("cosmovisor", World::Resolver), ("http", World::Source)] {
        let (_, bytes) = bundled(name).expect("bundled");
        let engine = host.engine();
        let mut compile = Vec::new();
        let mut compiled = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            compiled = engine.precompile_component(bytes).expect("compiles");
            compile.push(t.elapsed());
        }
        let mut deserialize = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            // SAFETY: produced by this engine just above.
            let c = unsafe { Component::deserialize(engine, &compiled) }.expect("loads");
            deserialize.push(t.elapsed());
            drop(c);
        }
        let spec = PluginSpec::bundled(world, name);
        let mut calls = Vec::new();
        match world {
            World::Resolver => {
                let loaded: Resolver = host.load(&spec).expect("loads");
                for _ in 0..2000 {
                    let t = Instant::now();
                    host.resolve(&loaded, &request, None, &call)
                        .expect("answers");
                    calls.push(t.elapsed());
                }
            }
            _ => {
                let loaded: Source = host.load(&spec).expect("loads");
                for i in 0..2000 {
                    let path = scratch.with_extension(format!("{i}"));
                    let out =
                        Download::open_path(&path, &[], 1 << 20, "bench").expect("scratch file");
                    let t = Instant::now();
                    let (_, r) = host.fetch(&loaded, &artifact, out, &call);
                    calls.push(t.elapsed());
                    let _ = std::fs::remove_file(&path);
                    r.expect("answers").expect_err("not an http URL");
                }
            }
        }
        for v in [&mut compile, &mut deserialize, &mut calls] {
            v.sort();
        }
        let row = (
            name,
            bytes.len() as f64 / 1024.0,
            us(percentile(&compile, 0.5)) / 1e3,
            us(percentile(&deserialize, 0.5)) / 1e3,
            us(percentile(&calls, 0.5)),
            us(percentile(&calls, 0.99)),
        );
        println!(
            "{:<12} {:>8.0} {:>12.1} {:>14.3} {:>16.1} {:>16.1}",
            row.0, row.1, row.2, row.3, row.4, row.5
        );
        rows.push(row);
    }
    let json: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                r#"{{"plugin":"{}","wasm_kb":{:.0},"compile_ms":{:.2},"deserialize_ms":{:.4},"call_p50_us":{:.1},"call_p99_us":{:.1},"compile_over_deserialize":{:.0}}}"#,
                r.0,
                r.1,
                r.2,
                r.3,
                r.4,
                r.5,
                r.2 / r.3.max(1e-9)
            )
        })
        .collect();
    println!("JSON {{\"plugins\":[{}]}}", json.join(","));
    for r in &rows {
        println!(
            "{}: the compile cache saves {:.0}x per start (compile {:.1} ms vs deserialize {:.3} ms)",
            r.0,
            r.2 / r.3.max(1e-9),
            r.2,
            r.3
        );
    }
}
