//! The safety net: snapshot backups, the rollback of a failed upgrade (never retried with the
//! same binary), crash restarts, and faults during all of it.

mod backups;
mod relaunch;
mod rollback;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(60);

const MANIFEST: &str = "wasmvisor-backup.json";

const SIGNING_STATE: &str = "priv_validator_state.json";

/// The complete backups in the home (those with a manifest), oldest first by name.
fn backups(home: &Home) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(&home.path)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("data-backup-")
        })
        .collect();
    found.sort();
    found
}

fn signed_height(dir: &Path) -> u64 {
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join(SIGNING_STATE)).unwrap()).unwrap();
    state["height"].as_str().unwrap().parse().unwrap()
}

/// A home upgrading genesis → v2 at height 3 with backups on and failures rolled back; v2's
/// simulator gets `v2` as its extra configuration.
fn rolling_home(v2: Value) -> Home {
    let mut home = Home::new();
    home.set("UNSAFE_SKIP_BACKUP", "false")
        .set("WASMVISOR_ON_FAILED_UPGRADE", "rollback");
    plant_databases(&home);
    home.upgrade("v2", 2, v2);
    home.chain(&[("v2", 3)]);
    home
}

/// A rollback home on a filesystem without RENAME_EXCHANGE whose restore was killed between its
/// two renames (the old data aside, the restored data not yet in place); the kill hook unset.
fn killed_between_the_restores_renames() -> Home {
    let mut home = rolling_home(json!({"exit_after_height": 4, "exit_code": 2}));
    home.set("WASMVISOR_TEST_NO_EXCHANGE", "1")
        .set("WASMVISOR_TEST_KILL_AT", "restore:aside");
    let killed = home.run(&[]).finish(T);
    assert_eq!(killed.status.code(), None, "{}", killed.stderr);
    home.unset("WASMVISOR_TEST_KILL_AT");
    home
}

/// Checks the state a rollback leaves: genesis in `current`, data/ equal to the one backup
/// (the signing state aside), the chain's upgrade-info.json in place, the failure journaled.
fn assert_rolled_back(home: &Home, what: &str) {
    assert_eq!(home.current(), "genesis", "{what}");
    let taken = backups(home);
    assert_eq!(taken.len(), 1, "{what}: {taken:?}");
    assert_eq!(
        tree(&home.data(), &[SIGNING_STATE]),
        tree(&taken[0], &[MANIFEST, SIGNING_STATE]),
        "{what}: data/ is the snapshot"
    );
    assert_eq!(home.history(), [("genesis".into(), 1, 2)], "{what}");
    let info: Value =
        serde_json::from_slice(&std::fs::read(home.data().join("upgrade-info.json")).unwrap())
            .unwrap();
    assert_eq!(
        (info["name"].as_str(), info["height"].as_u64()),
        (Some("v2"), Some(3))
    );
    let journal = home.journal();
    assert!(journal["rollback"].is_null(), "{what}: {journal}");
    let failed = &journal["failed"][0];
    assert_eq!(failed["plan"]["name"], "v2", "{what}: {journal}");
    assert_eq!(
        failed["sha256"].as_str().unwrap(),
        sha256(&std::fs::read(home.root().join("upgrades/v2/bin/simd")).unwrap()),
        "{what}"
    );
    assert_eq!(
        failed["restored"].as_str().map(PathBuf::from),
        Some(taken[0].clone()),
        "{what}"
    );
    assert!(
        std::fs::read_dir(&home.path)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(".data.")),
        "{what}: no restore leftovers"
    );
}
