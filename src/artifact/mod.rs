//! The host side of downloads: an artifact a resolver chose is fetched by the configured sources
//! (`sources.rs`, into a file hashed as it grows: `download.rs`), verified (its checksums:
//! `checksum.rs`), unpacked safely (`unpack/`, within the bounds of `guard/`) and installed as
//! `upgrades/<dir>/bin/<DAEMON_NAME>` (`install.rs`).
//!
//! An artifact's URL is read as go-getter reads it (Cosmovisor's plans are written for
//! go-getter): its `?checksum=` in any of go-getter's forms (a checksum file is fetched by the
//! same sources first), `?archive=` and `//subfolder` are taken out before the sources see the
//! URL.
//!
//! Unpacking accepts regular files and directories only (no symlinks, hard links or devices),
//! refuses absolute and `..` paths, caps the unpacked size and the number of entries (no
//! decompression bombs), and writes through a capability handle of the staging folder, so no
//! entry can land outside it. The binary is moved into place last: its presence means the
//! installation is complete.

mod checksum;
mod download;
mod guard;
mod install;
pub mod provenance;
mod sources;
mod unpack;

use std::io;
use std::time::Duration;

use cap_std::fs::Dir;

use wasmvisor_plugin_support::getter::{self, Archive, Format, GetterUrl};

use crate::cancel::Cancel;
use crate::config::Config;
use crate::plugin::{ArchiveFormat, Artifact, PluginSet};
use crate::tree::{Layout, Plan};
pub use checksum::ChecksumError;
pub use download::Download;
pub use install::InstallError;
pub use sources::{FetchFailure, Mismatch};

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
    /// A source delivered bytes that do not match the checksum: no other artifact is tried.
    #[error(transparent)]
    Mismatch(Mismatch),
    /// wasmvisor's downloads folder (or the upgrade's folder in it) could not be made.
    #[error("{path}: {source}")]
    Downloads { path: String, source: io::Error },
    /// No artifact was staged: why, artifact by artifact.
    #[error("{}", joined(.0))]
    Failed(Vec<ArtifactFailure>),
}

/// Why one artifact of the resolver's list was not staged (the next one is tried).
#[derive(Debug, thiserror::Error)]
pub enum ArtifactFailure {
    /// Its URL is not one go-getter reads (the getter's words).
    #[error("{url}: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: {source}")]
    Checksum { url: String, source: ChecksumError },
    #[error("{url} has no checksum and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on")]
    NoChecksum { url: String },
    #[error(transparent)]
    Fetch(FetchFailure),
    #[error("{url}: {source}")]
    Install { url: String, source: InstallError },
}

fn joined(reasons: &[ArtifactFailure]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Fetches the first artifact that a source delivers and verifies, and installs it into
/// `upgrades/<dir>/bin/<daemon>`, recording the plan it was staged for (`provenance.rs`). Downloads wait in `cosmovisor/.wasmvisor-downloads/<dir>`,
/// a folder of wasmvisor's own (a symlink there is refused, never followed).
pub fn stage(
    plugins: &PluginSet,
    cfg: &Config,
    layout: &Layout,
    (dir, plan): (&str, &Plan),
    artifacts: &[Artifact],
    cancel: &Cancel,
) -> Result<(), StageError> {
    let downloads = crate::fs::own_dir(&layout.root, DOWNLOADS_DIR).map_err(|source| {
        StageError::Downloads {
            path: DOWNLOADS_DIR.to_string(),
            source,
        }
    })?;
    let work = crate::fs::own_dir(&downloads, dir).map_err(|source| StageError::Downloads {
        path: format!("{DOWNLOADS_DIR}/{dir}"),
        source,
    })?;
    let stager = Stager {
        plugins,
        cfg,
        layout,
        dir,
        work: &work,
        limits: Limits::default(),
        cancel,
    };
    let mut reasons = Vec::new();
    for a in artifacts {
        match stager.artifact(a)? {
            Ok(beside) => {
                drop(work);
                let _ = downloads.remove_dir_all(dir);
                if let Err(e) = provenance::record(layout, (dir, plan), beside) {
                    tracing::warn!(upgrade = %plan.name, "cannot record the plan upgrades/{dir}/bin/{} was staged for ({e}): it is taken as staged by hand if the plan changes", cfg.name);
                }
                return Ok(());
            }
            Err(reason) => reasons.push(reason),
        }
    }
    Err(StageError::Failed(reasons))
}

/// What staging each artifact of the list shares.
struct Stager<'a> {
    plugins: &'a PluginSet,
    cfg: &'a Config,
    layout: &'a Layout,
    dir: &'a str,
    /// The upgrade's folder of downloads.
    work: &'a Dir,
    limits: Limits,
    cancel: &'a Cancel,
}

impl Stager<'_> {
    /// Fetches, verifies and installs `a`. The outer error ends the staging (a stop request, a
    /// checksum mismatch); the inner one is why this artifact failed, and the next is tried.
    /// Staged, it returns what was installed beside the binary.
    fn artifact(&self, a: &Artifact) -> Result<Result<Vec<String>, ArtifactFailure>, StageError> {
        let url = match getter::parse_url(&a.url) {
            Ok(url) => url,
            Err(reason) => {
                let url = a.url.clone();
                return Ok(Err(ArtifactFailure::Url { url, reason }));
            }
        };
        let (plugins, work, limits, cancel) = (self.plugins, self.work, &self.limits, self.cancel);
        let expected = match checksum::expected(plugins, a, &url, work, limits, cancel) {
            Ok(digests) => digests,
            Err(ChecksumError::Cancelled) => return Err(StageError::Cancelled),
            Err(source) => {
                let url = a.url.clone();
                return Ok(Err(ArtifactFailure::Checksum { url, source }));
            }
        };
        if self.cfg.download_must_have_checksum && expected.is_empty() {
            let url = a.url.clone();
            return Ok(Err(ArtifactFailure::NoChecksum { url }));
        }
        for weak in expected.iter().filter(|d| d.algorithm.is_weak()) {
            tracing::warn!(url = %a.url, "{} checksum: accepted as Cosmovisor accepts it, but {} is broken for collisions; ask for sha256 (a policy can demand it: the allowlist plugin's min-checksum)", weak.algorithm, weak.algorithm);
        }
        let to_fetch = Artifact {
            url: url.url.clone(),
            checksum: a.checksum.clone(),
            format: a.format,
        };
        let fetched = match sources::fetch(
            &plugins.host,
            &plugins.sources,
            &to_fetch,
            &expected,
            work,
            limits,
            cancel,
        ) {
            Ok(f) => f,
            Err(FetchFailure::Cancelled) => return Err(StageError::Cancelled),
            Err(FetchFailure::Mismatch(m)) => return Err(StageError::Mismatch(m)),
            Err(e) => return Ok(Err(ArtifactFailure::Fetch(e))),
        };
        tracing::info!(url = %to_fetch.url, bytes = fetched.size, sha256 = %fetched.digests.sha256(), verified = %expected.iter().map(|d| d.algorithm.name()).collect::<Vec<_>>().join(","), source = %fetched.source, "artifact fetched");
        let how = unpacking(a, &url);
        let (root, name) = (&self.layout.root, &fetched.name);
        let installed = install::install(root, work, name, &how, self.dir, &self.cfg.name, limits);
        let _ = crate::fs::remove_if_present(work, name);
        Ok(installed.map_err(|source| ArtifactFailure::Install {
            url: a.url.clone(),
            source,
        }))
    }
}

/// How the fetched file of `a` is to be unpacked: the resolver's format, else the URL's.
fn unpacking(a: &Artifact, url: &GetterUrl) -> install::Unpack {
    install::Unpack {
        archive: match a.format {
            ArchiveFormat::Auto => url.archive,
            ArchiveFormat::Raw => Archive::Off,
            ArchiveFormat::TarGz => Archive::Format(Format::TarGz),
            ArchiveFormat::Zip => Archive::Format(Format::Zip),
        },
        extension: Format::from_path(&getter::url_path(&url.url)),
        subdir: url.subdir.clone(),
    }
}

#[cfg(test)]
mod tests;
