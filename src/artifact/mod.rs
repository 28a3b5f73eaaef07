//! The host side of downloads: an artifact a resolver chose is fetched by the configured sources
//! (`fetch.rs`, into a file hashed as it grows: `output.rs`), verified, unpacked safely
//! (`unpack.rs`) and installed as `upgrades/<dir>/bin/<DAEMON_NAME>` (`install.rs`).
//!
//! Unpacking accepts regular files and directories only (no symlinks, hard links or devices),
//! refuses absolute and `..` paths, caps the unpacked size and the number of entries (no
//! decompression bombs), and writes through a capability handle of the staging folder, so no
//! entry can land outside it. The binary is moved into place last: its presence means the
//! installation is complete.

mod fetch;
mod install;
mod output;
mod unpack;

use std::time::Duration;

use cap_std::fs::Dir;

use crate::cancel::Cancel;
use crate::config::Config;
use crate::plugin::{Artifact, PluginSet};
use crate::tree::Layout;
pub use fetch::FetchFailure;
pub use output::Download;

/// Where partial downloads wait, per upgrade folder, under the cosmovisor root.
pub const DOWNLOADS_DIR: &str = ".wasmvisor-downloads";

/// Bounds on one artifact.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes a source may write (also bounded by the free space where they are written).
    pub download: u64,
    /// Bytes an archive may unpack to (also bounded by the free space of the tree).
    pub unpacked: u64,
    /// Entries an archive may hold.
    pub entries: u64,
    /// Tries per source for retryable failures.
    pub tries: u32,
    /// First back-off between tries (doubles each time).
    pub backoff: Duration,
}

/// The most a node binary, its libraries and their archive are allowed to take: real ones are
/// tens to a few hundred MiB, so this refuses a decompression bomb long before a disk fills.
pub const MAX_ARTIFACT: u64 = 2 << 30;
/// Room always left free on the disk for the node itself (at most a twentieth of a small disk).
pub const FREE_MARGIN: u64 = 256 << 20;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            download: MAX_ARTIFACT,
            unpacked: MAX_ARTIFACT,
            entries: 100_000,
            tries: 5,
            backoff: Duration::from_millis(500),
        }
    }
}

impl Limits {
    /// These limits, lowered to what the disk holding `dir` can take while keeping
    /// [`FREE_MARGIN`] free.
    pub fn within_free_space(&self, dir: &Dir) -> Limits {
        let free = match crate::fs::space(dir) {
            Ok((free, total)) => free.saturating_sub(FREE_MARGIN.min(total / 20)),
            Err(_) => u64::MAX,
        };
        Limits {
            download: self.download.min(free),
            unpacked: self.unpacked.min(free),
            ..self.clone()
        }
    }
}

/// Why a binary was not staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A stop request ended it; what was downloaded so far stays for the next start.
    #[error("stopped: wasmvisor is shutting down")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

/// Fetches the first artifact that a source delivers and verifies, and installs it into
/// `upgrades/<dir>/bin/<daemon>`. Downloads wait in `cosmovisor/.wasmvisor-downloads/<dir>`,
/// a folder of wasmvisor's own (a symlink there is refused, never followed).
pub fn stage(
    plugins: &PluginSet,
    cfg: &Config,
    layout: &Layout,
    dir: &str,
    artifacts: &[Artifact],
    cancel: &Cancel,
) -> Result<(), StageError> {
    let limits = Limits::default();
    let failed = |m: String| StageError::Failed(m);
    let downloads = crate::fs::own_dir(&layout.root, DOWNLOADS_DIR)
        .map_err(|e| failed(format!("{DOWNLOADS_DIR}: {e}")))?;
    let work = crate::fs::own_dir(&downloads, dir)
        .map_err(|e| failed(format!("{DOWNLOADS_DIR}/{dir}: {e}")))?;
    let mut reasons = Vec::new();
    for a in artifacts {
        if cfg.download_must_have_checksum && a.checksum.is_none() {
            reasons.push(format!(
                "{} has no checksum and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on",
                a.url
            ));
            continue;
        }
        let fetched = match fetch::fetch(plugins.host, &plugins.sources, a, &work, &limits, cancel)
        {
            Ok(f) => f,
            Err(FetchFailure::Cancelled) => return Err(StageError::Cancelled),
            Err(e @ FetchFailure::Mismatch { .. }) => return Err(failed(e.to_string())),
            Err(e) => {
                reasons.push(e.to_string());
                continue;
            }
        };
        tracing::info!(url = %a.url, bytes = fetched.size, digest = %fetched.sha256_or_512, source = %fetched.source, "artifact fetched and verified");
        let installed = install::install(
            &layout.root,
            &work,
            &fetched.name,
            a.format,
            dir,
            &cfg.name,
            &limits,
        );
        let _ = crate::fs::remove_if_present(&work, &fetched.name);
        match installed {
            Ok(()) => {
                drop(work);
                let _ = downloads.remove_dir_all(dir);
                return Ok(());
            }
            Err(e) => reasons.push(format!("{}: {e}", a.url)),
        }
    }
    Err(failed(reasons.join("; ")))
}
