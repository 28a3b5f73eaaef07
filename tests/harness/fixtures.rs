//! What the tests build on disk: plugins and guests to load, archives and plans with binaries to
//! download, incompressible bytes, a tmpfs, and a node's data folder with its checksums.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Home, SIM};

// Plugins, archives and plans with binaries, for the download tests.

pub const PLUGINS: &str = env!("WASMVISOR_PLUGINS_DIR");

pub fn wasm(crate_name: &str) -> PathBuf {
    Path::new(PLUGINS).join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// A plugin written in JavaScript or Python (`plugins/build-guests` builds them beside the Rust
/// ones). Missing, the test fails and says how to build them.
pub fn guest(name: &str) -> PathBuf {
    let path = Path::new(PLUGINS)
        .join("../../guest")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run plugins/build-guests (the README's test command does)",
        path.display()
    );
    path
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The platform key of Cosmovisor's binaries map for this machine.
pub fn platform() -> String {
    let p = wasmvisor::plugin::platform();
    format!("{}/{}", p.os, p.arch)
}

/// A tar.gz holding `bin/simd` (the simulator's wrapper) and its `bin/sim.json`.
pub fn sim_archive(home: &Home, config: Value) -> Vec<u8> {
    sim_archive_with_payload(home, config, 0)
}

/// The same with `lib/payload`, `payload` incompressible bytes beside the binary.
pub fn sim_archive_with_payload(home: &Home, config: Value, payload: usize) -> Vec<u8> {
    let pkg = home.path.join("pkg");
    let name = config["version"].as_str().unwrap().to_string();
    let mut config = config;
    if config.get("block_ms").is_none() {
        config["block_ms"] = json!(50);
    }
    wasmvisor_node_sim::install(&pkg, &name, Path::new(SIM), &config).unwrap();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for file in ["bin/simd", "bin/sim.json"] {
        builder
            .append_path_with_name(pkg.join(&name).join(file), file)
            .unwrap();
    }
    if payload > 0 {
        let bytes = noise(payload);
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "lib/payload", &bytes[..])
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A governance plan at `height` whose info maps this platform to `url`.
pub fn plan_with_binary(home: &Home, name: &str, height: u64, url: &str) {
    let info = json!({"binaries": {platform(): url}}).to_string();
    std::fs::write(
        home.data().join("sim-chain.json"),
        json!({"plans": [{"name": name, "height": height, "info": info}]}).to_string(),
    )
    .unwrap();
}

/// `len` incompressible bytes (xorshift), the same for every call.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545f4914f6cdd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A tmpfs mounted for a test (unmounted when dropped), where the machine allows mounting one.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs with `options` (`size=48m`, `nr_inodes=64`, …) at `at`; `None`, with the
    /// reason printed, where mounting is not allowed.
    pub fn mount(at: &Path, options: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success()) {
            Some(Tmpfs(at.to_path_buf()))
        } else {
            eprintln!("skipped: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)");
            None
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

// Data folders: a node's shape, and their content as checksums.

/// Lays out data/ as a node's: goleveldb stores with table files (`*.ldb`), their logs and
/// MANIFEST, a RocksDB-style `*.sst`, CometBFT's consensus WAL.
pub fn plant_databases(home: &Home) {
    let data = home.data();
    for (db, tables) in [("application.db", 3usize), ("blockstore.db", 2)] {
        let dir = data.join(db);
        std::fs::create_dir_all(&dir).unwrap();
        for t in 0..tables {
            let bytes = noise(256 << 10 | t);
            std::fs::write(dir.join(format!("{:06}.ldb", 5 + t)), bytes).unwrap();
        }
        std::fs::write(dir.join("CURRENT"), "MANIFEST-000004\n").unwrap();
        std::fs::write(dir.join("MANIFEST-000004"), noise(4096)).unwrap();
        std::fs::write(
            dir.join("LOG"),
            "=============== Nov 25 (UTC) ===============\n",
        )
        .unwrap();
        std::fs::write(dir.join("000004.log"), noise(64 << 10)).unwrap();
    }
    std::fs::create_dir_all(data.join("state.db")).unwrap();
    std::fs::write(data.join("state.db/000009.sst"), noise(128 << 10)).unwrap();
    std::fs::create_dir_all(data.join("cs.wal")).unwrap();
    std::fs::write(data.join("cs.wal/wal"), noise(32 << 10)).unwrap();
}

/// Every entry under `dir` (relative path → its sha256, `dir`, or `-> target`), without the
/// names in `skip`.
pub fn tree(dir: &Path, skip: &[&str]) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, skip: &[&str], out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            if skip.contains(&rel.as_str()) {
                continue;
            }
            let ft = entry.file_type().unwrap();
            if ft.is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&path).unwrap().display()),
                );
            } else if ft.is_dir() {
                out.insert(rel, "dir".into());
                walk(base, &path, skip, out);
            } else {
                out.insert(rel, sha256(&std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}
