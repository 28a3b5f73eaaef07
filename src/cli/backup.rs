//! `backup list` and `backup restore NAME`: the snapshot backups in `DAEMON_DATA_BACKUP_DIR`.

use serde_json::json;

use crate::cancel::Cancel;
use crate::config::Config;
use crate::node::record;
use crate::output;
use crate::tree::backup::{self, PREFIX};
use crate::tree::{Layout, lock};
use crate::upgrade::journal;

pub fn list(cfg: &Config, as_json: bool) -> Result<(), String> {
    // As every command opening the home: a data folder an interrupted restore left aside is put
    // back (or, beside a data/ created since, shown) before anything is listed.
    let data = cfg.home.join("data");
    if let Err(e) = backup::recover_and_warn(&data) {
        tracing::warn!(
            "cannot put back the data folder an interrupted restore moved aside beside {}: {e}",
            data.display()
        );
    }
    let dir = &cfg.data_backup_dir;
    let (complete, incomplete) =
        backup::list(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if as_json {
        return output::line(json!({
            "dir": dir,
            "backups": complete,
            "incomplete": incomplete,
        }));
    }
    if complete.is_empty() {
        output::line(format!("no backups in {}", dir.display()))?;
    } else {
        output::line(format!(
            "{:<48} {:<16} {:>10} {:>10} {:>10}  age",
            "name", "upgrade", "height", "size MiB", "copied MiB"
        ))?;
    }
    let now = journal::unix_ms();
    for b in &complete {
        let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
        let age = std::time::Duration::from_secs(now.saturating_sub(b.created_unix_ms) / 1000);
        output::line(format!(
            "{:<48} {:<16} {:>10} {:>10.1} {:>10.1}  {}",
            b.name,
            output::escape_controls(&b.upgrade),
            b.height,
            mib(b.totals.bytes),
            mib(b.totals.copied),
            crate::duration::format(age)
        ))?;
    }
    if !incomplete.is_empty() {
        output::line(format!(
            "not backups (no complete manifest): {}",
            incomplete.join(", ")
        ))?;
    }
    Ok(())
}

/// Restores `data/` from the backup `name`, holding the home's lock so that no supervisor can
/// start meanwhile (and refusing while one runs).
pub fn restore(cfg: &Config, name: &str) -> Result<(), String> {
    if !name.starts_with(PREFIX) || name.contains('/') || name.contains("..") {
        return Err(format!(
            "{name:?} is not the name of a backup (`wasmvisor backup list` shows them: {PREFIX}…)"
        ));
    }
    let layout = Layout::open(cfg).map_err(|e| e.to_string())?;
    let _lock = lock::acquire(&cfg.home, &layout.root, &layout.root_path).map_err(|e| match e {
        lock::LockError::Held { .. } => {
            format!("{e}; a backup is restored only while no supervisor runs on the home")
        }
        other => other.to_string(),
    })?;
    if let record::Leftover::Running(node) = record::leftover(&layout.root) {
        return Err(format!(
            "the node a killed supervisor left behind (pid {}, recorded in {}) still runs on this data; stop it (or start and stop wasmvisor, which stops it first) before restoring",
            node.pid,
            record::NODE_FILE
        ));
    }
    let path = cfg.data_backup_dir.join(name);
    let data = cfg.home.join("data");
    let root = layout
        .root
        .try_clone()
        .map_err(|e| format!("{}: {e}", layout.root_path.display()))?;
    let (mut journal, _) = journal::Journal::open(root);
    journal.forget_seen().map_err(|e| {
        format!(
            "cannot forget the node height journaled in {} before replacing the data it was read from: {e}",
            layout.root_path.display()
        )
    })?;
    let cancel = Cancel::new();
    crate::node::signals::cancel_on_stop(cancel.clone());
    let restored = backup::restore(&path, &data, &cancel).map_err(|e| e.to_string())?;
    output::line(format!(
        "restored {} from {} ({} files, {:.1} MiB){}",
        data.display(),
        path.display(),
        restored.totals.files,
        restored.totals.bytes as f64 / (1 << 20) as f64,
        if restored.kept_signing_state {
            "; kept the newer priv_validator_state.json, so the validator never signs a height twice"
        } else {
            ""
        }
    ))
}
