//! Downloads that stall or grow: cancelled by a stop request, retried after the idle timeout,
//! bounded by the source timeout and by the disk, decompression bombs; and the backup's space
//! margin.

use std::io::Read as _;
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::serve::Server;
use crate::harness::*;

use super::sha256;

/// A home whose plan downloads `bytes` from `server` at `path`.
fn download_plan(home: &mut Home, server: &Server, path: &str, bytes: &[u8]) {
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    server.put(path, bytes.to_vec());
    let url = format!("{}?checksum=sha256:{}", server.url(path), sha256(bytes));
    let info = json!({"binaries": {"any": url}});
    home.chain_with_info("v2", 3, &info.to_string());
}

/// A payload of `len` bytes that gzip cannot shrink.

#[test]
fn a_stop_request_cancels_a_stalled_download_at_once() {
    let server = Server::start();
    let mut home = Home::new();
    download_plan(&mut home, &server, "/simd", &noise(64 * 1024));
    server.stall("/simd", 1024, usize::MAX);
    let run = home.run(&[]);
    // The download is under way and stalled: its first kilobyte is written.
    let partials = home.root().join(".wasmvisor-downloads/v2");
    home.wait_for("the download to stall", Duration::from_secs(30), |_| {
        std::fs::read_dir(&partials).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.len() >= 1024))
        })
    });
    let asked = Instant::now();
    let out = run.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the stop took {:?}: {}",
        asked.elapsed(),
        out.stderr
    );
    assert_eq!(out.code(), 143, "{}", out.stderr);
    assert_eq!(home.current(), "genesis");
    assert_eq!(home.events_of("start").len(), 1, "nothing relaunched");
    assert!(
        home.journal()["active"].is_object(),
        "resumed at next start"
    );
}

#[test]
fn a_stalled_body_is_retried_after_the_idle_timeout_and_resumed() {
    let server = Server::start();
    let mut home = Home::new();
    let archive = noise(200 * 1024);
    download_plan(&mut home, &server, "/simd", &archive);
    server.stall("/simd", 4096, 1);
    std::fs::write(
        home.root().join("plugins.toml"),
        "[[source]]\npath = \"bundled:http\"\nidle-timeout = \"1s\"\n",
    )
    .unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(60));
    // The payload is not a node binary: what matters here is that it arrived whole.
    let log = server.log();
    assert!(log.len() >= 2, "{log:?}\n{}", done.stderr);
    assert!(
        log[1].contains("range=Some(4096)"),
        "resumed at the stall: {log:?}\n{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("sent nothing for too long"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_source_timeout_bounds_every_retry() {
    let server = Server::start();
    let mut home = Home::new();
    download_plan(&mut home, &server, "/simd", &noise(64 * 1024));
    server.stall("/simd", 1024, usize::MAX);
    std::fs::write(
        home.root().join("plugins.toml"),
        "[[source]]\npath = \"bundled:http\"\ntimeout = \"3s\"\nidle-timeout = \"1s\"\n",
    )
    .unwrap();
    let started = Instant::now();
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "5 tries of a 3 s timeout took {:?}",
        started.elapsed()
    );
    assert!(done.stderr.contains("timeout of 3s"), "{}", done.stderr);
}

/// A small tmpfs, unmounted when dropped; `None` where the kernel refuses to mount one.
/// A home whose cosmovisor tree is on a 48 MiB tmpfs.
fn home_on_small_disk() -> Option<(Home, Tmpfs)> {
    let home = Home::new();
    let disk = home.path.join("disk");
    let tmpfs = Tmpfs::mount(&disk, "size=48m")?;
    let root = home.root();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&root)
        .arg(disk.join("cosmovisor"))
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::remove_dir_all(&root).unwrap();
    symlink(disk.join("cosmovisor"), &root).unwrap();
    Some((home, tmpfs))
}

#[test]
fn an_oversized_download_is_bounded_by_the_disk_and_leaves_nothing() {
    let Some((mut home, _disk)) = home_on_small_disk() else {
        return;
    };
    let server = Server::start();
    download_plan(&mut home, &server, "/simd", &noise(64 << 20));
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("larger than"), "{}", done.stderr);
    let partials: Vec<_> = std::fs::read_dir(home.root().join(".wasmvisor-downloads/v2"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(partials.is_empty(), "{partials:?}");
    assert_eq!(home.current(), "genesis");
}

#[test]
fn a_decompression_bomb_is_refused_before_it_fills_the_disk() {
    let Some((mut home, _disk)) = home_on_small_disk() else {
        return;
    };
    // 256 MiB of zeros, a few hundred KiB compressed.
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::best(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(256 << 20);
    header.set_mode(0o755);
    header.set_cksum();
    builder
        .append_data(&mut header, "bin/simd", std::io::repeat(0).take(256 << 20))
        .unwrap();
    let bomb = builder.into_inner().unwrap().finish().unwrap();
    let server = Server::start();
    download_plan(&mut home, &server, "/simd.tar.gz", &bomb);
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("decompression bomb"),
        "{}",
        done.stderr
    );
    assert!(!home.root().join("upgrades/v2/bin/simd").exists());
    assert!(!home.root().join("upgrades/.v2.unpack").exists());
    let free = nix::sys::statvfs::statvfs(&home.root()).unwrap();
    assert!(
        free.blocks_available() as u64 * free.fragment_size() as u64 > 40 << 20,
        "the disk was left full"
    );
}

#[test]
fn the_backup_space_refusal_names_its_margin() {
    let Some((mut home, _disk)) = home_on_small_disk() else {
        return;
    };
    // data/ holds 46 MiB on another disk: all of it is copied, onto the 48 MiB one, and the
    // margin kept free does not fit beside it.
    let data_on_disk = home.root().join("../data-big");
    std::fs::create_dir_all(&data_on_disk).unwrap();
    home.set("UNSAFE_SKIP_BACKUP", "false")
        .set("DAEMON_DATA_BACKUP_DIR", data_on_disk.to_str().unwrap());
    std::fs::write(home.data().join("big"), noise(46 << 20)).unwrap();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("plus a margin of"), "{}", done.stderr);
}
