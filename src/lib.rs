//! wasmvisor: a drop-in replacement for Cosmovisor that upgrades Cosmos SDK nodes at exactly the
//! right moment and switches binaries atomically.
//!
//! The binary is a thin layer over these modules; each has one job.

pub mod backup;
pub mod cancel;
pub mod cli;
pub mod commands;
pub mod config;
pub mod decide;
pub mod demo;
pub mod duration;
pub mod fsutil;
pub mod journal;
pub mod layout;
pub mod lock;
pub mod logging;
pub mod node_record;
pub mod output;
pub mod plan;
pub mod plugin;
pub mod plugin_commands;
pub mod process;
pub mod rpc;
pub mod status;
pub mod supervisor;
pub mod swap;
pub mod upgrade;
pub mod watch;

/// The Cosmovisor release whose behaviour wasmvisor follows.
pub const COSMOVISOR_COMPAT: &str = "v1.7.1";
