//! `wasmvisor demo`: a self-contained run of two governance upgrades (genesis → v2 → v3) on the
//! simulated node, using this very binary as the supervisor. Nothing outside a temporary folder
//! is touched.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
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

/// The plan heights of the demo's two upgrades.
const V2_HEIGHT: u64 = 4;
const V3_HEIGHT: u64 = 8;
/// The height the last binary must reach before the demo stops the supervisor.
const TARGET: u64 = V3_HEIGHT + 2;

pub fn run(keep: bool, block_ms: u64) -> Result<(), String> {
    let sim = sim_binary()?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let home = std::env::temp_dir().join(format!("wasmvisor-demo-{}", std::process::id()));
    make_home(&home, &sim, block_ms)?;
    introduce(&home, block_ms)?;
    let (reached, status) = supervise(&exe, &home, block_ms)?;
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
    if !reached || !exact(&blocks) {
        return Err(format!(
            "the demo did not complete as expected (supervisor {status})"
        ));
    }
    output::line("\ndemo complete: each upgrade happened at exactly its plan height.")?;
    Ok(())
}

/// A home with the simulator as genesis, v2 and v3, `current` at genesis, and the chain's two
/// plans.
fn make_home(home: &Path, sim: &Path, block_ms: u64) -> Result<(), String> {
    let root = home.join("cosmovisor");
    std::fs::create_dir_all(home.join("data")).map_err(|e| format!("{}: {e}", home.display()))?;
    install(
        &root,
        "genesis",
        sim,
        &json!({"version": "genesis", "ordinal": 1, "block_ms": block_ms, "term_flush_ms": 200}),
    )?;
    install(
        &root,
        "upgrades/v2",
        sim,
        &json!({"version": "v2", "ordinal": 2, "handles": "v2", "block_ms": block_ms, "halt": "exit", "term_flush_ms": 200}),
    )?;
    install(
        &root,
        "upgrades/v3",
        sim,
        &json!({"version": "v3", "ordinal": 3, "handles": "v3", "block_ms": block_ms, "term_flush_ms": 200}),
    )?;
    std::os::unix::fs::symlink("genesis", root.join("current")).map_err(|e| e.to_string())?;
    let chain = json!({"plans": [
        {"name": "v2", "height": V2_HEIGHT, "info": "demo upgrade to v2"},
        {"name": "v3", "height": V3_HEIGHT, "info": "demo upgrade to v3"},
    ]});
    std::fs::write(home.join("data/sim-chain.json"), chain.to_string()).map_err(|e| e.to_string())
}

fn introduce(home: &Path, block_ms: u64) -> Result<(), String> {
    output::line("== wasmvisor demo ==")?;
    output::line(format!("home: {}", home.display()))?;
    output::line(format!(
        "a simulated node (one block every {block_ms} ms) will halt for governance upgrade v2 at height {V2_HEIGHT}"
    ))?;
    output::line(format!(
        "and v3 at height {V3_HEIGHT}; wasmvisor stops it, backs up data/, switches `current` and relaunches it.\n"
    ))
}

/// Runs `exe` as the supervisor of `home` until v3 reached [`TARGET`] (or a deadline passed, or
/// the supervisor ended), then stops it. Returns whether v3 got there, and how the supervisor
/// exited.
fn supervise(exe: &Path, home: &Path, block_ms: u64) -> Result<(bool, ExitStatus), String> {
    let mut child = Command::new(exe)
        .args(["run", "start", "--home"])
        .arg(home)
        .env("DAEMON_HOME", home)
        .env("DAEMON_NAME", "simd")
        .env("DAEMON_SHUTDOWN_GRACE", "5s")
        .spawn()
        .map_err(|e| format!("cannot start the supervisor: {e}"))?;
    let deadline = Instant::now() + Duration::from_millis(block_ms * 40) + Duration::from_secs(30);
    let reached = loop {
        if history(home)
            .iter()
            .any(|(v, _, to)| v == "v3" && *to >= TARGET)
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
    Ok((reached, status))
}

/// Whether each binary executed exactly the blocks up to its successor's plan height (v3 at
/// least up to [`TARGET`]).
fn exact(blocks: &[(String, u64, u64)]) -> bool {
    let expected = [
        ("genesis", 1, V2_HEIGHT - 1),
        ("v2", V2_HEIGHT, V3_HEIGHT - 1),
        ("v3", V3_HEIGHT, TARGET),
    ];
    blocks.len() == 3
        && blocks
            .iter()
            .zip(expected)
            .all(|((v, f, t), (ev, ef, et))| {
                v == ev && *f == ef && *t >= et && (ev == "v3" || *t == et)
            })
}
