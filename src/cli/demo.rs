//! `wasmvisor demo`: a self-contained run of two governance upgrades (genesis → v2 → v3) on the
//! simulated node, using this very binary as the supervisor. Nothing outside a temporary folder
//! is touched.

use std::path::PathBuf;

use std::process::Command;
use std::time::{Duration, Instant};
use wasmvisor_node_sim::{history, install};

use serde_json::json;

use crate::output;

const SIM_NAME: &str = "wasmvisor-node-sim";

/// The simulator: beside this binary if it was installed there, else where the build put it.
fn sim_binary() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find wasmvisor's own path: {e}"))?;
    let beside = exe.with_file_name(SIM_NAME);
    let built = PathBuf::from(env!("WASMVISOR_SIM"));
    [beside, built]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "the node simulator {SIM_NAME} is missing beside {} and at {}; build wasmvisor with `cargo build --release` (its build script builds the simulator)",
                exe.display(),
                env!("WASMVISOR_SIM")
            )
        })
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

    output::line("== wasmvisor demo ==")?;
    output::line(format!("home: {}", home.display()))?;
    output::line(format!(
        "a simulated node (one block every {block_ms} ms) will halt for governance upgrade v2 at height {v2_height}"
    ))?;
    output::line(format!(
        "and v3 at height {v3_height}; wasmvisor stops it, backs up data/, switches `current` and relaunches it.\n"
    ))?;

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
    output::line("\n== which binary executed which blocks ==")?;
    for (version, from, to) in &blocks {
        output::line(format!("  {version:<8} blocks {from:>3} ..= {to:<3}"))?;
    }
    output::line("\n== wasmvisor status ==")?;
    let _ = Command::new(&exe)
        .arg("status")
        .env("DAEMON_HOME", &home)
        .env("DAEMON_NAME", "simd")
        .env("COSMOVISOR_DISABLE_LOGS", "true")
        .status();
    if keep {
        output::line(format!("\nkept {}", home.display()))?;
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
    output::line("\ndemo complete: each upgrade happened at exactly its plan height.")?;
    Ok(())
}
