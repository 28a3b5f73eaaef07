//! `init <binary>`: creates the tree, installs the genesis binary, points `current` at genesis
//! and writes config.toml (asking before replacing one).

use std::io::{IsTerminal, Write};
use std::path::Path;

use super::upgrades::{check_source, same_content};
use crate::config::Config;
use crate::tree::{Current, GENESIS_DIR, Layout, UPGRADES_DIR, swap};

const CONFIG_FILE: &str = "config.toml";

fn open(cfg: &Config) -> Result<Layout, String> {
    Layout::open(cfg).map_err(|e| e.to_string())
}

/// `init <path>`: creates the tree, installs the genesis binary, points `current` at genesis and
/// writes config.toml (asking before replacing one).
pub fn init(cfg: &Config, binary: &Path) -> Result<(), String> {
    check_source(binary)?;
    let root = cfg.root();
    for dir in [root.join(GENESIS_DIR).join("bin"), root.join(UPGRADES_DIR)] {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let layout = open(cfg)?;
    let genesis_bin = layout.binary_path(&Current::Genesis);
    match same_content(binary, &genesis_bin)? {
        Some(true) => {
            tracing::info!(binary = %genesis_bin.display(), "genesis binary already in place");
        }
        Some(false) => {
            return Err(format!(
                "{} already holds a different binary; remove it first if you really mean to replace the genesis binary",
                genesis_bin.display()
            ));
        }
        None => {
            layout
                .install_binary(Path::new(GENESIS_DIR), binary)
                .map_err(|e| e.to_string())?;
            tracing::info!(binary = %genesis_bin.display(), "installed the genesis binary");
        }
    }
    if layout.root.symlink_metadata(swap::CURRENT_LINK).is_err() {
        swap::point_current(&layout.root, Path::new(GENESIS_DIR))
            .map_err(|e| format!("{}: {e}", root.join("current").display()))?;
        tracing::info!("pointed `current` at genesis");
    } else {
        tracing::info!(
            current = layout
                .current()
                .map(|c| c.label().to_string())
                .unwrap_or_default(),
            "`current` already exists; left as it is"
        );
    }
    let config_path = root.join(CONFIG_FILE);
    if config_path.exists() && !confirm(&format!("{} exists. Overwrite it?", config_path.display()))
    {
        tracing::info!(file = %config_path.display(), "kept the existing configuration file");
    } else {
        crate::fs::write_atomic(&layout.root, CONFIG_FILE, cfg.to_toml().as_bytes())
            .map_err(|e| format!("{}: {e}", config_path.display()))?;
        tracing::info!(file = %config_path.display(), "wrote the configuration file");
    }
    Ok(())
}

/// Asks a yes/no question on the terminal; without a terminal the answer is no.
fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    let _ = write!(std::io::stderr(), "{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes" | "YES")
}
