//! Noticing that `data/upgrade-info.json` (or the batch file) changed.
//!
//! inotify on the data folder wakes the supervisor only when something happens there: no timer runs
//! while the node is healthy. Some filesystems (NFS, some container volumes) never deliver inotify
//! events, so in `auto` mode a probe file is written at start; if inotify stays silent about it,
//! wasmvisor polls at `DAEMON_POLL_INTERVAL` instead.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cap_std::fs::Dir;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::config::WatchMode;
use crate::tree::plans::{BATCH_FILE, UPGRADE_INFO_FILE};

const PROBE_FILE: &str = ".wasmvisor-watch-probe";
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest poll period of the fallback from inotify (explicit `poll` mode may go lower).
const FALLBACK_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies a version of a file for polling: (inode, size, mtime in ns).
type Stamp = Option<(u64, u64, i128)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.ino(),
        m.size(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    ))
}

enum Source {
    Inotify {
        _watcher: RecommendedWatcher,
        rx: mpsc::UnboundedReceiver<PathBuf>,
    },
    /// A thread stats the files every interval and reports changes: one wake-up per interval
    /// (a runtime timer would wake the runtime about twice per tick).
    Poll { rx: mpsc::UnboundedReceiver<()> },
}

pub struct Watcher {
    source: Source,
}

impl Watcher {
    /// Watches `data` (opened as `data_dir`, through which the probe file is written).
    pub async fn start(
        data: &Path,
        data_dir: &Dir,
        mode: WatchMode,
        poll_interval: Duration,
    ) -> Watcher {
        if mode != WatchMode::Poll {
            match inotify(data) {
                Ok((watcher, mut rx)) => {
                    if mode == WatchMode::Inotify || probe(data_dir, &mut rx).await {
                        tracing::info!(dir = %data.display(), "watching for upgrade-info.json with inotify");
                        return Watcher {
                            source: Source::Inotify {
                                _watcher: watcher,
                                rx,
                            },
                        };
                    }
                    tracing::warn!(
                        dir = %data.display(),
                        interval = %crate::duration::format(poll_interval),
                        "inotify reports nothing on this filesystem; polling instead"
                    );
                }
                Err(e) => {
                    tracing::warn!(dir = %data.display(), error = %e, "inotify is unavailable; polling instead")
                }
            }
        }
        // Explicit polling keeps DAEMON_POLL_INTERVAL (Cosmovisor's behaviour). As a fallback
        // for a silent inotify, poll at most once a second: the node's exit at the halt is
        // noticed at once anyway, and an idle supervisor should not wake more often than that.
        let poll_interval = if mode == WatchMode::Poll {
            poll_interval
        } else {
            poll_interval.max(FALLBACK_MIN_INTERVAL)
        };
        let mut files: Vec<(PathBuf, Stamp)> = [UPGRADE_INFO_FILE, BATCH_FILE]
            .iter()
            .map(|f| data.join(f))
            .map(|p| (p.clone(), stamp(&p)))
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let spawned = std::thread::Builder::new()
            .name("wasmvisor-poll".into())
            .spawn(move || {
                while !tx.is_closed() {
                    std::thread::sleep(poll_interval);
                    let mut changed = false;
                    for (path, last) in files.iter_mut() {
                        let now = stamp(path);
                        if now != *last {
                            *last = now;
                            changed = true;
                        }
                    }
                    if changed && tx.send(()).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(
                "cannot start the polling thread: {e}; only the node's exit will be noticed"
            );
        }
        tracing::info!(dir = %data.display(), interval = %crate::duration::format(poll_interval), "watching for upgrade-info.json by polling");
        Watcher {
            source: Source::Poll { rx },
        }
    }

    /// Resolves when a watched file may have changed. Cancel-safe.
    pub async fn changed(&mut self) {
        match &mut self.source {
            Source::Inotify { rx, .. } => loop {
                match rx.recv().await {
                    Some(path)
                        if path
                            .file_name()
                            .is_some_and(|n| n == UPGRADE_INFO_FILE || n == BATCH_FILE) =>
                    {
                        return;
                    }
                    Some(_) => continue,
                    // The watcher thread is gone: never resolve again rather than spin.
                    None => std::future::pending::<()>().await,
                }
            },
            Source::Poll { rx } => {
                if rx.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

fn inotify(data: &Path) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<PathBuf>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Modify(_)
                | EventKind::Access(AccessKind::Close(AccessMode::Write))
        );
        if relevant {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })?;
    watcher.watch(data, RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}

/// Writes a probe file into the watched folder and waits for inotify to report it. The probe is
/// created exclusively, never through a link someone left under its name.
async fn probe(data: &Dir, rx: &mut mpsc::UnboundedReceiver<PathBuf>) -> bool {
    let written = crate::fs::create_fresh(data, PROBE_FILE)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"probe"));
    if written.is_err() {
        let _ = crate::fs::remove_if_present(data, PROBE_FILE);
        return true;
    }
    let seen = tokio::time::timeout(PROBE_TIMEOUT, async {
        while let Some(p) = rx.recv().await {
            if p.file_name().is_some_and(|n| n == PROBE_FILE) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    let _ = crate::fs::remove_if_present(data, PROBE_FILE);
    // Drain the probe's own removal events.
    while rx.try_recv().is_ok() {}
    seen
}
