//! What the hot path does, counted: the supervisor's system calls from the node writing
//! `upgrade-info.json` to the new binary's `execve`, under `strace -f -y`, per upgrade, for
//! (a) and the floor (d′); which files it writes and fsyncs; how many processes it spawns; how
//! many plugin instances it makes (from its metrics).
//!
//! Every process strace follows is classified: the supervisor's threads, and a child it forked
//! until that child's `execve` (the code between is the supervisor's), are counted; what runs
//! after an `execve` (the node, `pre-upgrade`, `version`) is not, except that each such
//! `execve` is a spawn. A system call is counted when it completes, so the `epoll_wait` that
//! wakes the supervisor for the event is in.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::floor::{Floor, run_floor_child};
use crate::harness::free_port;
use crate::runs::{home, spawn_wasmvisor_with, wait_finished};

/// Per-upgrade means of what a set-up's hot path did.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) upgrades: usize,
    pub(crate) syscalls: BTreeMap<String, usize>,
    /// Paths (home-relative, the upgrade's name as `<u>`) opened for writing, renamed to,
    /// linked, and fsynced: how often each.
    pub(crate) written: BTreeMap<String, usize>,
    pub(crate) renamed: BTreeMap<String, usize>,
    pub(crate) fsynced: BTreeMap<String, usize>,
    pub(crate) spawned: BTreeMap<String, usize>,
    pub(crate) plugin_instances: Option<f64>,
}

const FSYNCS: &[&str] = &["fsync", "fdatasync", "syncfs", "sync_file_range", "sync"];

/// Counts (a) over `n` upgrades under strace.
pub(crate) fn count_wasmvisor(n: usize) -> Counts {
    println!("counting (a)'s hot path under strace ({n} upgrades)…");
    let port = free_port();
    let home = home(n, port);
    let (log, trace) = (
        home.path.join("wasmvisor.log"),
        home.path.join("strace.out"),
    );
    let metrics = free_port();
    let env = [
        ("WASMVISOR_WATCH_MODE", "inotify".to_string()),
        ("WASMVISOR_METRICS_ADDRESS", format!("127.0.0.1:{metrics}")),
    ];
    let wrap = strace(&trace);
    let mut child = spawn_wasmvisor_with(&home, port, &env, &log, &wrap);
    wait_finished(
        &home,
        n,
        &mut child,
        &log,
        Duration::from_secs(120 + 5 * n as u64),
    );
    let calls = plugin_calls(metrics);
    // SIGTERM to wasmvisor itself, strace's child: strace would detach and leave it running.
    let pid = child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for tracee in children
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(tracee),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = child.wait();
    let mut counts = parse(&trace, &home.path);
    keep(&trace, "strace-a.txt");
    counts.plugin_instances = calls.map(|c| c / counts.upgrades.max(1) as f64);
    counts
}

/// Counts the floor (d′) over `n` upgrades under strace.
pub(crate) fn count_floor(n: usize) -> Counts {
    let home = home(n, free_port());
    let trace = home.path.join("strace.out");
    run_floor_child(&home, n, Floor::Protocol, &strace(&trace));
    keep(&trace, "strace-d-prime.txt");
    parse(&trace, &home.path)
}

/// Keeps a trace in `target/bench/` for reading (the home it was written in goes).
fn keep(trace: &Path, name: &str) {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::copy(trace, out.join(name));
}

fn strace(out: &Path) -> Vec<String> {
    [
        "strace",
        "-f",
        "-ttt",
        "-qq",
        "-y",
        "-e",
        "signal=none",
        "-s",
        "96",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

/// The plugin calls the supervisor's metrics count (each call is a fresh instance).
fn plugin_calls(port: u16) -> Option<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    Some(
        text.lines()
            .filter(|l| l.starts_with("wasmvisor_plugin_calls_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// One strace line: pid, time, the call's name and the rest, and whether it is an unfinished
/// call's first half or a resumed call's second.
fn split(line: &str) -> Option<(u32, f64, &str, &str, Half)> {
    let (pid, rest) = line.split_once(' ')?;
    let (time, rest) = rest.trim_start().split_once(' ')?;
    let (pid, time) = (pid.parse().ok()?, time.parse().ok()?);
    if let Some(resumed) = rest.strip_prefix("<... ") {
        let (name, tail) = resumed.split_once(" resumed>")?;
        return Some((pid, time, name, tail, Half::Second));
    }
    let (name, tail) = rest.split_once('(')?;
    match tail.strip_suffix("<unfinished ...>") {
        Some(first) => Some((pid, time, name, first, Half::First)),
        None => Some((pid, time, name, tail, Half::Whole)),
    }
}

#[derive(PartialEq)]
enum Half {
    Whole,
    First,
    Second,
}

/// The trace's calls, each once, when it completed: (pid, name, arguments and result).
fn calls(text: &str) -> Vec<(u32, String, String)> {
    let mut pending: HashMap<u32, String> = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pid, _, name, tail, half)) = split(line) else {
            continue;
        };
        match half {
            Half::Whole => out.push((pid, name.to_string(), tail.to_string())),
            Half::First => {
                pending.insert(pid, tail.to_string());
            }
            Half::Second => {
                let first = pending.remove(&pid).unwrap_or_default();
                out.push((pid, name.to_string(), first + tail));
            }
        }
    }
    out
}

/// From which call on each process runs another program than the supervisor: a process
/// forked by the supervisor from its `execve`, one forked by another program from its birth.
/// (A child's first calls can come before its parent's `clone` returns, so this is worked out
/// over the whole trace first.)
fn theirs_from(calls: &[(u32, String, String)]) -> HashMap<u32, usize> {
    let mut parent: HashMap<u32, (u32, usize)> = HashMap::new();
    let mut exec_at: HashMap<u32, usize> = HashMap::new();
    let mut root = None;
    for (i, (pid, name, tail)) in calls.iter().enumerate() {
        if name.starts_with("clone") || name == "vfork" || name == "fork" {
            if let Some(child) = returned_pid(tail) {
                parent.insert(child, (*pid, i));
            }
        } else if name == "execve" && tail.ends_with(") = 0") {
            if root.is_none() {
                root = Some(*pid);
            } else {
                exec_at.entry(*pid).or_insert(i);
            }
        }
    }
    fn from(
        pid: u32,
        parent: &HashMap<u32, (u32, usize)>,
        exec_at: &HashMap<u32, usize>,
        memo: &mut HashMap<u32, usize>,
    ) -> usize {
        if let Some(&at) = memo.get(&pid) {
            return at;
        }
        let inherited = parent
            .get(&pid)
            .filter(|(p, at)| from(*p, parent, exec_at, memo) <= *at)
            .map(|_| 0);
        let at = inherited
            .or(exec_at.get(&pid).copied())
            .unwrap_or(usize::MAX);
        memo.insert(pid, at);
        at
    }
    let mut memo = HashMap::new();
    let pids: Vec<u32> = calls.iter().map(|c| c.0).collect();
    for pid in pids {
        from(pid, &parent, &exec_at, &mut memo);
    }
    memo
}

/// Reads a trace: the windows from each `upgrade-info.json` written by the node to the
/// `execve` of the next `start`, and what the supervisor did in them.
fn parse(trace: &Path, home: &Path) -> Counts {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let calls = calls(&text);
    let theirs = theirs_from(&calls);
    let mut counts = Counts::default();
    let mut open = false;
    let short = |p: &str| shorten(p, home);
    for (i, (pid, name, tail)) in calls.iter().enumerate() {
        let name = name.as_str();
        let from = theirs.get(pid).copied().unwrap_or(usize::MAX);
        if from < i {
            let creates = name.starts_with("open") && tail.contains("O_CREAT");
            if creates && tail.contains("data/upgrade-info.json") {
                open = true;
            }
            continue;
        }
        if from == i {
            // The supervisor's child becomes another program.
            let program = tail.split('"').nth(1).map(short).unwrap_or_default();
            let arg = tail.split('"').nth(5).unwrap_or("").to_string();
            if open {
                *counts
                    .spawned
                    .entry(format!("{program} {arg}"))
                    .or_default() += 1;
            }
            if open && arg == "start" {
                counts.upgrades += 1;
                open = false;
            }
            continue;
        }
        if open {
            *counts.syscalls.entry(name.to_string()).or_default() += 1;
            record_files(&mut counts, name, tail, short);
        }
    }
    counts
}

/// Files opened for writing, renamed, linked or fsynced by one call.
fn record_files(counts: &mut Counts, name: &str, tail: &str, short: impl Fn(&str) -> String) {
    // `openat(9</home/cosmovisor>, "genesis/x"…`: the folder's path, then the name.
    let first_path = || {
        let name = tail.split('"').nth(1).unwrap_or("");
        match tail.split_once('<').filter(|(fd, _)| !fd.contains('"')) {
            Some((_, rest)) if !name.starts_with('/') => {
                let dir = rest.split_once('>').map_or("", |(d, _)| d);
                short(&format!("{dir}/{name}"))
            }
            _ => short(name),
        }
    };
    let fd_path = || {
        tail.split_once('<')
            .and_then(|(_, p)| p.split_once('>'))
            .map(|(p, _)| short(p))
            .unwrap_or_default()
    };
    if FSYNCS.contains(&name) {
        *counts.fsynced.entry(fd_path()).or_default() += 1;
    } else if name == "openat"
        && (tail.contains("O_WRONLY") || tail.contains("O_RDWR") || tail.contains("O_CREAT"))
        && !tail.contains("\"/dev/")
    {
        *counts.written.entry(first_path()).or_default() += 1;
    } else if name.starts_with("rename") || name == "symlinkat" || name == "linkat" {
        // `renameat(9</home/cosmovisor>, ".x.tmp", 9</home/cosmovisor>, "x")`, `rename("a", "b")`,
        // `symlinkat("upgrades/u1", 9</home/cosmovisor>, "current.tmp")`: the last name, in
        // the folder before it.
        let parts: Vec<&str> = tail.split('"').collect();
        let to = parts.len().checked_sub(2).map_or(String::new(), |last| {
            let (before, name) = (parts[last - 1], parts[last]);
            match before.split_once('<').and_then(|(_, d)| d.split_once('>')) {
                Some((dir, _)) if !name.starts_with('/') => short(&format!("{dir}/{name}")),
                _ => short(name),
            }
        });
        *counts.renamed.entry(format!("{name} → {to}")).or_default() += 1;
    }
}

fn returned_pid(tail: &str) -> Option<u32> {
    tail.rsplit("= ")
        .next()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A path as the table shows it: relative to the home, an upgrade's folder as `<u>`, a
/// temporary file's pid and counter left out.
fn shorten(path: &str, home: &Path) -> String {
    let home = home.display().to_string();
    let mut p = path
        .strip_prefix(&home)
        .map_or(path.to_string(), |p| format!("~{p}"));
    if let Some(at) = p.find(".tmp-") {
        p.truncate(at + 4);
    }
    p.split('/')
        .map(|part| {
            let upgrade = part
                .strip_prefix('u')
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            if upgrade { "<u>" } else { part }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Prints (a)'s and (d′)'s counts side by side; returns them as JSON.
pub(crate) fn report(a: &Counts, floor: &Counts) -> Value {
    let per = |c: &Counts, v: usize| v as f64 / c.upgrades.max(1) as f64;
    let total = |c: &Counts| per(c, c.syscalls.values().sum());
    let sum = |c: &Counts, m: &BTreeMap<String, usize>| per(c, m.values().sum());
    println!(
        "\nthe hot path, counted (strace -f, per upgrade, from upgrade-info.json written to the new binary's execve; {} and {} upgrades):",
        a.upgrades, floor.upgrades
    );
    println!("{:<52} {:>10} {:>10}", "", "(a)", "(d')");
    let row = |what: &str, x: f64, y: f64| println!("{what:<52} {x:>10.1} {y:>10.1}");
    row("system calls of the supervisor", total(a), total(floor));
    for (what, of) in [
        (
            "  fsync / fdatasync",
            (|c| &c.fsynced) as fn(&Counts) -> &BTreeMap<String, usize>,
        ),
        ("  files opened for writing", |c| &c.written),
        ("  renames and links", |c| &c.renamed),
        ("process spawns (execve)", |c| &c.spawned),
    ] {
        row(what, sum(a, of(a)), sum(floor, of(floor)));
    }
    match a.plugin_instances {
        Some(p) => row("plugin instances", p, 0.0),
        None => println!("plugin instances: the metrics did not answer"),
    }
    let mut by_count: Vec<(&String, &usize)> = a.syscalls.iter().collect();
    by_count.sort_by(|x, y| y.1.cmp(x.1));
    let top: Vec<String> = by_count
        .iter()
        .take(12)
        .map(|(k, v)| format!("{k} {:.1}", per(a, **v)))
        .collect();
    println!("(a)'s most frequent calls: {}", top.join(", "));
    for (title, map) in [
        ("fsynced", &a.fsynced),
        ("opened for writing", &a.written),
        ("renamed and linked", &a.renamed),
        ("spawned", &a.spawned),
    ] {
        for (path, times) in map {
            println!("  (a) {title}: {path} ×{:.2}", per(a, *times));
        }
    }
    json!({"a": as_json(a), "d_prime": as_json(floor)})
}

fn as_json(c: &Counts) -> Value {
    let per = |m: &BTreeMap<String, usize>| -> Value {
        m.iter()
            .map(|(k, v)| (k.clone(), json!(*v as f64 / c.upgrades.max(1) as f64)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "upgrades": c.upgrades,
        "syscalls": per(&c.syscalls),
        "fsynced": per(&c.fsynced),
        "written": per(&c.written),
        "renamed": per(&c.renamed),
        "spawned": per(&c.spawned),
        "plugin_instances": c.plugin_instances,
    })
}
