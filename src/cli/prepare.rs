//! `prepare-upgrade`: stages the binary of the chain's next upgrade ahead of the halt, with the
//! same resolvers and sources an upgrade uses, so the upgrade itself has nothing to fetch.

use std::path::Path;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::chain::plan::{Answer, current_plan};
use crate::config::Config;
use crate::plugin::Compile;
use crate::supervisor::decide::Files;
use crate::tree::{Layout, Plan};
use crate::upgrade::plugins::{configured, host_config, load};

/// How long the node has to answer the plan query, per address.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// `prepare-upgrade`: stages the binary of an upgrade ahead of its halt. The plan is `--plan
/// FILE`; else the chain's current plan, asked of the node as Cosmovisor asks it (gRPC at
/// `DAEMON_GRPC_ADDRESS`, or `abci_query` at `WASMVISOR_RPC_ADDRESS`); else — no plan on the
/// chain, or a node that does not answer — the plan pending here (`data/upgrade-info.json` not
/// yet applied, or the next manual upgrade). Nothing to stage is no error, as with Cosmovisor.
pub fn prepare_upgrade(cfg: &Config, plan_file: Option<&Path>) -> Result<(), String> {
    let layout = Layout::open(cfg).map_err(|e| e.to_string())?;
    let plan = match plan_file {
        Some(p) => super::plugin::read_plan(cfg, Some(p))?,
        None => match chain_or_pending(cfg, &layout)? {
            Some(plan) => plan,
            None => return Ok(()),
        },
    };
    let plugins = configured(cfg, None).map_err(|e| e.to_string())?;
    let set =
        load(host_config(cfg), &plugins, Cancel::new(), Compile::Now).map_err(|e| e.to_string())?;
    let done = crate::upgrade::prepare(&set, cfg, &plan)
        .map_err(|e| format!("upgrade {:?}: {e}", plan.name))?;
    crate::output::line(format!(
        "upgrade {:?} (height {}): {done}",
        plan.name, plan.height
    ))
}

/// The chain's current plan, or the one pending here; `None` (said on stdout) when there is
/// neither.
fn chain_or_pending(cfg: &Config, layout: &Layout) -> Result<Option<Plan>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let asked = runtime.block_on(current_plan(&cfg.grpc, &cfg.rpc, QUERY_TIMEOUT));
    let pending = pending_plan(layout);
    match (asked, pending) {
        (
            Ok(Answer {
                plan: Some(plan),
                from,
            }),
            _,
        ) => {
            crate::output::error(format!(
                "the chain's current plan ({from}): {:?} at height {}",
                plan.name, plan.height
            ));
            Ok(Some(plan))
        }
        (Ok(Answer { plan: None, from }), Ok(plan)) => {
            crate::output::error(format!(
                "no plan on the chain ({from}); the upgrade pending here: {:?} at height {}",
                plan.name, plan.height
            ));
            Ok(Some(plan))
        }
        (Ok(Answer { plan: None, from }), Err(_)) => {
            crate::output::line(format!(
                "no upgrade is scheduled: the chain has no plan ({from}) and none is pending here"
            ))?;
            Ok(None)
        }
        (Err(e), Ok(plan)) => {
            crate::output::error(format!(
                "{e}\nstaging the upgrade pending here instead: {:?} at height {}",
                plan.name, plan.height
            ));
            Ok(Some(plan))
        }
        (Err(e), Err(_)) => Err(e.to_string()),
    }
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
