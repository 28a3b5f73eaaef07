//! How an attempt to apply an upgrade ended, classified once: what the supervisor does next and
//! what the metrics count both come from this one value.

use super::UpgradeError;
use crate::config::OnFailedUpgrade;
use crate::observe::UpgradeResult;

/// How `Upgrade::apply` (or the finishing of an upgrade found switched at a start) ended.
#[derive(Debug)]
pub enum Outcome {
    /// Switched and committed: the next launch starts the new binary.
    Applied,
    /// A stop request interrupted it; the journal keeps it for the next start.
    Interrupted,
    /// The binary about to be switched to failed for this upgrade before: nothing changed, and
    /// the supervisor waits for a different one (and says why).
    FailedBefore,
    /// No usable binary, or a policy said no: retried only once the operator changed something
    /// (the refusal is journaled with what it depended on).
    Refused(UpgradeError),
    /// The app's `pre-upgrade` failed after the switch, and failed upgrades roll back.
    RollBack(UpgradeError),
    /// Anything else: supervision ends with the error.
    Failed(UpgradeError),
}

impl Outcome {
    /// Classifies what the pipeline returned: `Ok(true)` it committed, `Ok(false)` a stop request
    /// interrupted it.
    pub fn of(result: Result<bool, UpgradeError>, on_failed: OnFailedUpgrade) -> Outcome {
        match result {
            Ok(true) => Outcome::Applied,
            Ok(false) => Outcome::Interrupted,
            Err(UpgradeError::FailedBefore { .. }) => Outcome::FailedBefore,
            Err(e) if e.is_refusal() => Outcome::Refused(e),
            Err(e @ UpgradeError::AppPreupgrade { .. })
                if on_failed == OnFailedUpgrade::Rollback =>
            {
                Outcome::RollBack(e)
            }
            Err(e) => Outcome::Failed(e),
        }
    }

    /// What `wasmvisor_upgrades_total` counts for it now. An interrupted upgrade has not ended,
    /// a binary that failed before was counted when it was rolled back, and a rollback is
    /// counted when it is done.
    pub fn result(&self) -> Option<UpgradeResult> {
        match self {
            Outcome::Applied => Some(UpgradeResult::Success),
            Outcome::Refused(_) => Some(UpgradeResult::Refused),
            Outcome::Failed(_) => Some(UpgradeResult::Failed),
            Outcome::Interrupted | Outcome::FailedBefore | Outcome::RollBack(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::tree::LayoutError;

    fn app_preupgrade() -> UpgradeError {
        UpgradeError::AppPreupgrade {
            upgrade: "v2".into(),
            binary: PathBuf::from("/h/cosmovisor/upgrades/v2/bin/simd"),
            outcome: "exited with status 1".into(),
        }
    }

    fn class(result: Result<bool, UpgradeError>, on_failed: OnFailedUpgrade) -> &'static str {
        match Outcome::of(result, on_failed) {
            Outcome::Applied => "applied",
            Outcome::Interrupted => "interrupted",
            Outcome::FailedBefore => "failed-before",
            Outcome::Refused(_) => "refused",
            Outcome::RollBack(_) => "roll-back",
            Outcome::Failed(_) => "failed",
        }
    }

    #[test]
    fn each_result_of_the_pipeline_has_one_class() {
        use OnFailedUpgrade::{Exit, Rollback};
        let refused = || UpgradeError::Refused {
            upgrade: "v2".into(),
            by: "allowlist".into(),
            reason: "not on the list".into(),
        };
        let missing = || UpgradeError::Layout {
            upgrade: "v2".into(),
            source: LayoutError::MissingBinary {
                path: PathBuf::from("/h/cosmovisor/upgrades/v2/bin/simd"),
            },
        };
        let failed_before = || UpgradeError::FailedBefore {
            upgrade: "v2".into(),
            dir: "v2".into(),
            sha256: "ab".repeat(32),
            reason: "exited with status 2".into(),
        };
        let fetch = || UpgradeError::Fetch {
            upgrade: "v2".into(),
            source: super::super::FetchError::Thread(crate::plugin::ThreadError::Ended),
        };
        for on_failed in [Exit, Rollback] {
            assert_eq!(class(Ok(true), on_failed), "applied");
            assert_eq!(class(Ok(false), on_failed), "interrupted");
            assert_eq!(class(Err(failed_before()), on_failed), "failed-before");
            assert_eq!(class(Err(refused()), on_failed), "refused");
            assert_eq!(class(Err(missing()), on_failed), "refused");
            assert_eq!(class(Err(fetch()), on_failed), "failed");
        }
        assert_eq!(class(Err(app_preupgrade()), Rollback), "roll-back");
        assert_eq!(class(Err(app_preupgrade()), Exit), "failed");
    }

    #[test]
    fn only_an_ended_upgrade_is_counted_and_a_rollback_when_it_is_done() {
        let count = |o: Outcome| o.result().map(UpgradeResult::label);
        assert_eq!(count(Outcome::Applied), Some("success"));
        assert_eq!(count(Outcome::Interrupted), None);
        assert_eq!(
            count(Outcome::of(Err(app_preupgrade()), OnFailedUpgrade::Exit)),
            Some("failed")
        );
        assert_eq!(
            count(Outcome::of(
                Err(app_preupgrade()),
                OnFailedUpgrade::Rollback
            )),
            None
        );
    }
}
