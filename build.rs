//! Builds what wasmvisor is built with, so that `cargo build` alone gives a working wasmvisor:
//!
//! - the plugins in `plugins/` as WebAssembly components (`wasm32-wasip2`, release): the bundled
//!   plugins are embedded in the binary (one xz stream), and the tests find the others in
//!   `WASMVISOR_PLUGINS_DIR`. They are their own workspace, built by a nested cargo into
//!   `<target>/wasm-plugins`; the `wasm32-wasip2` target must be installed (`rustup target add
//!   wasm32-wasip2`: the README's first command does).
//! - the node simulator (`tests/sim`, release) that `demo`, the tests and the benchmarks
//!   supervise, into `<target>/sim`: `WASMVISOR_SIM` is its path.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-changed=wit");
    println!("cargo:rerun-if-changed=src/cli/scaffold");
    println!("cargo:rerun-if-changed=plugins/python/lib");
    println!("cargo:rerun-if-changed=tests/sim/src");
    println!("cargo:rerun-if-changed=tests/sim/Cargo.toml");
    for entry in [
        "Cargo.toml",
        "Cargo.lock",
        "support",
        "cosmovisor",
        "http",
        "chain-registry",
        "allowlist",
        "minisign",
        "local-mirror",
        "cometbft",
        "signing",
        "webhook",
        "template",
        "fixtures",
    ] {
        println!("cargo:rerun-if-changed=plugins/{entry}");
    }

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // <target>/<profile>/build/<package>/out → <target>/wasm-plugins (beside the host's builds).
    let target_dir = out
        .ancestors()
        .nth(4)
        .map_or_else(|| out.join("wasm-plugins"), |t| t.join("wasm-plugins"));

    ensure_target();
    let mut cmd = nested_cargo();
    cmd.args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    run(
        cmd,
        &format!("building the plugins in {} for {TARGET}", plugins.display()),
    );
    let built = target_dir.join(TARGET).join("release");
    println!("cargo:rustc-env=WASMVISOR_PLUGINS_DIR={}", built.display());
    bundle(&built, &out);
    scaffold(&root, &out);

    // The simulator, for the host, into its own target folder (the outer build holds this one).
    let sim_dir = target_dir.with_file_name("sim");
    let mut cmd = nested_cargo();
    cmd.args([
        "build",
        "--release",
        "--bin",
        "wasmvisor-node-sim",
        "--manifest-path",
    ])
    .arg(root.join("tests/sim/Cargo.toml"))
    .arg("--target-dir")
    .arg(&sim_dir);
    if env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    run(cmd, "building the node simulator in tests/sim");
    let sim = sim_dir.join("release/wasmvisor-node-sim");
    assert!(sim.is_file(), "{} was not built", sim.display());
    println!("cargo:rustc-env=WASMVISOR_SIM={}", sim.display());
}

/// The plugins compiled into wasmvisor (`bundled:<name>`), by crate.
const BUNDLED: [(&str, &str); 3] = [
    ("cosmovisor", "wasmvisor_plugin_cosmovisor"),
    ("http", "wasmvisor_plugin_http"),
    ("signing", "wasmvisor_plugin_signing"),
];

/// Embeds the bundled plugins as one xz stream (`bundled.xz`) with their places in it
/// (`bundled.rs`). One stream, because they share most of their code (the standard library,
/// serde_json, the bindings' runtime), which one dictionary stores once: about 60 KB for the
/// first two where each deflated on its own took 96 KB of the static binary's 10 MiB. The
/// decoder is the one linked for .tar.xz downloads.
fn bundle(built: &Path, out: &Path) {
    let entries = BUNDLED
        .iter()
        .map(|(name, krate)| {
            let wasm = built.join(format!("{krate}.wasm"));
            let bytes = std::fs::read(&wasm)
                .unwrap_or_else(|e| panic!("{} was not built: {e}", wasm.display()));
            (name.to_string(), bytes)
        })
        .collect();
    pack(out, "bundled", entries);
}

/// What `plugin new` writes, by path in the repository: its templates, the contract it copies,
/// the Python wasi:http helper. Packed as the bundled plugins are: the JavaScript lockfile alone
/// is 115 KB of text, and `plugin new` is the only command that reads them.
const SCAFFOLD: [&str; 19] = [
    "src/cli/scaffold/README.md",
    "src/cli/scaffold/plugins-resolver.toml",
    "src/cli/scaffold/plugins-health.toml",
    "src/cli/scaffold/rust-Cargo.toml",
    "src/cli/scaffold/rust-Cargo.lock",
    "src/cli/scaffold/rust-resolver.rs",
    "src/cli/scaffold/rust-health.rs",
    "src/cli/scaffold/js-package.json",
    "src/cli/scaffold/js-package-lock.json",
    "src/cli/scaffold/js-resolver.js",
    "src/cli/scaffold/js-health.js",
    "src/cli/scaffold/py-requirements.txt",
    "src/cli/scaffold/py-resolver.py",
    "src/cli/scaffold/py-health.py",
    "plugins/python/lib/wasi_http.py",
    "wit/plugin-0.2/plugin.wit",
    "wit/plugin-0.2/deps/http/http.wit",
    "wit/plugin-0.2/deps/io/io.wit",
    "wit/plugin-0.2/deps/clocks/clocks.wit",
];

fn scaffold(root: &Path, out: &Path) {
    let entries = SCAFFOLD
        .iter()
        .map(|rel| {
            let path = root.join(rel);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (rel.to_string(), bytes)
        })
        .collect();
    pack(out, "scaffold", entries);
}

/// Writes `entries` as one xz stream, `<name>.xz`, and where each is in what it decodes to,
/// `<name>.rs` (`&[(name, start, end)]`). The dictionary is 1 MiB, not the preset's 64, so
/// decoding never holds more.
fn pack(out: &Path, name: &str, entries: Vec<(String, Vec<u8>)>) {
    let mut all = Vec::new();
    let mut index = String::from("&[\n");
    for (key, bytes) in entries {
        index.push_str(&format!(
            "    ({key:?}, {}, {}),\n",
            all.len(),
            all.len() + bytes.len()
        ));
        all.extend_from_slice(&bytes);
    }
    index.push(']');
    let mut options = lzma_rust2::XzOptions::with_preset(9);
    options.lzma_options.dict_size = 1 << 20;
    let mut xz = lzma_rust2::XzWriter::new(Vec::new(), options).expect("xz in memory");
    std::io::Write::write_all(&mut xz, &all).expect("xz in memory");
    let packed = xz.finish().expect("xz in memory");
    std::fs::write(out.join(format!("{name}.xz")), packed).expect("write into OUT_DIR");
    std::fs::write(out.join(format!("{name}.rs")), index).expect("write into OUT_DIR");
}

/// A cargo for a nested build: none of the outer build's settings (target, profile, flags)
/// applies to it.
fn nested_cargo() -> Command {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_NET_OFFLINE")
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

fn run(mut cmd: Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot run cargo: {e}"));
    if !status.success() {
        panic!("{what} failed ({status}); the errors are above");
    }
}

/// Checks that the wasm32-wasip2 standard library is installed.
fn ensure_target() {
    let sysroot = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot
        .as_deref()
        .is_some_and(|s| Path::new(s).join("lib/rustlib").join(TARGET).is_dir());
    // Installing toolchains is the machine's business (the README's first command, .ci/run),
    // not a build's.
    assert!(
        installed,
        "the {TARGET} target is missing: the plugins are built for it. Install it with `rustup target add {TARGET}`, then build again"
    );
}
