//! Why supervision ended with an error: each says what to do.

use std::path::PathBuf;

use crate::node::Exit;
use crate::tree::{LayoutError, lock};
use crate::upgrade::UpgradeError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// Boxed: an upgrade's error carries its whole story, and a run's errors travel by value.
    #[error(transparent)]
    Upgrade(Box<UpgradeError>),
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    PluginsConfig(#[from] crate::upgrade::plugins::ConfigError),
    #[error(transparent)]
    Plugins(#[from] crate::upgrade::plugins::LoadError),
    #[error(transparent)]
    PluginThread(#[from] crate::plugin::ThreadError),
    /// A node started on a `data/` re-created beside the one a restore moved aside would sign
    /// from the older state: the operator decides first.
    #[error("not starting the node: {0}")]
    DataLeftAside(String),
    #[error("upgrade {name:?} at height {height} cannot be applied: {reason}")]
    Refused {
        name: String,
        height: u64,
        reason: String,
    },
    #[error(
        "upgrade {name:?} at height {height} was refused {ago} and nothing it depends on has changed since (the configuration, plugins.toml, the binary in upgrades/{dir}/bin): {reason}"
    )]
    StillRefused {
        name: String,
        height: u64,
        dir: String,
        ago: String,
        reason: String,
    },
    #[error(
        "the node left running by a previous supervisor (pid {pid}, recorded in {file}) did not stop, even on SIGKILL; stop it by hand, then start wasmvisor again"
    )]
    LeftoverAlive { pid: i32, file: String },
    #[error(
        "the node exited ({status}) while a manual upgrade to {name:?} was pending, before its application reported height {last}, the last block before the upgrade (last seen: {seen}); not upgrading: start wasmvisor again to relaunch the node with the same --halt-height"
    )]
    StoppedShort {
        name: String,
        last: u64,
        seen: String,
        status: Exit,
    },
}

impl From<UpgradeError> for RunError {
    fn from(e: UpgradeError) -> RunError {
        RunError::Upgrade(Box::new(e))
    }
}
