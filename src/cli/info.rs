//! `config`, `version` and `show-upgrade-info`: what wasmvisor is, reads and sees.

use super::Output;
use crate::config::Config;
use crate::tree::plans::{self, BATCH_FILE, MAX_PLAN_FILE, UPGRADE_INFO_FILE};
use crate::tree::{GENESIS_DIR, Layout, Read, UPGRADES_DIR, swap};
use crate::upgrade::journal;

fn open(cfg: &Config) -> Result<Layout, String> {
    Layout::open(cfg).map_err(|e| e.to_string())
}

pub fn print_config(cfg: &Config) -> Result<(), String> {
    let mut out = String::from("Configurations:\n");
    for (key, value) in cfg.values() {
        out.push_str(&format!("{key}: {value}\n"));
    }
    let root = cfg.root();
    out.push_str("\nDerived:\n");
    out.push_str(&format!(
        "Config file: {}\n",
        cfg.file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| "(none, environment only)".into())
    ));
    out.push_str(&format!("Root dir: {}\n", root.display()));
    out.push_str(&format!(
        "Genesis bin: {}\n",
        root.join(GENESIS_DIR).join("bin").join(&cfg.name).display()
    ));
    out.push_str(&format!(
        "Upgrades dir: {}\n",
        root.join(UPGRADES_DIR).display()
    ));
    out.push_str(&format!(
        "Current link: {}\n",
        root.join(swap::CURRENT_LINK).display()
    ));
    out.push_str(&format!(
        "Monitored file: {}\n",
        cfg.home.join("data").join(UPGRADE_INFO_FILE).display()
    ));
    out.push_str(&format!(
        "Batch file: {}\n",
        cfg.home.join("data").join(BATCH_FILE).display()
    ));
    out.push_str(&format!(
        "Journal: {}\n",
        root.join(journal::JOURNAL_FILE).display()
    ));
    out.push_str(&format!(
        "Data backup dir: {}\n",
        if cfg.unsafe_skip_backup {
            "(backups disabled)".into()
        } else {
            cfg.data_backup_dir.display().to_string()
        }
    ));
    crate::output::text(out)
}

pub fn print_version(output: Output, app: Option<&str>) -> Result<(), String> {
    let version = env!("CARGO_PKG_VERSION");
    match output {
        Output::Json => {
            let mut v = serde_json::json!({"wasmvisor_version": version, "cosmovisor_compat": crate::COSMOVISOR_COMPAT});
            if let Some(app) = app {
                v["app_version"] = app.into();
            }
            crate::output::line(v)
        }
        Output::Text => {
            crate::output::line(format!(
                "wasmvisor version: {version} (Cosmovisor {} compatible)",
                crate::COSMOVISOR_COMPAT
            ))?;
            match app {
                Some(app) => crate::output::line(format!(
                    "app version: {}",
                    crate::output::escape_except(app, &['\n'])
                )),
                None => Ok(()),
            }
        }
    }
}

/// `version`: wasmvisor's version and `<current binary> version`.
pub fn version(cfg: &Config, output: Output) -> Result<(), String> {
    let layout = open(cfg)?;
    let current = layout.current().map_err(|e| e.to_string())?;
    layout.check_binary(&current).map_err(|e| e.to_string())?;
    let bin = layout.binary_path(&current);
    let out = std::process::Command::new(&bin)
        .arg("version")
        .output()
        .map_err(|e| format!("cannot run `{} version`: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} version` failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text.is_empty() {
        text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    print_version(output, Some(&text))
}

pub fn show_upgrade_info(cfg: &Config) -> Result<(), String> {
    let path = cfg.home.join("data").join(UPGRADE_INFO_FILE);
    let layout = open(cfg)?;
    match crate::fs::read_regular(
        &layout.data,
        UPGRADE_INFO_FILE,
        MAX_PLAN_FILE,
        crate::fs::Follow::Yes,
    ) {
        Ok(None) => crate::output::line(format!("No upgrade info found at {}", path.display())),
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            crate::output::line(crate::output::escape_except(text.trim_end(), &['\n', '\t']))?;
            match plans::parse(&bytes) {
                Read::Valid(_) | Read::Absent => Ok(()),
                Read::NotYet => Err(format!(
                    "{} is empty or incomplete (the node may be writing it)",
                    path.display()
                )),
                Read::Invalid(reason) => Err(format!(
                    "{} is not a valid upgrade plan: {reason}",
                    path.display()
                )),
            }
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}
