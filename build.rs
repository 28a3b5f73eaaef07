//! Builds what wasmvisor is built with, so that `cargo build` alone gives a working wasmvisor:
//!
//! - the plugins in `plugins/` as WebAssembly components (`wasm32-wasip2`, release): the bundled
//!   default plugins are embedded in the binary, and the tests find the others in
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
    // The bundled plugins are embedded compressed (deflate, best): about 95 KB instead of 250 KB
    // of the static binary's 10 MiB budget; each is inflated once, on first use.
    for name in ["wasmvisor_plugin_cosmovisor", "wasmvisor_plugin_http"] {
        let wasm = built.join(format!("{name}.wasm"));
        let bytes = std::fs::read(&wasm)
            .unwrap_or_else(|e| panic!("{} was not built: {e}", wasm.display()));
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, &bytes).expect("deflate in memory");
        let packed = z.finish().expect("deflate in memory");
        std::fs::write(out.join(format!("{name}.wasm.deflate")), packed)
            .expect("write into OUT_DIR");
    }

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
