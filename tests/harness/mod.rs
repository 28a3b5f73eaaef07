//! One harness for the integration tests and the benchmarks: a fresh `$DAEMON_HOME` per test
//! with the simulated node installed as genesis (and as any upgrade a test adds), the real
//! `wasmvisor` binary, and an HTTP server on loopback to download from (`serve.rs`). `cmd.rs`
//! runs one command and asserts its exact output; `fixtures.rs` builds what the tests download
//! and the data folders they back up.
//!
//! Included by `tests/cli/main.rs` and `benches/swap.rs` as a module.

pub mod cmd;
mod fixtures;
pub mod receive;
pub mod serve;
pub mod tls;

// The benchmark, which includes this module too, uses neither.
#[allow(unused_imports)]
pub use cmd::Cmd;
#[allow(unused_imports)]
pub use fixtures::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const WASMVISOR: &str = env!("CARGO_BIN_EXE_wasmvisor");
pub const SIM: &str = env!("WASMVISOR_SIM");

pub struct Home {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Home {
    /// A tree with genesis installed (block time 50 ms, stays alive at the halt) and `current`
    /// pointing at it.
    pub fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("wasmvisor-test")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().to_path_buf();
        std::fs::create_dir_all(path.join("data")).unwrap();
        let home = Home {
            env: vec![
                ("DAEMON_HOME".into(), path.display().to_string()),
                ("DAEMON_NAME".into(), "simd".into()),
                ("UNSAFE_SKIP_BACKUP".into(), "true".into()),
                ("DAEMON_SHUTDOWN_GRACE".into(), "5s".into()),
                ("COSMOVISOR_COLOR_LOGS".into(), "false".into()),
                // One compile cache for all tests: each plugin is compiled once per test run.
                (
                    "WASMVISOR_PLUGIN_CACHE".into(),
                    concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-cache").into(),
                ),
            ],
            _dir: dir,
            path,
        };
        home.install("genesis", json!({"version": "genesis", "ordinal": 1}));
        std::os::unix::fs::symlink("genesis", home.root().join("current")).unwrap();
        home
    }

    pub fn root(&self) -> PathBuf {
        self.path.join("cosmovisor")
    }

    pub fn data(&self) -> PathBuf {
        self.path.join("data")
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Home {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn unset(&mut self, key: &str) -> &mut Home {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Installs the simulator as the binary of `folder` (`genesis` or `upgrades/<name>`) with
    /// `config` (block time 50 ms unless given).
    pub fn install(&self, folder: &str, mut config: Value) {
        if config.get("block_ms").is_none() {
            config["block_ms"] = json!(50);
        }
        wasmvisor_node_sim::install(&self.root(), folder, Path::new(SIM), &config).unwrap();
    }

    /// Installs an upgrade's binary (handler for `name`, next ordinal).
    pub fn upgrade(&self, name: &str, ordinal: u32, extra: Value) {
        let mut config = json!({"version": name, "ordinal": ordinal, "handles": name});
        merge(&mut config, extra);
        self.install(&format!("upgrades/{name}"), config);
    }

    /// The plans governance has passed: `[(name, height)]`.
    pub fn chain(&self, plans: &[(&str, u64)]) {
        let plans: Vec<Value> = plans
            .iter()
            .map(|(n, h)| json!({"name": n, "height": h, "info": ""}))
            .collect();
        std::fs::write(
            self.data().join("sim-chain.json"),
            json!({"plans": plans}).to_string(),
        )
        .unwrap();
    }

    /// One governance plan whose `info` is `info` (a binaries map, say).
    pub fn chain_with_info(&self, name: &str, height: u64, info: &str) {
        std::fs::write(
            self.data().join("sim-chain.json"),
            json!({"plans": [{"name": name, "height": height, "info": info}]}).to_string(),
        )
        .unwrap();
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WASMVISOR);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("wasmvisor runs")
    }

    /// `plan.json` in the test's folder: plan `name` at height 3, for `plugin call --plan`.
    pub fn plan_file(&self, name: &str) -> PathBuf {
        let plan = self.path.join("plan.json");
        std::fs::write(&plan, json!({"name": name, "height": 3}).to_string()).unwrap();
        plan
    }

    /// `wasmvisor plugin call WORLD NAME --plan PLAN`: its exit status, its answer (null when
    /// stdout is not JSON) and its stderr.
    pub fn plugin_call(
        &self,
        world: &str,
        name: &str,
        plan: &Path,
    ) -> (Option<i32>, Value, String) {
        let out = self.output(&[
            "plugin",
            "call",
            world,
            name,
            "--plan",
            plan.to_str().unwrap(),
        ]);
        let answer = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.code(),
            answer,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `wasmvisor run start --home <home> <extra…>`.
    pub fn run(&self, extra: &[&str]) -> Running {
        let home = self.path.display().to_string();
        let mut args = vec!["run", "start", "--home", home.as_str()];
        args.extend_from_slice(extra);
        let mut cmd = self.cmd(&args);
        // Files, not pipes: a node left behind by a killed supervisor would hold a pipe open.
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (out, err) = (
            self.path.join(format!("run-{n}.out")),
            self.path.join(format!("run-{n}.err")),
        );
        cmd.stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        Running {
            child: Some(cmd.spawn().expect("wasmvisor starts")),
            err,
        }
    }

    /// The node's history: [(version, first height, last height)].
    pub fn history(&self) -> Vec<(String, u64, u64)> {
        wasmvisor_node_sim::history(&self.path)
    }

    pub fn events(&self) -> Vec<Value> {
        wasmvisor_node_sim::events(&self.path)
    }

    /// The height the node has committed.
    pub fn height(&self) -> u64 {
        self.history().last().map_or(0, |(_, _, to)| *to)
    }

    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    pub fn current(&self) -> String {
        std::fs::read_link(self.root().join("current"))
            .unwrap()
            .display()
            .to_string()
    }

    pub fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&Home) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; history {:?}\nwasmvisor's log:\n{}",
                self.history(),
                self.last_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log of the most recent `run`, for failure messages.
    pub fn last_log(&self) -> String {
        let mut logs: Vec<_> = std::fs::read_dir(&self.path)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "err"))
                    .collect()
            })
            .unwrap_or_default();
        logs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        logs.last()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// Waits until `version` has committed `height`.
    pub fn wait_height(&self, version: &str, height: u64) {
        self.wait_for(
            &format!("{version} at height {height}"),
            Duration::from_secs(30),
            |h| {
                h.history()
                    .iter()
                    .any(|(v, _, to)| v == version && *to >= height)
            },
        );
    }

    pub fn journal(&self) -> Value {
        std::fs::read(self.root().join("wasmvisor-journal.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        // A node a killed supervisor left behind: stop its group. (Nodes also exit on their own
        // once the temp dir is gone.)
        if let Ok(text) = std::fs::read_to_string(self.root().join("wasmvisor-node.json"))
            && let Ok(v) = serde_json::from_str::<Value>(&text)
            && let Some(pid) = v["pid"].as_i64()
        {
            unsafe { libc_kill(-(pid as i32), 9) };
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub fn signal(pid: u32, sig: i32) {
    unsafe { libc_kill(pid as i32, sig) };
}

pub const SIGUSR1: i32 = 10;
pub const SIGTERM: i32 = 15;
pub const SIGHUP: i32 = 1;

pub struct Running {
    child: Option<Child>,
    err: PathBuf,
}

pub struct Finished {
    pub status: ExitStatus,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: i32) {
        signal(self.pid(), sig);
    }

    /// Waits for wasmvisor to exit (panics after `timeout`).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Finished {
                    status,
                    stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
                };
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "wasmvisor did not exit within {timeout:?}; stderr:\n{}",
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops wasmvisor with SIGTERM and returns how it ended.
    pub fn stop(self) -> Finished {
        self.signal(SIGTERM);
        self.finish(Duration::from_secs(20))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Home {
    /// The proposals in their voting period the simulated chain serves for the gov `Proposals`
    /// query (`data/sim-proposals.json`): objects `{"id", "name", "height", "info", "title",
    /// "legacy", "voting_end"}` (`legacy`: a `SoftwareUpgradeProposal` content rather than a
    /// `MsgSoftwareUpgrade`; `voting_end`: Unix seconds). Written whole (a rename), so a running
    /// node reads the old list or the new.
    pub fn proposals(&self, proposals: &[Value]) {
        let tmp = self.data().join(".sim-proposals.json.tmp");
        std::fs::write(&tmp, Value::from(proposals.to_vec()).to_string()).unwrap();
        std::fs::rename(&tmp, self.data().join("sim-proposals.json")).unwrap();
    }
}
