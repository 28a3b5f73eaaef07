//! Micro benchmarks (criterion) of the pieces on an upgrade's path: a plugin call on a fresh
//! instance for each bundled plugin, the atomic swap of `current`, parsing upgrade-info.json,
//! and the journal writes (a phase entry, and a durable begin).
//!
//! `cargo bench --bench micro`

use std::hint::black_box;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use criterion::{Criterion, criterion_group, criterion_main};
use wasmvisor::bench::{Download, Journal, Phase, Plan, parse_plan, point_current};
use wasmvisor::plugin::{
    ArchiveFormat, Artifact, Host, HostConfig, PluginSpec, Request, Resolver, Source, Staged,
    World, platform,
};

fn plugins(c: &mut Criterion) {
    let host = Host::new(HostConfig::default()).expect("engine");
    let resolver: Resolver = host
        .load(&PluginSpec::bundled(World::Resolver, "cosmovisor"))
        .expect("loads");
    let source: Source = host
        .load(&PluginSpec::bundled(World::Source, "http"))
        .expect("loads");
    let request = Request {
        plan: wasmvisor::plugin::GuestPlan {
            name: "v2".into(),
            height: 100,
            info: String::new(),
        },
        platform: platform(),
        daemon_name: "simd".into(),
        staged: Some(Staged {
            dir: "v2".into(),
            has_binary: true,
            sha256: None,
        }),
        downloads_allowed: false,
        checksum_required: false,
    };
    let call = wasmvisor::plugin::Call::new(&wasmvisor::cancel::Cancel::new());
    c.bench_function("plugin/cosmovisor resolve (fresh instance)", |b| {
        b.iter(|| {
            host.resolve(&resolver, black_box(&request), None, &call)
                .unwrap()
        })
    });
    let artifact = Artifact {
        url: "mirror:x".into(),
        checksum: None,
        format: ArchiveFormat::Raw,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    c.bench_function("plugin/http fetch, unsupported URL (fresh instance)", |b| {
        b.iter_batched(
            || Download::open_path(&path, &[], 1 << 20, "bench").unwrap(),
            |out| host.fetch(&source, black_box(&artifact), out, &call),
            criterion::BatchSize::SmallInput,
        )
    });
}

fn open_dir(path: &Path) -> Dir {
    Dir::open_ambient_dir(path, ambient_authority()).unwrap()
}

fn swap(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("upgrades/a")).unwrap();
    std::fs::create_dir_all(dir.path().join("upgrades/b")).unwrap();
    let root = open_dir(dir.path());
    let mut flip = false;
    c.bench_function("swap/point current (temp link, rename, fsync)", |b| {
        b.iter(|| {
            flip = !flip;
            let target = if flip { "upgrades/a" } else { "upgrades/b" };
            point_current(&root, Path::new(target)).unwrap()
        })
    });
}

fn parsing(c: &mut Criterion) {
    let info = br#"{"name":"v2","time":"0001-01-01T00:00:00Z","height":"1234567","info":"{\"binaries\":{\"linux/amd64\":\"https://example.com/gaiad?checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000\"}}"}"#;
    c.bench_function("plan/parse upgrade-info.json", |b| {
        b.iter(|| parse_plan(black_box(info)))
    });
    c.bench_function("plan/parse half-written upgrade-info.json", |b| {
        b.iter(|| parse_plan(black_box(&info[..info.len() / 2])))
    });
}

fn journal(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(open_dir(dir.path()));
    let plan = Plan {
        name: "v2".into(),
        height: 100,
        info: String::new(),
    };
    c.bench_function("journal/begin (durable: fsync file and folder)", |b| {
        b.iter(|| journal.begin(&plan, "v2", "genesis").unwrap())
    });
    c.bench_function("journal/enter phase (atomic, no fsync)", |b| {
        b.iter(|| journal.enter(black_box(Phase::Swap)).unwrap())
    });
}

criterion_group!(benches, plugins, swap, parsing, journal);
criterion_main!(benches);
