//! The simulated node as its users see it from outside: installed as the node binary of a tree
//! (one simulator plays every version, configured by the `sim.json` beside its wrapper), and the
//! records it keeps: in the node's data folder, `sim-state.json` (which version executed which
//! blocks); in its home, `sim-events.jsonl` (everything it did, with CLOCK_MONOTONIC stamps).

use std::path::Path;

use serde_json::Value;

/// Installs the simulator `sim` as the node binary `<root>/<folder>/bin/simd`: a wrapper script
/// that runs it with the `sim.json` beside it (`config`).
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

/// Everything the simulator did, in order: one JSON object per event (`<home>/sim-events.jsonl`).
pub fn events(home: &Path) -> Vec<Value> {
    std::fs::read_to_string(home.join("sim-events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
