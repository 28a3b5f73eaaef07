//! wasmvisor: a drop-in replacement for Cosmovisor that upgrades Cosmos SDK nodes at exactly the
//! right moment and switches binaries atomically.
//!
//! The binary is a thin layer over these modules. Dependencies point one way:
//! `cli` → `supervisor` → `notifier`, `ahead` → `upgrade` → `node`, `chain`, `tree`, `artifact`, `plugin`,
//! `preflight` → `config` and the leaf utilities (`fs`, `cancel`, `clock`, `duration`,
//! `kill_hook`, `output`, `logging`, `observe`, `tls`). `plugin` is a sandbox that knows nothing of the home it serves; `observe` is told
//! what happens and knows nothing of how; `chain` reads the chain and knows nothing of how the
//! node is run.

pub(crate) mod ahead;
pub(crate) mod artifact;
pub mod cancel;
pub(crate) mod chain;
pub mod cli;
pub(crate) mod clock;
pub(crate) mod config;
pub mod duration;
pub(crate) mod fs;
pub(crate) mod kill_hook;
pub(crate) mod logging;
pub(crate) mod node;
pub(crate) mod notifier;
pub(crate) mod observe;
pub(crate) mod output;
pub mod plugin;
pub mod preflight;
pub(crate) mod supervisor;
pub(crate) mod tls;
pub(crate) mod tree;
pub(crate) mod upgrade;

/// What the benchmarks measure directly, beside the plugin host: the download file, the swap,
/// plan parsing, the journal and snapshot backups.
pub mod bench {
    pub use crate::artifact::Download;
    pub use crate::tree::backup::{create as backup, restore};
    pub use crate::tree::plans::parse as parse_plan;
    pub use crate::tree::swap::point_current;
    pub use crate::tree::{Plan, Read};
    pub use crate::upgrade::journal::{Journal, Phase};
}

/// The Cosmovisor release whose behaviour wasmvisor follows.
pub const COSMOVISOR_COMPAT: &str = "v1.7.1";
