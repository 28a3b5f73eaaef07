//! `add-upgrade` and `add-batch-upgrade`: staging binaries into upgrade folders and scheduling
//! manual upgrades in the batch file.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::tree::{Current, Layout, Plan};

fn open(cfg: &Config) -> Result<Layout, String> {
    Layout::open(cfg).map_err(|e| e.to_string())
}

/// Checks that `binary` is a regular file wasmvisor can copy, naming what it is otherwise.
pub(super) fn check_source(binary: &Path) -> Result<(), String> {
    crate::fs::open_regular_path(binary).map(drop).map_err(|e| {
        format!(
            "{}: {e}; give the path of the node binary",
            binary.display()
        )
    })
}

/// Whether the file at `installed` has the same bytes as `source` (`None`: nothing installed).
pub(super) fn same_content(source: &Path, installed: &Path) -> Result<Option<bool>, String> {
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
    let digest = |p: &Path| crate::fs::sha256_path(p).map_err(|e| format!("{}: {e}", p.display()));
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
    let mut batch = layout.read_batch().map_err(|e| e.to_string())?;
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
        schedule(&layout, vec![Plan::manual(name, height)], force)?;
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
            let text = crate::fs::read_regular_path(f, 1 << 20)
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
        plans.push(Plan::manual(name, height));
    }
    schedule(&layout, plans, false)
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
