//! The end of a run the node chose: its exit, an upgrade halt or a crash.

use std::time::Duration;

use super::super::{Ended, RunError, Supervisor};
use super::Next;
use crate::config::{HaltHeight, OnFailedUpgrade};
use crate::node::{self, Exit};
use crate::tree::{Plan, Read};
use crate::upgrade::probation::Probation;

impl Supervisor {
    /// The node exited without being asked to (`died`: with a failure status, or by a signal
    /// wasmvisor did not pass on). Older SDKs exit at the upgrade halt (and at `--halt-height`):
    /// an upgrade is due if the files (and the last height read) say so. A death of an upgraded
    /// node on probation is a failed upgrade; another is a crash (relaunched when crash restarts
    /// are on). Anything else ends supervision with the node's status.
    pub(super) async fn after_exit(
        &mut self,
        exit: Exit,
        died: bool,
        halt_at: Option<&Plan>,
        probation: Option<Probation>,
        node: node::Child,
    ) -> Ended {
        if self.signals.stop_requested() {
            tracing::info!(status = %exit, "node stopped");
            return Ended::Exit(exit.code());
        }
        // The node writes upgrade-info.json before it exits; a half-written file settles quickly.
        for _ in 0..20 {
            if !matches!(self.layout.read_upgrade_info(), Read::NotYet) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Next::Apply { plan, manual } = self.next() {
            tracing::info!(upgrade = %plan.name, height = plan.height, status = %exit, mono_ns = node::monotonic_ns(), "node halted for the upgrade");
            return Ended::Due {
                plan,
                manual,
                node: Some(node),
            };
        }
        if let Some(p) = probation.filter(|_| died) {
            let reason = format!(
                "the upgraded node died ({exit}) {} after its launch, before it proved healthy",
                crate::duration::format(Duration::from_millis(
                    p.launched.elapsed().as_millis() as u64
                ))
            );
            if self.cfg.on_failed_upgrade == OnFailedUpgrade::Rollback {
                return Ended::Failed {
                    plan: p.plan,
                    reason,
                    node: None,
                };
            }
            tracing::error!("{reason}; WASMVISOR_ON_FAILED_UPGRADE=exit");
        }
        // A crash while a manual upgrade is pending is relaunched with the same halt only where
        // the relaunch cannot execute the upgrade's height: with a halt before it, or while the
        // node was still far from it. An SDK that halts *at* X by SIGINT (v0.46 and earlier exit
        // 130 there) looks like a crash; relaunched, it would execute H with the old binary.
        let relaunch_safe = halt_at.is_none_or(|plan| {
            self.cfg.halt_height == HaltHeight::Before || self.manual.far_from(plan)
        });
        if died && self.cfg.restart_on_crash && relaunch_safe {
            return Ended::Crashed(exit);
        }
        if let Some(plan) = halt_at {
            // Relaunching is not safe here: a node that ended its `start` by itself having
            // executed its halt height (SDK v0.47) would execute one more block with the old
            // binary.
            let error = RunError::StoppedShort {
                name: plan.name.clone(),
                last: plan.height - 1,
                seen: self.manual.height.map_or("none".into(), |h| h.to_string()),
                status: exit,
            };
            tracing::error!("{error} (node RPC {})", self.cfg.rpc);
            return Ended::Exit(if exit.success() { 1 } else { exit.code() });
        }
        if !died {
            tracing::info!(status = %exit, "node exited");
            return Ended::Exit(exit.code());
        }
        tracing::error!(status = %exit, "node exited with an error; passing its status on");
        Ended::Exit(exit.code())
    }
}
