//! The preflight of a staged binary (`crate::preflight`): its dynamic needs met on this host,
//! then `<binary> $WASMVISOR_PREFLIGHT_ARGS` run as the node's environment would run it. The
//! planner (`crate::ahead`) checks every staged binary ahead of its halt; at the halt, a binary
//! that was not checked (or failed before) is checked before the swap, and one that would not
//! run is refused with `current` unchanged.
//!
//! Results are kept by what was checked — the binary's identity on disk (device, inode, size,
//! modification time), its `lib/` folder and the arguments — so replacing the binary or one of
//! its libraries in `lib/` checks again. A binary that passed is checked again at its halt for
//! its dynamic needs alone (a system library removed since; a millisecond, while the node
//! stops). A check that could not tell (a run that timed out, no scratch folder) does not
//! refuse the upgrade: it is said, and the switch goes ahead.

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
use crate::tree::{Current, Layout, Plan};

/// How long `<binary> version` may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(10);
/// Results kept: the binaries of the upcoming plans and of the folders staged for upgrades not
/// applied yet (a few hundred bytes each).
const KEPT: usize = 256;

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

    /// Keeps `checked`, in place of what was kept for the same binary (replaced or rebuilt
    /// since); when full, in place of the oldest check.
    pub fn put(&self, checked: Checked) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| k.binary != checked.key.binary || k.args != checked.key.args);
        if map.len() >= KEPT
            && let Some(oldest) = map
                .values()
                .min_by_key(|c| c.at_unix)
                .map(|c| c.key.clone())
        {
            map.remove(&oldest);
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
        let exit = self.0.exited();
        if exit.is_some() {
            // What it left behind in its group goes with it (the reaper has collected the
            // leader; its group id stays reserved while any member lives).
            let _ = nix::sys::signal::killpg(self.0.pid, nix::sys::signal::Signal::SIGKILL);
        }
        Ok(exit.map(|e| match e {
            crate::node::Exit::Code(c) => RunExit::Code(c),
            crate::node::Exit::Signal(s) => RunExit::Signal(s),
        }))
    }
}

/// The binary and `lib/` folder of the upgrade folder `dir`.
pub fn paths(layout: &Layout, dir: &str) -> (Current, PathBuf, PathBuf) {
    let target = Current::Upgrade(dir.to_string());
    let binary = layout.binary_path(&target);
    let lib = layout.root_path.join(target.rel_dir()).join("lib");
    (target, binary, lib)
}

/// What a preflight of the binary in `dir` would check now.
pub fn key(layout: &Layout, cfg: &Config, dir: &str) -> std::io::Result<Key> {
    let (_, binary, lib) = paths(layout, dir);
    let meta = std::fs::metadata(&binary)?;
    Ok(Key {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: mtime_ns(&meta),
        lib: lib_digest(&lib),
        binary,
        args: cfg.preflight_args.clone(),
    })
}

/// The `lib/` folder's entries (names, sizes, modification times), hashed.
fn lib_digest(lib: &Path) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Ok(entries) = std::fs::read_dir(lib) {
        let mut seen: Vec<(OsString, u64, i64)> = entries
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((e.file_name(), m.size(), mtime_ns(&m)))
            })
            .collect();
        seen.sort();
        seen.hash(&mut hasher);
    }
    hasher.finish()
}

/// What a check does beyond the dynamic needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct How {
    /// Run `<binary> $WASMVISOR_PREFLIGHT_ARGS` (unless they are `off`).
    pub run: bool,
    /// Hash the binary, for `status` (not at the halt: only shown, and a large binary takes a
    /// while).
    pub hash: bool,
}

/// Checks the binary in `dir` (blocking: reads the binary and runs it).
pub fn check(
    layout: &Layout,
    cfg: &Config,
    dir: &str,
    (key, how): (Key, How),
    launcher: &dyn Launcher,
    cancel: &Cancel,
) -> Checked {
    let started = Instant::now();
    let (target, binary, lib) = paths(layout, dir);
    let sha256 = match how.hash {
        true => sha256_until(&binary, cancel).unwrap_or_default(),
        false => String::new(),
    };
    let inherited = std::env::var_os("LD_LIBRARY_PATH");
    let result = crate::preflight::dynamic_needs(&Target {
        binary: &binary,
        lib_dir: &lib,
        env_ld_library_path: inherited.as_deref(),
        display_root: Some(&layout.root_path),
    })
    .and_then(|linkage| {
        let output = match cfg.preflight_args.is_empty() || !how.run {
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

/// The file's sha256 in lower-case hex, read in chunks that each check `cancel` (`None`: it
/// could not be read, or the work was cancelled).
fn sha256_until(path: &Path, cancel: &Cancel) -> Option<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = crate::fs::open_regular_path(path).ok()?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if cancel.is_cancelled() {
            return None;
        }
        match file.read(&mut buf) {
            Ok(0) => return Some(hex::encode(hasher.finalize())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// What the loader reads besides the binary, as text to digest: the upgrade's `lib/`, the
/// loader's cache, its default folders and `LD_LIBRARY_PATH`. A refusal for a missing library
/// is tried again once any of it changed (the operator installed the library).
pub fn loader_inputs(layout: &Layout, dir: &str) -> String {
    let (_, _, lib) = paths(layout, dir);
    let mut out = format!("lib {:x}\n", lib_digest(&lib));
    let cache = PathBuf::from("/etc/ld.so.cache");
    for path in std::iter::once(cache).chain(crate::preflight::loader_dirs()) {
        if let Ok(m) = std::fs::metadata(&path) {
            out.push_str(&format!(
                "{} {} {}\n",
                path.display(),
                m.ino(),
                mtime_ns(&m)
            ));
        }
    }
    if let Some(v) = std::env::var_os("LD_LIBRARY_PATH") {
        out.push_str(&format!("LD_LIBRARY_PATH={}\n", v.to_string_lossy()));
    }
    out
}

/// A modification time in nanoseconds since the epoch.
pub fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.mtime_nsec())
}

/// The binary's place for messages: relative to the cosmovisor folder.
pub fn shown(layout: &Layout, binary: &Path) -> String {
    binary
        .strip_prefix(&layout.root_path)
        .unwrap_or(binary)
        .display()
        .to_string()
}

/// A preflight started at the detection, while the node stops: the switch waits for its
/// result, if the binary is still the one it checked.
pub struct Early {
    key: Key,
    task: tokio::task::JoinHandle<Result<std::io::Result<Checked>, ThreadError>>,
}

impl Upgrade<'_> {
    /// Starts, on its own thread, the check of the binary in `dir_name` as `how` says.
    fn spawn_check(&self, dir_name: &str, key: Key, how: How) -> std::io::Result<Early> {
        let (cfg, dir, k) = (self.cfg.clone(), dir_name.to_string(), key.clone());
        let layout = self.layout.try_clone()?;
        let cancel = self.signals.cancel().clone();
        let launcher = ThroughReaper(self.reaper.clone());
        let task = tokio::spawn(crate::plugin::off_runtime(move || {
            Ok(check(&layout, &cfg, &dir, (k, how), &launcher, &cancel))
        }));
        Ok(Early { key, task })
    }

    /// Starts the preflight of the binary staged in `dir_name`, if one is: in full, or, for a
    /// binary that passed ahead of the halt, its dynamic needs again.
    pub(super) fn start_preflight(&self, dir_name: &str) -> Option<Early> {
        let key = key(self.layout, self.cfg, dir_name).ok()?;
        let passed = matches!(self.checks.get(&key), Some(Checked { result: Ok(_), .. }));
        let how = How {
            run: !passed,
            hash: false,
        };
        self.spawn_check(dir_name, key, how).ok()
    }

    /// Before the swap: the binary about to run passes its preflight — `early`'s, or one run
    /// now. A check that could not tell is said and lets the switch go ahead. Returns false if
    /// a stop request interrupted the check.
    pub(super) async fn preflight_at_halt(
        &mut self,
        plan: &Plan,
        dir_name: &str,
        early: Option<Early>,
    ) -> Result<bool, UpgradeError> {
        let io = |what: &str, source| UpgradeError::Io {
            upgrade: plan.name.clone(),
            phase: crate::upgrade::journal::Phase::Fetch,
            what: what.into(),
            source,
        };
        let key = key(self.layout, self.cfg, dir_name)
            .map_err(|e| io("cannot read the staged binary", e))?;
        let ahead = matches!(self.checks.get(&key), Some(Checked { result: Ok(_), .. }));
        let early = match early {
            Some(early) if early.key == key => early,
            _ => {
                let how = How {
                    run: !ahead,
                    hash: false,
                };
                self.spawn_check(dir_name, key, how)
                    .map_err(|e| io("cannot open the tree for the preflight", e))?
            }
        };
        let done = self.signals.until_stop(early.task).await;
        let checked = match done.map(|joined| joined.unwrap_or(Err(ThreadError::Ended))) {
            None => return Ok(false),
            Some(Ok(checked)) => {
                checked.map_err(|e| io("cannot open the tree for the preflight", e))?
            }
            Some(Err(source)) => {
                return Err(UpgradeError::PreflightThread {
                    upgrade: plan.name.clone(),
                    source,
                });
            }
        };
        if self.signals.stop_requested() {
            return Ok(false);
        }
        self.judge_at_halt(plan, checked, ahead)
    }

    /// The switch goes ahead unless the check says the binary will not run.
    fn judge_at_halt(
        &mut self,
        plan: &Plan,
        checked: Checked,
        ahead: bool,
    ) -> Result<bool, UpgradeError> {
        let took = crate::duration::format(checked.took);
        match &checked.result {
            Ok(_) if ahead => {
                tracing::info!(upgrade = %plan.name, %took, "the binary passed its preflight ahead of the halt, and its libraries are still there")
            }
            Ok(_) => tracing::info!(upgrade = %plan.name, %took, "preflight passed"),
            Err(reason) if !reason.is_conclusive() => {
                tracing::warn!(upgrade = %plan.name, "the preflight could not tell whether the binary runs ({reason}); switching to it")
            }
            Err(reason) => {
                self.observer.preflight_failed();
                return Err(UpgradeError::Preflight {
                    upgrade: plan.name.clone(),
                    reason: reason.clone(),
                });
            }
        }
        if !ahead || checked.result.is_err() {
            self.checks.put(checked);
        }
        Ok(true)
    }
}
