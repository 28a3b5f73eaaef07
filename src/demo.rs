//! `wasmvisor demo`: a self-contained run of two governance upgrades (genesis → v2 → v3) on the
//! simulated node, using this very binary as the supervisor. Nothing outside a temporary folder
//! is touched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SIM_NAME: &str = "wasmvisor-node-sim";

fn sim_binary() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find wasmvisor's own path: {e}"))?;
    let sim = exe.with_file_name(SIM_NAME);
    if sim.is_file() {
        Ok(sim)
    } else {
        Err(format!(
            "{} is missing; build it with `cargo build --release` (it builds every binary of the workspace)",
            sim.display()
        ))
    }
}

/// Installs the simulator as the node binary `<root>/<folder>/bin/simd`: a wrapper script that
/// runs `sim` with the `sim.json` beside it (`config`), so one simulator plays every version.
pub fn install(root: &Path, folder: &str, sim: &Path, config: &Value) -> Result<(), String> {
    let bin = root.join(folder).join("bin");
    let io = |e: std::io::Error| format!("{}: {e}", bin.display());
    std::fs::create_dir_all(&bin).map_err(io)?;
    std::fs::write(bin.join("sim.json"), config.to_string()).map_err(io)?;
    let script = format!(
        "#!/bin/sh\nexec '{}' --sim-config \"$(dirname \"$0\")/sim.json\" \"$@\"\n",
        sim.display()
    );
    std::fs::write(bin.join("simd"), script).map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("simd"), std::fs::Permissions::from_mode(0o755)).map_err(io)
}

/// Which simulator version committed which blocks: `(version, first height, last height)`, read
/// from `<home>/data/sim-state.json` (empty while the node has committed nothing).
pub fn history(home: &Path) -> Vec<(String, u64, u64)> {
    let state: Value = std::fs::read(home.join("data/sim-state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    state["history"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["version"].as_str().unwrap_or("").to_string(),
                        s["from"].as_u64().unwrap_or(0),
                        s["to"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn run(keep: bool, block_ms: u64) -> Result<(), String> {
    let sim = sim_binary()?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let home = std::env::temp_dir().join(format!("wasmvisor-demo-{}", std::process::id()));
    let root = home.join("cosmovisor");
    std::fs::create_dir_all(home.join("data")).map_err(|e| format!("{}: {e}", home.display()))?;
    let (v2_height, v3_height) = (4, 8);
    install(
        &root,
        "genesis",
        &sim,
        &json!({"version": "genesis", "ordinal": 1, "block_ms": block_ms, "term_flush_ms": 200}),
    )?;
    install(
        &root,
        "upgrades/v2",
        &sim,
        &json!({"version": "v2", "ordinal": 2, "handles": "v2", "block_ms": block_ms, "halt": "exit", "term_flush_ms": 200}),
    )?;
    install(
        &root,
        "upgrades/v3",
        &sim,
        &json!({"version": "v3", "ordinal": 3, "handles": "v3", "block_ms": block_ms, "term_flush_ms": 200}),
    )?;
    std::os::unix::fs::symlink("genesis", root.join("current")).map_err(|e| e.to_string())?;
    let chain = json!({"plans": [
        {"name": "v2", "height": v2_height, "info": "demo upgrade to v2"},
        {"name": "v3", "height": v3_height, "info": "demo upgrade to v3"},
    ]});
    std::fs::write(home.join("data/sim-chain.json"), chain.to_string())
        .map_err(|e| e.to_string())?;

    println!("== wasmvisor demo ==");
    println!("home: {}", home.display());
    println!(
        "a simulated node (one block every {block_ms} ms) will halt for governance upgrade v2 at height {v2_height}"
    );
    println!(
        "and v3 at height {v3_height}; wasmvisor stops it, backs up data/, switches `current` and relaunches it.\n"
    );

    let mut child = Command::new(&exe)
        .args(["run", "start", "--home"])
        .arg(&home)
        .env("DAEMON_HOME", &home)
        .env("DAEMON_NAME", "simd")
        .env("DAEMON_SHUTDOWN_GRACE", "5s")
        .spawn()
        .map_err(|e| format!("cannot start the supervisor: {e}"))?;
    let deadline = Instant::now() + Duration::from_millis(block_ms * 40) + Duration::from_secs(30);
    let target = v3_height + 2;
    let reached = loop {
        if history(&home)
            .iter()
            .any(|(v, _, to)| v == "v3" && *to >= target)
        {
            break true;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = child.wait().map_err(|e| e.to_string())?;

    let blocks = history(&home);
    println!("\n== which binary executed which blocks ==");
    for (version, from, to) in &blocks {
        println!("  {version:<8} blocks {from:>3} ..= {to:<3}");
    }
    println!("\n== wasmvisor status ==");
    let _ = Command::new(&exe)
        .arg("status")
        .env("DAEMON_HOME", &home)
        .env("DAEMON_NAME", "simd")
        .env("COSMOVISOR_DISABLE_LOGS", "true")
        .status();
    if keep {
        println!("\nkept {}", home.display());
    } else {
        let _ = std::fs::remove_dir_all(&home);
    }
    let expected = [
        ("genesis", 1, v2_height - 1),
        ("v2", v2_height, v3_height - 1),
        ("v3", v3_height, target),
    ];
    let exact = blocks.len() == 3
        && blocks
            .iter()
            .zip(expected)
            .all(|((v, f, t), (ev, ef, et))| {
                v == ev && *f == ef && *t >= et && (ev == "v3" || *t == et)
            });
    if !reached || !exact {
        return Err(format!(
            "the demo did not complete as expected (supervisor {status})"
        ));
    }
    println!("\ndemo complete: each upgrade happened at exactly its plan height.");
    Ok(())
}
