//! The preflight of a staged binary (`crate::preflight`): its dynamic needs met on this host,
//! then `<binary> $WASMVISOR_PREFLIGHT_ARGS` run as the node's environment would run it. The
//! planner (`crate::ahead`) checks every staged binary ahead of its halt; at the halt, a binary
//! that was not checked (or failed before) is checked before the swap, and one that would not
//! run is refused with `current` unchanged.
//!
//! Results are kept by what was checked — the binary's identity on disk (device, inode, size,
//! modification time), its `lib/` folder and the arguments — so replacing the binary or a
//! library checks again.

use std::collections::HashMap;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Upgrade, UpgradeError};
use crate::cancel::Cancel;
use crate::config::Config;
use crate::node::{Child, Reaper};
use crate::plugin::ThreadError;
use crate::preflight::{Exit as RunExit, Launched, Launcher, NotReady, Target};
use crate::tree::{Current, Layout, LayoutError, Plan};

/// How long `<binary> version` may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(10);
/// Results kept: a few binaries per upcoming plan.
const KEPT: usize = 64;

/// What a preflight checked: the binary as it is on disk, its libraries and the arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub binary: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    /// The `lib/` folder's entries (names, sizes, modification times), hashed.
    lib: u64,
    args: Vec<String>,
}

/// A preflight's result.
#[derive(Debug, Clone)]
pub struct Checked {
    pub key: Key,
    pub sha256: String,
    pub result: Result<Passed, NotReady>,
    pub at_unix: u64,
    pub took: Duration,
}

/// What a passed preflight found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    /// The shared libraries the loader will load, by name and where it finds them.
    pub libraries: Vec<(String, PathBuf)>,
    /// What the binary printed when run (`None`: the run is not checked).
    pub output: Option<String>,
}

/// The preflight results of one supervisor, shared by its planner and its upgrades.
#[derive(Default)]
pub struct Checks(Mutex<HashMap<Key, Checked>>);

impl Checks {
    pub fn get(&self, key: &Key) -> Option<Checked> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    pub fn put(&self, checked: Checked) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= KEPT {
            map.clear();
        }
        map.insert(checked.key.clone(), checked);
    }
}

/// The supervisor's reaper owns `waitpid(-1)`: the preflight's run is started through it, so
/// the reaper hands its exit to the check instead of swallowing it.
pub struct ThroughReaper(pub Reaper);

struct Reaped(Child);

impl Launcher for ThroughReaper {
    fn spawn(&self, cmd: &mut std::process::Command) -> std::io::Result<Box<dyn Launched>> {
        Ok(Box::new(Reaped(self.0.spawn(cmd, true)?)))
    }
}

impl Launched for Reaped {
    fn pid(&self) -> i32 {
        self.0.pid.as_raw()
    }

    fn exited(&mut self) -> std::io::Result<Option<RunExit>> {
        Ok(self.0.exited().map(|e| match e {
            crate::node::Exit::Code(c) => RunExit::Code(c),
            crate::node::Exit::Signal(s) => RunExit::Signal(s),
        }))
    }
}

/// The binary and `lib/` folder of the upgrade folder `dir`.
fn paths(layout: &Layout, dir: &str) -> (Current, PathBuf, PathBuf) {
    let target = Current::Upgrade(dir.to_string());
    let binary = layout.binary_path(&target);
    let lib = layout.root_path.join(target.rel_dir()).join("lib");
    (target, binary, lib)
}

/// What a preflight of the binary in `dir` would check now.
pub fn key(layout: &Layout, cfg: &Config, dir: &str) -> std::io::Result<Key> {
    let (_, binary, lib) = paths(layout, dir);
    let meta = std::fs::metadata(&binary)?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Ok(entries) = std::fs::read_dir(&lib) {
        let mut seen: Vec<(OsString, u64, i64)> = entries
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((
                    e.file_name(),
                    m.size(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000,
                ))
            })
            .collect();
        seen.sort();
        seen.hash(&mut hasher);
    }
    Ok(Key {
        binary,
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        lib: hasher.finish(),
        args: cfg.preflight_args.clone(),
    })
}

/// Checks the binary in `dir` (blocking: reads the binary and runs it).
pub fn check(
    layout: &Layout,
    cfg: &Config,
    dir: &str,
    key: Key,
    launcher: &dyn Launcher,
    cancel: &Cancel,
) -> Checked {
    let started = Instant::now();
    let (target, binary, lib) = paths(layout, dir);
    let sha256 = crate::fs::sha256_path(&binary).unwrap_or_default();
    let inherited = std::env::var_os("LD_LIBRARY_PATH");
    let result = crate::preflight::dynamic_needs(&Target {
        binary: &binary,
        lib_dir: &lib,
        env_ld_library_path: inherited.as_deref(),
        display_root: Some(&layout.root_path),
    })
    .and_then(|linkage| {
        let output = match cfg.preflight_args.is_empty() {
            true => None,
            false => {
                let env: Vec<(OsString, OsString)> = layout
                    .library_path(&target)
                    .map(|libs| ("LD_LIBRARY_PATH".into(), libs))
                    .into_iter()
                    .collect();
                let ran = crate::preflight::run_version_with(
                    launcher,
                    &binary,
                    Some(&shown(layout, &binary)),
                    &cfg.preflight_args,
                    &env,
                    RUN_TIMEOUT,
                    cancel,
                )?;
                Some(ran.output)
            }
        };
        Ok(Passed {
            libraries: linkage.libraries,
            output,
        })
    });
    Checked {
        key,
        sha256,
        result,
        at_unix: crate::clock::unix_secs(),
        took: started.elapsed(),
    }
}

/// The binary's place for messages: relative to the cosmovisor folder.
pub fn shown(layout: &Layout, binary: &Path) -> String {
    binary
        .strip_prefix(&layout.root_path)
        .unwrap_or(binary)
        .display()
        .to_string()
}

/// A preflight started at the detection, while the node stops (for a binary already staged
/// and not checked ahead): the switch waits for its result.
pub struct Early {
    key: Key,
    task: tokio::task::JoinHandle<Result<Result<Checked, LayoutError>, ThreadError>>,
}

impl Upgrade<'_> {
    /// Starts the preflight of the binary staged in `dir_name`, if there is one that did not
    /// pass a preflight yet.
    pub(super) fn start_preflight(&self, dir_name: &str) -> Option<Early> {
        let key = key(self.layout, self.cfg, dir_name).ok()?;
        if let Some(Checked { result: Ok(_), .. }) = self.checks.get(&key) {
            return None;
        }
        let (cfg, dir, k) = (self.cfg.clone(), dir_name.to_string(), key.clone());
        let cancel = self.signals.cancel().clone();
        let launcher = ThroughReaper(self.reaper.clone());
        let task = tokio::spawn(crate::plugin::off_runtime(move || {
            let layout = Layout::open(&cfg)?;
            Ok(check(&layout, &cfg, &dir, k, &launcher, &cancel))
        }));
        Some(Early { key, task })
    }

    /// Before the swap: the binary about to run passed a preflight — ahead of the halt, while
    /// the node stopped (`early`, if the binary is still the one it checked), or now. Returns
    /// false if a stop request interrupted the check.
    pub(super) async fn preflight_at_halt(
        &mut self,
        plan: &Plan,
        dir_name: &str,
        early: Option<Early>,
    ) -> Result<bool, UpgradeError> {
        let key = key(self.layout, self.cfg, dir_name).map_err(|source| UpgradeError::Io {
            upgrade: plan.name.clone(),
            phase: crate::upgrade::journal::Phase::Fetch,
            what: "cannot read the staged binary".into(),
            source,
        })?;
        if let Some(Checked { result: Ok(_), .. }) = self.checks.get(&key) {
            tracing::info!(upgrade = %plan.name, "the binary passed its preflight ahead of the halt");
            return Ok(true);
        }
        let task = match early {
            Some(early) if early.key == key => early.task,
            _ => {
                let (cfg, dir) = (self.cfg.clone(), dir_name.to_string());
                let cancel = self.signals.cancel().clone();
                let launcher = ThroughReaper(self.reaper.clone());
                tokio::spawn(crate::plugin::off_runtime(move || {
                    let layout = Layout::open(&cfg)?;
                    Ok(check(&layout, &cfg, &dir, key, &launcher, &cancel))
                }))
            }
        };
        let upgrade = || plan.name.clone();
        let done = self.signals.until_stop(task).await;
        let checked = match done.map(|joined| joined.unwrap_or(Err(ThreadError::Ended))) {
            None => return Ok(false),
            Some(Ok(Ok(checked))) => checked,
            Some(Ok(Err(source))) => {
                return Err(UpgradeError::Layout {
                    upgrade: upgrade(),
                    source,
                });
            }
            Some(Err(source)) => {
                return Err(UpgradeError::PreflightThread {
                    upgrade: upgrade(),
                    source,
                });
            }
        };
        self.checks.put(checked.clone());
        if self.signals.stop_requested() {
            return Ok(false);
        }
        match checked.result {
            Ok(_) => {
                tracing::info!(upgrade = %plan.name, took = %crate::duration::format(checked.took), "preflight passed");
                Ok(true)
            }
            Err(reason) => {
                self.observer.preflight_failed();
                Err(UpgradeError::Preflight {
                    upgrade: upgrade(),
                    reason,
                })
            }
        }
    }
}
