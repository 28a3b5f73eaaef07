//! Plugin costs: compile (cranelift), deserialize (from the compiled cache), and a fresh
//! instantiate + call (what every plugin call pays), for the bundled plugins and for a Rust, a
//! JavaScript and a Python component of the same world doing the same work (a resolver passing
//! the decision on; a health check whose one request is refused at once: the Rust one's through
//! the `http` import, the Python one's through wasi:http). The JavaScript and Python components
//! come from `plugins/build-guests`.
//!
//! `cargo bench --bench plugins` — prints a table and one JSON line.

use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmvisor::bench::Download;
use wasmvisor::plugin::{
    ArchiveFormat, Artifact, Decision, GuestPlan, Health, HealthContext, Host, HostConfig, Origin,
    PluginSpec, Request, Staged, World, bundled, platform,
};
use wasmvisor::plugin::{HealthCheck, Resolver, Source};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One plugin to measure: label, language, world, where it comes from, its settings, and how
/// many calls to time.
type Case = (
    &'static str,
    &'static str,
    World,
    Origin,
    Vec<(String, String)>,
    usize,
);

/// What one plugin costs.
struct Row {
    name: &'static str,
    language: &'static str,
    wasm_kb: f64,
    compile_ms: f64,
    deserialize_ms: f64,
    call_p50_us: f64,
    call_p99_us: f64,
}

fn main() {
    let host = Host::new(HostConfig::default()).expect("engine");
    let call = wasmvisor::plugin::Call::new(&wasmvisor::cancel::Cancel::new());
    let request = request();
    let scratch = std::env::temp_dir().join(format!("wasmvisor-bench-{}", std::process::id()));
    // A port nothing listens on: the health checks' one request fails at once, the same for
    // the Rust and the Python check, so what differs is the component, not the I/O.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        l.local_addr().expect("bound").port()
    };
    let plugins = std::path::Path::new(env!("WASMVISOR_PLUGINS_DIR"));
    let guest = plugins.join("../../guest");
    let signing_rpc = serve_signing_rpc();
    let mut rows = Vec::new();
    println!(
        "{:<12} {:<10} {:>8} {:>12} {:>14} {:>16} {:>16}",
        "plugin",
        "language",
        "wasm KB",
        "compile ms",
        "deserialize ms",
        "call p50 µs",
        "call p99 µs"
    );
    let mut all = cases(plugins, &guest, closed);
    all.extend(after_switch(plugins, closed, signing_rpc));
    for case in all {
        if let Some(row) = measure(&host, &call, &request, &scratch, case) {
            println!(
                "{:<12} {:<10} {:>8.0} {:>12.1} {:>14.3} {:>16.1} {:>16.1}",
                row.name,
                row.language,
                row.wasm_kb,
                row.compile_ms,
                row.deserialize_ms,
                row.call_p50_us,
                row.call_p99_us
            );
            rows.push(row);
        }
    }
    summary(&rows);
}

/// The plan every resolver is asked about, staged and downloadable.
fn request() -> Request {
    Request {
        plan: GuestPlan {
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
    }
}

/// The bundled plugins, and a Rust, a JavaScript and a Python component of the same worlds;
/// the health checks ask the closed port `closed`.
fn cases(plugins: &std::path::Path, guest: &std::path::Path, closed: u16) -> Vec<Case> {
    let health_settings = vec![
        ("rpc".to_string(), format!("http://127.0.0.1:{closed}")),
        ("expect".to_string(), "v2".to_string()),
    ];
    vec![
        (
            "cosmovisor",
            "Rust",
            World::Resolver,
            Origin::Bundled("cosmovisor"),
            vec![],
            2000,
        ),
        (
            "http",
            "Rust",
            World::Source,
            Origin::Bundled("http"),
            vec![],
            2000,
        ),
        (
            "template",
            "Rust",
            World::Resolver,
            Origin::File(plugins.join("wasmvisor_plugin_template.wasm")),
            vec![],
            2000,
        ),
        (
            "window",
            "JavaScript",
            World::Resolver,
            Origin::File(guest.join("window.wasm")),
            vec![
                ("start".into(), "00:00".into()),
                ("end".into(), "24:00".into()),
            ],
            200,
        ),
        (
            "cometbft",
            "Rust",
            World::Health,
            Origin::File(plugins.join("wasmvisor_plugin_cometbft.wasm")),
            health_settings.clone(),
            2000,
        ),
        (
            "app-version",
            "Python",
            World::Health,
            Origin::File(guest.join("app_version.wasm")),
            health_settings,
            200,
        ),
    ]
}

/// The bundled signing check, against a node whose validator signed the three final commits
/// after the upgrade height (one `/status` and three `/commit` per call, as in a healthy
/// verdict), and the webhook, whose receiver refuses the connection.
fn after_switch(plugins: &std::path::Path, closed: u16, rpc: u16) -> Vec<Case> {
    vec![
        (
            "signing",
            "Rust",
            World::Health,
            Origin::Bundled("signing"),
            vec![("rpc".into(), format!("http://127.0.0.1:{rpc}"))],
            2000,
        ),
        (
            "webhook",
            "Rust",
            World::Notifier,
            Origin::File(plugins.join("wasmvisor_plugin_webhook.wasm")),
            vec![("url".into(), format!("http://127.0.0.1:{closed}/hook"))],
            2000,
        ),
    ]
}

/// A CometBFT RPC on 127.0.0.1 (its port returned) answering `/status` at height 104 and the
/// final commits of 101 to 103, each with the validator's vote (CometBFT 0.38's JSON).
fn serve_signing_rpc() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("bound").port();
    let address = "2DD9F44FD9067555C322243C3C913BA7B51D2BE0";
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let body = match path.strip_prefix("/commit?height=") {
                Some(h) => format!(
                    r#"{{"jsonrpc":"2.0","id":-1,"result":{{"canonical":true,"signed_header":{{"header":{{"height":"{h}"}},"commit":{{"height":"{h}","round":0,"signatures":[{{"block_id_flag":2,"validator_address":"{address}","timestamp":"2023-05-17T14:12:53.605374524Z","signature":"5y0K"}}]}}}}}}}}"#
                ),
                None => format!(
                    r#"{{"jsonrpc":"2.0","id":-1,"result":{{"node_info":{{"network":"bench-1"}},"sync_info":{{"latest_block_height":"104","catching_up":false}},"validator_info":{{"address":"{address}","voting_power":"10"}}}}}}"#
                ),
            };
            let _ = write!(
                &stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Times `case`'s compile, deserialize and calls; `None` (said) when it is not built.
fn measure(
    host: &Host,
    call: &wasmvisor::plugin::Call,
    request: &Request,
    scratch: &std::path::Path,
    (name, language, world, origin, settings, n_calls): Case,
) -> Option<Row> {
    let bytes = match &origin {
        Origin::Bundled(b) => bundled(b).expect("bundled").1.to_vec(),
        Origin::File(path) => match std::fs::read(path) {
            Ok(b) => b,
            Err(_) => {
                println!("{name:<12} {language:<10} not built: run plugins/build-guests");
                return None;
            }
        },
    };
    let (mut compile, mut deserialize) = load_times(host, &bytes);
    let mut spec = PluginSpec::bundled(world, "cosmovisor");
    spec.name = name.to_string();
    spec.origin = origin;
    spec.settings = settings;
    let mut calls = call_times(host, call, request, scratch, world, &spec, n_calls);
    for v in [&mut compile, &mut deserialize, &mut calls] {
        v.sort();
    }
    Some(Row {
        name,
        language,
        wasm_kb: bytes.len() as f64 / 1024.0,
        compile_ms: us(percentile(&compile, 0.5)) / 1e3,
        deserialize_ms: us(percentile(&deserialize, 0.5)) / 1e3,
        call_p50_us: us(percentile(&calls, 0.5)),
        call_p99_us: us(percentile(&calls, 0.99)),
    })
}

/// How long compiling the component takes, and loading it from its compiled form.
fn load_times(host: &Host, bytes: &[u8]) -> (Vec<Duration>, Vec<Duration>) {
    let engine = host.engine();
    let big = bytes.len() > 4 << 20;
    let mut compile = Vec::new();
    let mut compiled = Vec::new();
    for _ in 0..if big { 2 } else { 5 } {
        let t = Instant::now();
        compiled = engine.precompile_component(bytes).expect("compiles");
        compile.push(t.elapsed());
    }
    let mut deserialize = Vec::new();
    for _ in 0..if big { 10 } else { 50 } {
        let t = Instant::now();
        // SAFETY: produced by this engine just above.
        let c = unsafe { Component::deserialize(engine, &compiled) }.expect("loads");
        deserialize.push(t.elapsed());
        drop(c);
    }
    (compile, deserialize)
}

/// How long each of `n_calls` fresh instantiate + calls of `spec` takes, as its world calls it.
fn call_times(
    host: &Host,
    call: &wasmvisor::plugin::Call,
    request: &Request,
    scratch: &std::path::Path,
    world: World,
    spec: &PluginSpec,
    n_calls: usize,
) -> Vec<Duration> {
    let mut calls = Vec::new();
    match world {
        World::Resolver => {
            let loaded: Resolver = host.load(spec).expect("loads");
            let previous = Decision::UseStaged;
            for _ in 0..n_calls {
                let t = Instant::now();
                host.resolve(&loaded, request, Some(&previous), call)
                    .expect("answers");
                calls.push(t.elapsed());
            }
        }
        World::Source => {
            let loaded: Source = host.load(spec).expect("loads");
            let artifact = Artifact {
                url: "mirror:not-http".into(),
                checksum: None,
                format: ArchiveFormat::Raw,
            };
            for i in 0..n_calls {
                let path = scratch.with_extension(format!("{i}"));
                let out = Download::open_path(&path, &[], 1 << 20, "bench").expect("scratch file");
                let t = Instant::now();
                let (_, r) = host.fetch(&loaded, &artifact, out, call);
                calls.push(t.elapsed());
                let _ = std::fs::remove_file(&path);
                r.expect("answers").expect_err("not an http URL");
            }
        }
        World::Health => {
            let loaded: HealthCheck = host.load(spec).expect("loads");
            let context = HealthContext {
                plan: request.plan.clone(),
                elapsed_ms: 0,
                attempt: 1,
            };
            for _ in 0..n_calls {
                let t = Instant::now();
                let h = host.check(&loaded, &context, call).expect("answers");
                calls.push(t.elapsed());
                if spec.name == "signing" {
                    assert!(matches!(h, Health::Healthy(_)), "{h:?}");
                } else {
                    assert!(matches!(h, Health::Pending(_)), "{h:?}");
                }
            }
        }
        World::Notifier => {
            use wasmvisor::plugin::notice::{Event, Notice};
            let loaded: wasmvisor::plugin::Notifier = host.load(spec).expect("loads");
            let notice = Notice {
                chain: "bench-1".into(),
                daemon: "simd".into(),
                hostname: String::new(),
                at_unix_ms: 0,
                event: Event::Stopping,
            };
            for _ in 0..n_calls {
                let t = Instant::now();
                let told = host.notify(&loaded, &notice, call);
                calls.push(t.elapsed());
                told.expect_err("nothing listens");
            }
        }
    }
    calls
}

/// How the languages compare, the JSON line, and what the compile cache saves.
fn summary(rows: &[Row]) {
    let p50 = |n: &str| rows.iter().find(|r| r.name == n).map(|r| r.call_p50_us);
    if let (Some(rust), Some(js)) = (p50("template"), p50("window")) {
        println!(
            "a JavaScript resolver call costs {:.1}x a Rust one ({js:.0} µs vs {rust:.0} µs)",
            js / rust
        );
    }
    if let (Some(rust), Some(py)) = (p50("cometbft"), p50("app-version")) {
        println!(
            "a Python health call costs {:.1}x a Rust one ({py:.0} µs vs {rust:.0} µs)",
            py / rust
        );
    }
    let json: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                r#"{{"plugin":"{}","language":"{}","wasm_kb":{:.0},"compile_ms":{:.2},"deserialize_ms":{:.4},"call_p50_us":{:.1},"call_p99_us":{:.1},"compile_over_deserialize":{:.0}}}"#,
                r.name,
                r.language,
                r.wasm_kb,
                r.compile_ms,
                r.deserialize_ms,
                r.call_p50_us,
                r.call_p99_us,
                r.compile_ms / r.deserialize_ms.max(1e-9)
            )
        })
        .collect();
    println!("JSON {{\"plugins\":[{}]}}", json.join(","));
    for r in rows {
        println!(
            "{}: the compile cache saves {:.0}x per start (compile {:.1} ms vs deserialize {:.3} ms)",
            r.name,
            r.compile_ms / r.deserialize_ms.max(1e-9),
            r.compile_ms,
            r.deserialize_ms
        );
    }
}
