//! The plan forms real chains publish, each fetched over HTTP from a loopback server (or read
//! from this host) with the bundled plugins and the default configuration: every checksum form
//! go-getter reads, checksum files, `file://`, `//subfolder`, `archive=false`, every archive
//! format, `info` as a URL; and what is refused, with why.
//!
//! The helpers here (a standalone node binary, `prepare-upgrade` of a plan, the archive
//! writers) serve every file of the folder.

mod archives;
mod checksums;
mod sources;

use std::io::Write;
use std::process::Output;

use serde_json::json;

use crate::harness::*;

const T: std::time::Duration = std::time::Duration::from_secs(30);

/// A node binary carrying its configuration with it (the simulator behind a wrapper script
/// that names an absolute `sim.json`), so it runs wherever it is installed, alone.
fn standalone(home: &Home, version: &str) -> Vec<u8> {
    let dir = home.path.join("release");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join(format!("{version}.json"));
    std::fs::write(
        &config,
        json!({"version": version, "ordinal": 2, "handles": version, "block_ms": 50}).to_string(),
    )
    .unwrap();
    format!(
        "#!/bin/sh\nexec '{SIM}' --sim-config '{}' \"$@\"\n",
        config.display()
    )
    .into_bytes()
}

fn home() -> Home {
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    home
}

/// `prepare-upgrade` of a plan v2 whose binaries map gives `url` for this platform.
fn prepare(home: &Home, url: &str) -> Output {
    let _ = std::fs::remove_dir_all(home.root().join("upgrades/v2"));
    let info = json!({"binaries": {platform(): url}}).to_string();
    prepare_info(home, &info)
}

fn prepare_info(home: &Home, info: &str) -> Output {
    let plan = home.path.join("plan.json");
    std::fs::write(
        &plan,
        json!({"name": "v2", "height": 3, "info": info}).to_string(),
    )
    .unwrap();
    home.output(&["prepare-upgrade", "--plan", plan.to_str().unwrap()])
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn installed(home: &Home) -> Vec<u8> {
    std::fs::read(home.root().join("upgrades/v2/bin/simd")).unwrap_or_default()
}

fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append_data(&mut header, name, *bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut w =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
    w.write_all(bytes).unwrap();
    w.finish().unwrap()
}

fn bz2(bytes: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zst(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    for (name, bytes) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}
