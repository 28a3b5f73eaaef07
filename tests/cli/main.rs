//! Integration tests: the real `wasmvisor` binary supervising the simulated node.

#[path = "../harness/mod.rs"]
mod harness;

mod after;
mod ahead;
mod blocked;
mod commands;
mod config;
mod crash;
mod formats;
mod guests;
mod hardening;
mod manual;
mod observe;
mod plugins;
mod process;
mod safety;
mod sdk;
mod upgrade;
