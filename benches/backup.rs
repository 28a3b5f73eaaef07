//! Snapshot backups against a full copy of the data folder: `cargo bench --bench backup`.
//!
//! Generates a data folder shaped like a node's — goleveldb stores (`application.db`,
//! `blockstore.db`, `state.db`, `tx_index.db`) of 2–64 MiB table files, each with its mutable
//! write-ahead log, MANIFEST, CURRENT and LOG; CometBFT's consensus WAL; the signing state — of
//! `WASMVISOR_BENCH_DATA_MIB` MiB (1100 by default, at least 1 GiB), beside the benchmark's
//! target folder. Then, `WASMVISOR_BENCH_ROUNDS` times (5), it measures:
//!
//! - the snapshot backup wasmvisor takes before an upgrade (links the tables, copies and syncs
//!   the rest, writes its manifest);
//! - a full copy of the folder, file by file as Cosmovisor's backup does (`copy_file_range`
//!   where the kernel offers it), timed until it is on disk: the baseline, in the same run. (The
//!   snapshot is timed until it is on disk too. A real data folder is far larger than the page
//!   cache, so a real copy always pays the disk; here the copy is also timed into the page cache
//!   alone, as a lower bound.)
//! - the restore of the snapshot (checked against its manifest, captured, exchanged).
//!
//! It prints the medians and the snapshot's cost as a share of the full copy (target: ≤ 1%).

use std::path::Path;
use std::time::{Duration, Instant};

use wasmvisor::bench::{backup, restore};
use wasmvisor::cancel::Cancel;

const MIB: u64 = 1 << 20;
/// About what the mutable files below take.
const MUTABLE: u64 = 10 * MIB;

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes `len` bytes of `chunk` repeated into `path`.
fn write_file(path: &Path, len: u64, chunk: &[u8]) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// What the generated folder holds.
struct Shape {
    files: u64,
    bytes: u64,
    tables: u64,
    mutable_bytes: u64,
}

fn generate(data: &Path, target: u64) -> Shape {
    let mut x: u64 = 0x2545f4914f6cdd1d;
    let chunk: Vec<u8> = (0..MIB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut shape = Shape {
        files: 0,
        bytes: 0,
        tables: 0,
        mutable_bytes: 0,
    };
    let add = |path: &Path, len: u64, mutable: bool, shape: &mut Shape| {
        write_file(path, len, &chunk);
        shape.files += 1;
        shape.bytes += len;
        if mutable {
            shape.mutable_bytes += len;
        } else {
            shape.tables += 1;
        }
    };
    // (store, its share of the tables, its write-ahead log's size): the application's store
    // dominates a node's data, as on a real one.
    let stores = [
        ("application.db", 70, 4 * MIB),
        ("blockstore.db", 20, MIB),
        ("state.db", 6, MIB),
        ("tx_index.db", 4, MIB / 2),
    ];
    // Table files of 2 to 64 MiB, as leveldb's compaction levels leave them.
    let sizes = [2, 64, 4, 32, 8, 16, 2, 64, 24, 48];
    // What the mutable files (written next) leave of the target.
    let tables = target.saturating_sub(MUTABLE);
    for (store, share, _) in stores {
        let dir = data.join(store);
        std::fs::create_dir_all(&dir).unwrap();
        let mut budget = tables * share / 100;
        let mut n = 0usize;
        while budget > 0 {
            let len = (sizes[n % sizes.len()] * MIB).min(budget.max(2 * MIB));
            add(
                &dir.join(format!("{:06}.ldb", 10 + n)),
                len,
                false,
                &mut shape,
            );
            budget = budget.saturating_sub(len);
            n += 1;
        }
    }
    // Then each store's mutable files: its MANIFEST is newer than every table it references.
    for (store, _, log) in stores {
        let dir = data.join(store);
        add(&dir.join("CURRENT"), 16, true, &mut shape);
        add(&dir.join("LOG"), 96 << 10, true, &mut shape);
        add(&dir.join("MANIFEST-000002"), 512 << 10, true, &mut shape);
        add(&dir.join("000003.log"), log, true, &mut shape);
    }
    std::fs::create_dir_all(data.join("cs.wal")).unwrap();
    add(&data.join("cs.wal/wal"), MIB, true, &mut shape);
    add(
        &data.join("priv_validator_state.json"),
        140,
        true,
        &mut shape,
    );
    shape
}

/// A full copy of `from` into `to`, file by file, as Cosmovisor's backup does; with `durable`,
/// each file is synced to disk (and each folder once filled).
fn full_copy(from: &Path, to: &Path, durable: bool) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            full_copy(&entry.path(), &target, durable);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            if durable {
                std::fs::File::open(&target).unwrap().sync_all().unwrap();
            }
        }
    }
    if durable {
        std::fs::File::open(to).unwrap().sync_all().unwrap();
    }
}

/// Times a full copy, then removes it (and lets the removal reach the disk, untimed).
fn timed_copy(data: &Path, to: &Path, durable: bool) -> Duration {
    let t = Instant::now();
    full_copy(data, to, durable);
    let took = t.elapsed();
    std::fs::remove_dir_all(to).unwrap();
    nix_sync();
    took
}

/// `sync(2)`: nothing dirty left from one measurement to slow the next.
fn nix_sync() {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe extern "C" {
        fn sync();
    }
    unsafe { sync() };
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let target = env_or("WASMVISOR_BENCH_DATA_MIB", 1100).max(1024) * MIB;
    let rounds = env_or("WASMVISOR_BENCH_ROUNDS", 5).max(1);
    let scratch = tempfile::Builder::new()
        .prefix("wasmvisor-bench-backup")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let data = scratch.path().join("data");
    let started = Instant::now();
    let shape = generate(&data, target);
    println!(
        "data: {} files, {:.0} MiB ({} table files of 2-64 MiB, {:.1} MiB in mutable files), generated in {:.1} s, in {}",
        shape.files,
        shape.bytes as f64 / MIB as f64,
        shape.tables,
        shape.mutable_bytes as f64 / MIB as f64,
        started.elapsed().as_secs_f64(),
        scratch.path().display()
    );

    nix_sync();
    let cancel = Cancel::new();
    let (mut snap, mut copy, mut cached, mut back) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut totals = None;
    for round in 0..rounds {
        let snapshot = scratch.path().join(format!("data-backup-{round}"));
        let t = Instant::now();
        let taken = backup(&data, &snapshot, "bench", 1, &cancel).expect("snapshot backup");
        snap.push(t.elapsed());
        totals = Some(taken.totals);

        let copied = scratch.path().join("full-copy");
        copy.push(timed_copy(&data, &copied, true));
        cached.push(timed_copy(&data, &copied, false));

        let t = Instant::now();
        restore(&snapshot, &data, &cancel).expect("restore");
        back.push(t.elapsed());
        std::fs::remove_dir_all(&snapshot).unwrap();
        let i = round as usize;
        println!(
            "round {}: snapshot {:.1} ms, full copy {:.1} ms on disk ({:.1} ms into the page cache), restore {:.1} ms",
            round + 1,
            ms(snap[i]),
            ms(copy[i]),
            ms(cached[i]),
            ms(back[i])
        );
    }
    let totals = totals.expect("one round");
    let (snap, copy, cached, back) = (median(snap), median(copy), median(cached), median(back));
    println!(
        "snapshot: {} files; {:.1} MiB reflinked, {:.1} MiB hard-linked, {:.1} MiB copied",
        totals.files,
        totals.reflinked as f64 / MIB as f64,
        totals.linked as f64 / MIB as f64,
        totals.copied as f64 / MIB as f64
    );
    println!("median of {rounds}:");
    println!("  snapshot backup   {:>10.1} ms", ms(snap));
    println!(
        "  full copy         {:>10.1} ms   (Cosmovisor's backup, on disk)",
        ms(copy)
    );
    println!(
        "  full copy, cached {:>10.1} ms   (into the page cache only: a lower bound)",
        ms(cached)
    );
    println!("  restore           {:>10.1} ms", ms(back));
    let pct = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64() * 100.0;
    let share = pct(snap, copy);
    println!(
        "  snapshot / full copy = {share:.2}% (target <= 1%: {}); against the cached copy {:.2}%",
        if share <= 1.0 { "met" } else { "NOT met" },
        pct(snap, cached)
    );
    println!("  restore / full copy  = {:.2}%", pct(back, copy));
}
