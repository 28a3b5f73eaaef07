//! The small commands: init, config, version, add-upgrade, add-batch-upgrade, show-upgrade-info.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::Output;
use crate::config::Config;
use crate::layout::{Current, GENESIS_DIR, Layout, UPGRADES_DIR};
use crate::plan::{self, Plan, Read};
use crate::swap;

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
        crate::fsutil::write_atomic(&layout.root, CONFIG_FILE, cfg.to_toml().as_bytes())
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
        cfg.upgrade_info_path().display()
    ));
    out.push_str(&format!(
        "Batch file: {}\n",
        cfg.home.join("data").join(plan::BATCH_FILE).display()
    ));
    out.push_str(&format!(
        "Journal: {}\n",
        root.join(crate::journal::JOURNAL_FILE).display()
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

/// Checks that `binary` is a regular file wasmvisor can copy, naming what it is otherwise.
fn check_source(binary: &Path) -> Result<(), String> {
    crate::fsutil::open_regular_path(binary)
        .map(drop)
        .map_err(|e| {
            format!(
                "{}: {e}; give the path of the node binary",
                binary.display()
            )
        })
}

/// Whether the file at `installed` has the same bytes as `source` (`None`: nothing installed).
fn same_content(source: &Path, installed: &Path) -> Result<Option<bool>, String> {
    let installed_len = match std::fs::symlink_metadata(installed) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", installed.display())),
    };
    let source_len = std::fs::metadata(source)
        .map_err(|e| format!("{}: {e}", source.display()))?
        .len();
    if source_len != installed_len {
        return Ok(Some(false));
    }
    let digest =
        |p: &Path| crate::fsutil::sha256_path(p).map_err(|e| format!("{}: {e}", p.display()));
    Ok(Some(digest(source)? == digest(installed)?))
}

/// Copies a binary into `upgrades/<name>/bin`. An existing different binary needs `force`.
fn stage(layout: &Layout, name: &str, binary: &Path, force: bool) -> Result<String, String> {
    let dir_name = layout.dir_name(name).map_err(|e| e.to_string())?;
    check_source(binary)?;
    let target = Current::Upgrade(dir_name.clone());
    let target_path = layout.binary_path(&target);
    match same_content(binary, &target_path)? {
        Some(true) => {
            tracing::info!(binary = %target_path.display(), "binary already staged");
            return Ok(dir_name);
        }
        Some(false) if !force => {
            return Err(format!(
                "{} already holds a different binary; use --force to replace it",
                target_path.display()
            ));
        }
        _ => {}
    }
    layout
        .install_binary(&target.rel_dir(), binary)
        .map_err(|e| e.to_string())?;
    tracing::info!(upgrade = name, binary = %target_path.display(), "staged the upgrade binary");
    Ok(dir_name)
}

/// Adds manual plans to the batch file. A plan replaces one of the same name; two plans at one
/// height are refused.
fn schedule(layout: &Layout, new: Vec<Plan>, force: bool) -> Result<(), String> {
    let mut batch = layout.read_batch()?;
    let current = layout.current().map_err(|e| e.to_string())?;
    let applied_height = layout.applied_plan(&current).map_or(0, |p| p.height);
    for plan in new {
        if plan.height <= applied_height {
            return Err(format!(
                "upgrade {:?} at height {} is at or below the height of the applied upgrade ({applied_height}); choose a later height",
                plan.name, plan.height
            ));
        }
        let dir = layout.dir_name(&plan.name).map_err(|e| e.to_string())?;
        if let Some(i) = batch
            .iter()
            .position(|p| layout.dir_name(&p.name).ok().as_deref() == Some(dir.as_str()))
        {
            if !force && batch[i].height != plan.height {
                return Err(format!(
                    "upgrade {:?} is already scheduled at height {}; use --force to move it",
                    plan.name, batch[i].height
                ));
            }
            batch.remove(i);
        }
        if let Some(other) = batch.iter().find(|p| p.height == plan.height) {
            return Err(format!(
                "height {} already has upgrade {:?}; one height takes one upgrade",
                plan.height, other.name
            ));
        }
        tracing::info!(upgrade = %plan.name, height = plan.height, "scheduled a manual upgrade: the node will halt at this height");
        batch.push(plan);
    }
    batch.sort_by_key(|p| p.height);
    layout
        .write_batch(&batch)
        .map_err(|e| format!("{}: {e}", layout.batch_path().display()))
}

pub fn add_upgrade(
    cfg: &Config,
    name: &str,
    binary: &Path,
    force: bool,
    height: Option<u64>,
) -> Result<(), String> {
    let layout = open(cfg)?;
    if height == Some(0) {
        return Err("--upgrade-height must be greater than zero".into());
    }
    stage(&layout, name, binary, force)?;
    if let Some(height) = height {
        schedule(
            &layout,
            vec![Plan {
                name: name.to_string(),
                height,
                info: String::new(),
            }],
            force,
        )?;
    }
    Ok(())
}

/// Parses `name:path:height` items (list) or `name,path,height` lines (file).
fn parse_batch_items(
    text: &str,
    sep: char,
    origin: &str,
) -> Result<Vec<(String, PathBuf, u64)>, String> {
    let mut items = Vec::new();
    for (i, raw) in text.split(if sep == ',' { '\n' } else { ',' }).enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split(sep).map(str::trim).collect();
        let [name, path, height] = parts.as_slice() else {
            return Err(format!(
                "{origin}: item {} ({line:?}) must be name{sep}path{sep}height",
                i + 1
            ));
        };
        let height: u64 = height.parse().ok().filter(|h| *h > 0).ok_or_else(|| {
            format!(
                "{origin}: item {} ({line:?}): height {height:?} must be a whole number above zero",
                i + 1
            )
        })?;
        if name.is_empty() || path.is_empty() {
            return Err(format!(
                "{origin}: item {} ({line:?}) must be name{sep}path{sep}height",
                i + 1
            ));
        }
        items.push((name.to_string(), PathBuf::from(path), height));
    }
    if items.is_empty() {
        return Err(format!("{origin}: no upgrades given"));
    }
    Ok(items)
}

pub fn add_batch_upgrade(
    cfg: &Config,
    file: Option<&Path>,
    list: Option<&str>,
) -> Result<(), String> {
    let items = match (file, list) {
        (Some(f), _) => {
            let text = crate::fsutil::read_regular_path(f, 1 << 20)
                .map_err(|e| e.to_string())
                .and_then(|b| String::from_utf8(b).map_err(|_| "it is not UTF-8 text".into()))
                .map_err(|e| format!("{}: {e}", f.display()))?;
            parse_batch_items(&text, ',', &f.display().to_string())?
        }
        (None, Some(l)) => parse_batch_items(l, ':', "--upgrade-list")?,
        (None, None) => return Err("give --upgrade-file or --upgrade-list".into()),
    };
    let layout = open(cfg)?;
    // Check every binary before staging any, so a typo stages nothing.
    for (_, path, _) in &items {
        check_source(path).map_err(|e| format!("{e}; nothing was staged"))?;
    }
    let mut plans = Vec::new();
    for (name, path, height) in items {
        stage(&layout, &name, &path, false)?;
        plans.push(Plan {
            name,
            height,
            info: String::new(),
        });
    }
    schedule(&layout, plans, false)
}

pub fn show_upgrade_info(cfg: &Config) -> Result<(), String> {
    let path = cfg.upgrade_info_path();
    let layout = open(cfg)?;
    match crate::fsutil::read_regular(
        &layout.data,
        plan::UPGRADE_INFO_FILE,
        crate::layout::MAX_PLAN_FILE,
        crate::fsutil::Follow::Yes,
    ) {
        Ok(None) => crate::output::line(format!("No upgrade info found at {}", path.display())),
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            crate::output::line(crate::output::escape_except(text.trim_end(), &['\n', '\t']))?;
            match plan::parse(&bytes) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_items_parse_in_both_forms() {
        let list = parse_batch_items("v2:/b/v2:10, v3:/b/v3:20", ':', "list").unwrap();
        assert_eq!(list[1], ("v3".to_string(), PathBuf::from("/b/v3"), 20));
        let csv = parse_batch_items("# name,path,height\nv2,/b/v2,10\n\nv3,/b/v3,20\n", ',', "f")
            .unwrap();
        assert_eq!(csv.len(), 2);
        assert!(
            parse_batch_items("v2:/b:0", ':', "l")
                .unwrap_err()
                .contains("above zero")
        );
        assert!(
            parse_batch_items("v2:/b", ':', "l")
                .unwrap_err()
                .contains("name:path:height")
        );
        assert!(parse_batch_items("", ':', "l").is_err());
    }
}
