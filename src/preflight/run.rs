//! `<binary> version` before the upgrade: does the new binary start at all on this host, and
//! what does it say it is? Run with the node's environment in a scratch folder (never the
//! node's `start` arguments, never in its home), in its own process group, its output (stdout
//! and stderr together) kept bounded, the whole group killed at the deadline or on a stop.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use super::NotReady;
use crate::cancel::Cancel;

/// Output kept: the start (what a `version` prints, a panic's message) and the end (where a
/// crash says its last words).
const KEEP_HEAD: usize = 3 * 1024;
const KEEP_TAIL: usize = 1024;
/// How long the output may still flow once the process has ended (a straggler that left the
/// group and holds the pipe is not waited for).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);

/// What a successful run printed, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// Its output, at most about 4 KiB, control characters escaped, with a "… (N bytes more) …"
    /// note where the middle was left out.
    pub output: String,
    pub took: Duration,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// A started process, asked whether it has ended without blocking.
pub trait Launched {
    fn pid(&self) -> i32;
    fn exited(&mut self) -> io::Result<Option<Exit>>;
}

/// Starts the process: [`run_version`] waits for its own child; a caller whose reaper owns
/// `waitpid(-1)` (the supervisor's) starts it through that reaper instead.
pub trait Launcher {
    fn spawn(&self, cmd: &mut Command) -> io::Result<Box<dyn Launched>>;
}

/// The child waited for directly: seen ended without reaping (`WNOWAIT`), so its group, which
/// keeps its id while the leader is a zombie, is killed before the reap — nothing it left
/// behind outlives the check.
struct Direct;

struct DirectChild(Child);

impl Launcher for Direct {
    fn spawn(&self, cmd: &mut Command) -> io::Result<Box<dyn Launched>> {
        Ok(Box::new(DirectChild(cmd.spawn()?)))
    }
}

impl Launched for DirectChild {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn exited(&mut self) -> io::Result<Option<Exit>> {
        let pid = Pid::from_raw(self.pid());
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
        let _ = killpg(pid, Signal::SIGKILL);
        let status = self.0.wait()?;
        use std::os::unix::process::ExitStatusExt;
        Ok(Some(match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Code(-1),
        }))
    }
}

/// Runs `<binary> <args>` and waits for it, as [`run_version_with`] with its own wait.
pub fn run_version(
    binary: &Path,
    args: &[String],
    env: &[(OsString, OsString)],
    timeout: Duration,
    cancel: &Cancel,
) -> Result<Ran, NotReady> {
    run_version_with(&Direct, binary, None, args, env, timeout, cancel)
}

/// Runs `<binary> <args>` with wasmvisor's environment and `env` on top (the node's), stdin
/// empty, in a fresh scratch folder removed afterwards. It must exit 0 within `timeout`; a
/// stop request kills it at once. Messages name the binary as `shown` (else its path).
pub fn run_version_with(
    launcher: &dyn Launcher,
    binary: &Path,
    shown: Option<&str>,
    args: &[String],
    env: &[(OsString, OsString)],
    timeout: Duration,
    cancel: &Cancel,
) -> Result<Ran, NotReady> {
    let shown = crate::output::escape_controls(&shown.map_or(binary.to_string_lossy(), Into::into))
        .into_owned();
    let command = crate::output::escape_controls(&args.join(" ")).into_owned();
    let (b, c) = (shown.clone(), command.clone());
    let cannot = move |error: io::Error| NotReady::CannotExec {
        binary: b.clone(),
        command: c.clone(),
        errno: error.raw_os_error(),
        error: error.to_string(),
    };
    match std::fs::metadata(binary) {
        Ok(m) if !m.is_file() => {
            return Err(NotReady::NotRegular {
                binary: shown,
                kind: super::kind(m.file_type()),
            });
        }
        Ok(_) => {}
        Err(e) => return Err(cannot(e)),
    }
    let scratch = Scratch::new().map_err(|e| NotReady::Scratch {
        binary: shown.clone(),
        command: command.clone(),
        error: e.to_string(),
    })?;
    let (reader, writer) = io::pipe().map_err(&cannot)?;
    let mut cmd = command_for(binary, args, env, &scratch.0, writer).map_err(&cannot)?;
    let started = Instant::now();
    let child = launcher.spawn(&mut cmd);
    // The command holds the pipe's writing end: dropped, the output ends when the child's does.
    drop(cmd);
    let mut child = child.map_err(&cannot)?;
    let output = capture(reader);
    let end = wait(&mut *child, started + timeout, cancel);
    let took = started.elapsed();
    let output = output
        .recv_timeout(DRAIN_AFTER_EXIT)
        .unwrap_or_default()
        .show();
    let quoted = quote(&output);
    let (binary, command) = (shown, command);
    match end {
        End::Exited(Exit::Code(0)) => Ok(Ran { output, took }),
        End::Exited(Exit::Code(code)) => Err(NotReady::Exited {
            binary,
            command,
            code,
            output: quoted,
        }),
        End::Exited(Exit::Signal(signal)) => Err(NotReady::Signalled {
            binary,
            command,
            signal,
            output: quoted,
        }),
        End::TimedOut => Err(NotReady::TimedOut {
            binary,
            command,
            after: timeout,
            output: quoted,
        }),
        End::Cancelled => Err(NotReady::Cancelled { binary, command }),
        End::Lost(e) => Err(NotReady::CannotExec {
            binary,
            command,
            error: format!("its end was not seen: {e}"),
            errno: None,
        }),
    }
}

/// The command: `env` over wasmvisor's own, stdin empty, stdout and stderr into `writer`, in
/// `dir`, leading a process group of its own.
fn command_for(
    binary: &Path,
    args: &[String],
    env: &[(OsString, OsString)],
    dir: &Path,
    writer: io::PipeWriter,
) -> io::Result<Command> {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    Ok(cmd)
}

enum End {
    Exited(Exit),
    TimedOut,
    Cancelled,
    Lost(io::Error),
}

/// Waits for the child's end, the deadline or a stop; the latter two kill its group.
fn wait(child: &mut dyn Launched, deadline: Instant, cancel: &Cancel) -> End {
    let mut pause = Duration::from_millis(1);
    let reason = loop {
        match child.exited() {
            Ok(Some(exit)) => return End::Exited(exit),
            Ok(None) => {}
            Err(e) => return End::Lost(e),
        }
        let now = Instant::now();
        if cancel.is_cancelled() {
            break End::Cancelled;
        }
        if now >= deadline {
            break End::TimedOut;
        }
        // Short pauses first: a `version` usually ends within milliseconds.
        if !cancel.sleep(pause.min(deadline - now)) {
            break End::Cancelled;
        }
        pause = (pause * 2).min(Duration::from_millis(25));
    };
    let _ = killpg(Pid::from_raw(child.pid()), Signal::SIGKILL);
    // SIGKILL cannot be refused: the end follows (a process in uninterruptible sleep aside).
    let give_up = Instant::now() + Duration::from_secs(5);
    while Instant::now() < give_up {
        match child.exited() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    reason
}

/// Bounded output: its start, its end, and how much was in between.
#[derive(Default)]
struct Captured {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: u64,
}

impl Captured {
    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = KEEP_HEAD - self.head.len();
        let n = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..n]);
        bytes = &bytes[n..];
        if bytes.len() > KEEP_TAIL {
            bytes = &bytes[bytes.len() - KEEP_TAIL..];
        }
        let excess = (self.tail.len() + bytes.len()).saturating_sub(KEEP_TAIL);
        self.tail.drain(..excess);
        self.tail.extend(bytes);
    }

    /// As the operator reads it: valid UTF-8, control characters escaped but for line ends
    /// and tabs, the gap noted.
    fn show(mut self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        let omitted = self.total - kept;
        if omitted > 0 {
            text.push_str(&format!("\n… ({omitted} bytes more) …\n"));
        }
        text.push_str(&String::from_utf8_lossy(self.tail.make_contiguous()));
        crate::output::escape_except(&text, &['\n', '\t']).into_owned()
    }
}

/// Reads the output to its end in a thread, keeping only its bounded part.
fn capture(mut reader: io::PipeReader) -> mpsc::Receiver<Captured> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut captured = Captured::default();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => captured.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(captured);
    });
    rx
}

/// The output as it follows a reason: after a colon, or said to be empty.
fn quote(output: &str) -> String {
    match output.trim_end() {
        "" => " (no output)".to_string(),
        text => format!("; its output:\n{text}"),
    }
}

/// A fresh, private working folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> io::Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let nanos = crate::clock::since_epoch().subsec_nanos();
            let dir = base.join(format!(
                "wasmvisor-preflight-{}-{n}-{nanos}",
                std::process::id()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Scratch(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
