//! Cold start of a large node binary, without and with the preflight's warming: a program
//! carrying 150 MiB of data it reads at start (one byte per page, as a big Go node's runtime
//! reads its module data and pclntab), evicted from the page cache (`posix_fadvise(DONTNEED)`,
//! no root needed), then spawned. It stamps CLOCK_MONOTONIC as its first act and again when
//! it has touched everything ("ready"); this program stamps just before the spawn. Each round
//! measures both: evicted then spawned, and evicted, warmed (`preflight::warm`), then spawned.
//!
//! `cargo bench --bench coldstart` (WASMVISOR_BENCH_ROUNDS=N to change the 5 rounds). The
//! program is built with `cc` under the target directory, which must be on a real disk (on
//! tmpfs nothing is ever evicted, and both columns are the warm one).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
use nix::time::{ClockId, clock_gettime};
use wasmvisor::preflight::warm;

const MIB: usize = 150;

const NODE_C: &str = r#"
#include <stdio.h>
#include <time.h>
#define SIZE (150UL << 20)
/* Initialised, so it is in the file (.rodata), not a zero-filled .bss. */
static const volatile unsigned char blob[SIZE] = {1};
static long long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(void) {
    long long start = now();
    unsigned long sum = 0;
    for (unsigned long i = 0; i < SIZE; i += 4096) sum += blob[i];
    long long ready = now();
    printf("%lld %lld %lu\n", start, ready, sum);
    return 0;
}
"#;

fn main() {
    let rounds: usize = std::env::var("WASMVISOR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("coldstart");
    std::fs::create_dir_all(&dir).unwrap();
    let node = build(&dir);
    let size = std::fs::metadata(&node).unwrap().len();
    println!(
        "cold start of a {:.0} MiB binary over {rounds} rounds (evicted, then evicted + warmed)…",
        size as f64 / (1 << 20) as f64
    );
    let (mut cold, mut warmed) = (Vec::new(), Vec::new());
    let mut warm_took = Vec::new();
    for _ in 0..rounds {
        evict(&node);
        cold.push(spawn(&node));
        evict(&node);
        let w = warm(
            std::slice::from_ref(&node),
            &wasmvisor::cancel::Cancel::new(),
        )
        .unwrap();
        assert_eq!(w.bytes, size);
        warm_took.push(w.took);
        warmed.push(spawn(&node));
    }
    let first = |v: &[(Duration, Duration)]| median(v.iter().map(|r| r.0).collect());
    let ready = |v: &[(Duration, Duration)]| median(v.iter().map(|r| r.1).collect());
    println!("{:<34} {:>14} {:>14}", "median", "cold", "warmed");
    println!(
        "{:<34} {:>14.2?} {:>14.2?}",
        "spawn → first instruction",
        first(&cold),
        first(&warmed)
    );
    println!(
        "{:<34} {:>14.2?} {:>14.2?}",
        "spawn → ready (all data touched)",
        ready(&cold),
        ready(&warmed)
    );
    let w = median(warm_took);
    println!(
        "{:<34} {:>14.2?} ({:.0} MiB/s, before the upgrade, off its path)",
        "the warming itself",
        w,
        size as f64 / (1 << 20) as f64 / w.as_secs_f64()
    );
    println!(
        "ratio cold / warmed: first instruction {:.1}×, ready {:.1}×",
        first(&cold).as_secs_f64() / first(&warmed).as_secs_f64(),
        ready(&cold).as_secs_f64() / ready(&warmed).as_secs_f64()
    );
}

fn build(dir: &Path) -> PathBuf {
    let node = dir.join(format!("node-{MIB}mib"));
    if !node.exists() {
        std::fs::write(dir.join("node.c"), NODE_C).unwrap();
        let out = Command::new("cc")
            .current_dir(dir)
            .args(["-O1", "-o"])
            .arg(&node)
            .arg("node.c")
            .output()
            .expect("cc");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Written pages are dirty until written back, and only clean ones can be evicted.
    File::open(&node).unwrap().sync_all().unwrap();
    node
}

/// Drops the file's pages from the page cache (its clean ones: all of them, once synced).
fn evict(path: &Path) {
    let file = File::open(path).unwrap();
    posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED).unwrap();
}

/// Spawns the node; returns (spawn → first instruction, spawn → ready).
fn spawn(node: &Path) -> (Duration, Duration) {
    let before = clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap();
    let before = before.tv_sec() as i128 * 1_000_000_000 + before.tv_nsec() as i128;
    let out = Command::new(node).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace().map(|p| p.parse::<i128>().unwrap());
    let (start, ready) = (parts.next().unwrap(), parts.next().unwrap());
    let ns = |d: i128| Duration::from_nanos(u64::try_from(d).unwrap());
    (ns(start - before), ns(ready - before))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
