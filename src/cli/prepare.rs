//! `prepare-upgrade`: stages the pending plan's binary ahead of the halt, with the same resolvers
//! and sources an upgrade uses, so the upgrade itself has nothing to fetch.

use std::path::Path;

use crate::cancel::Cancel;
use crate::config::Config;
use crate::supervisor::decide::Files;
use crate::tree::{Layout, Plan};
use crate::upgrade::plugins::{configured, load};

/// `prepare-upgrade`: stages the binary of the pending plan ahead of the halt, with the same
/// resolvers and sources the upgrade uses. The plan is `--plan FILE`, else
/// `data/upgrade-info.json` if the current binary has not applied it, else the next manual plan.
pub fn prepare_upgrade(cfg: &Config, plan_file: Option<&Path>) -> Result<(), String> {
    let layout = Layout::open(cfg).map_err(|e| e.to_string())?;
    let plan = match plan_file {
        Some(p) => super::plugin::read_plan(cfg, Some(p))?,
        None => pending_plan(&layout)?,
    };
    let plugins = configured(cfg, None)?;
    let set = load(cfg, &plugins, Cancel::new())?;
    let done = crate::upgrade::prepare(&set, cfg, &plan)
        .map_err(|e| format!("upgrade {:?}: {e}", plan.name))?;
    crate::output::line(format!(
        "upgrade {:?} (height {}): {done}",
        plan.name, plan.height
    ))
}

fn pending_plan(layout: &Layout) -> Result<Plan, String> {
    let files = Files::read(layout).map_err(|e| e.to_string())?;
    let snapshot = files.snapshot(&[], None, layout.names);
    if let Some((plan, None)) = snapshot.governance() {
        return Ok(plan.clone());
    }
    if let Some(plan) = snapshot.next_manual() {
        return Ok(plan.clone());
    }
    Err("no pending upgrade: data/upgrade-info.json is absent or already applied and no manual upgrade is scheduled; give one with --plan FILE".into())
}
