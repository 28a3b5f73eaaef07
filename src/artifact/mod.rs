//! The host side of downloads: an artifact a resolver chose is fetched by the configured sources
//! (`fetch.rs`, into a file hashed as it grows: `output.rs`), verified, unpacked safely
//! (`unpack.rs`) and installed as `upgrades/<dir>/bin/<DAEMON_NAME>` (`install.rs`).
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

mod fetch;
mod guard;
mod install;
mod output;
mod unpack;

use std::time::Duration;

use cap_std::fs::Dir;

use wasmvisor_plugin_support::getter::{self, Archive, Checksum, Digest, Format, GetterUrl};

use crate::cancel::Cancel;
use crate::config::Config;
use crate::plugin::{ArchiveFormat, Artifact, HashAlgorithm, PluginSet};
use crate::tree::Layout;
pub use fetch::FetchFailure;
pub use output::Download;

/// The largest checksum file read.
const MAX_CHECKSUM_FILE: u64 = 1 << 20;

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
        let url = getter::parse_url(&a.url).map_err(StageError::Failed);
        let (url, expected) = match url.and_then(|u| {
            expected(plugins, a, &u, &work, &limits, cancel).map(|digests| (u, digests))
        }) {
            Ok(found) => found,
            Err(StageError::Cancelled) => return Err(StageError::Cancelled),
            Err(StageError::Failed(why)) => {
                reasons.push(format!("{}: {why}", a.url));
                continue;
            }
        };
        if cfg.download_must_have_checksum && expected.is_empty() {
            reasons.push(format!(
                "{} has no checksum and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on",
                a.url
            ));
            continue;
        }
        for weak in expected.iter().filter(|d| d.algorithm.is_weak()) {
            tracing::warn!(url = %a.url, "{} checksum: accepted as Cosmovisor accepts it, but {} is broken for collisions; ask for sha256 (a policy can demand it: the allowlist plugin's min-checksum)", weak.algorithm, weak.algorithm);
        }
        let to_fetch = Artifact {
            url: url.url.clone(),
            checksum: a.checksum.clone(),
            format: a.format,
        };
        let fetched = match fetch::fetch(
            plugins.host,
            &plugins.sources,
            &to_fetch,
            &expected,
            &work,
            &limits,
            cancel,
        ) {
            Ok(f) => f,
            Err(FetchFailure::Cancelled) => return Err(StageError::Cancelled),
            Err(e @ FetchFailure::Mismatch { .. }) => return Err(failed(e.to_string())),
            Err(e) => {
                reasons.push(e.to_string());
                continue;
            }
        };
        tracing::info!(url = %to_fetch.url, bytes = fetched.size, sha256 = %fetched.digests.sha256(), verified = %expected.iter().map(|d| d.algorithm.name()).collect::<Vec<_>>().join(","), source = %fetched.source, "artifact fetched");
        let how = install::Unpack {
            archive: match a.format {
                ArchiveFormat::Auto => url.archive,
                ArchiveFormat::Raw => Archive::Off,
                ArchiveFormat::TarGz => Archive::Format(Format::TarGz),
                ArchiveFormat::Zip => Archive::Format(Format::Zip),
            },
            extension: Format::from_path(&getter::url_path(&url.url)),
            subdir: url.subdir.clone(),
        };
        let installed = install::install(
            &layout.root,
            &work,
            &fetched.name,
            &how,
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

/// The digests an artifact must have: the resolver's checksum and the URL's (a checksum file is
/// fetched and read for it).
fn expected(
    plugins: &PluginSet,
    artifact: &Artifact,
    url: &GetterUrl,
    work: &Dir,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Vec<Digest>, StageError> {
    let mut digests = Vec::new();
    if let Some(c) = &artifact.checksum {
        let kind = match c.algorithm {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        };
        digests.push(Digest::typed(kind, &c.hex).map_err(StageError::Failed)?);
    }
    match &url.checksum {
        Some(Checksum::Digest(d)) => digests.push(d.clone()),
        Some(Checksum::File(file)) => digests.push(checksum_file(
            plugins, file, &url.url, work, limits, cancel,
        )?),
        None => {}
    }
    Ok(digests)
}

/// Fetches the checksum file at `file` through the same sources (its own `?checksum=`, if it
/// has one, verified) and reads the line for `target` in it.
fn checksum_file(
    plugins: &PluginSet,
    file: &str,
    target: &str,
    work: &Dir,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Digest, StageError> {
    let fail = |why: String| StageError::Failed(format!("the checksum file {file}: {why}"));
    let url = getter::parse_url(file).map_err(fail)?;
    let own = match url.checksum {
        None => Vec::new(),
        Some(Checksum::Digest(d)) => vec![d],
        Some(Checksum::File(_)) => {
            return Err(fail("its own checksum is another checksum file".into()));
        }
    };
    let artifact = Artifact {
        url: url.url.clone(),
        checksum: None,
        format: ArchiveFormat::Raw,
    };
    let small = Limits {
        download: MAX_CHECKSUM_FILE,
        ..limits.clone()
    };
    let fetched = match fetch::fetch(
        plugins.host,
        &plugins.sources,
        &artifact,
        &own,
        work,
        &small,
        cancel,
    ) {
        Ok(f) => f,
        Err(FetchFailure::Cancelled) => return Err(StageError::Cancelled),
        Err(e) => return Err(fail(e.to_string())),
    };
    let text = crate::fs::read_regular(
        work,
        &fetched.name,
        MAX_CHECKSUM_FILE,
        crate::fs::Follow::No,
    );
    let _ = crate::fs::remove_if_present(work, &fetched.name);
    let text = match text {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => return Err(fail("it vanished".into())),
        Err(e) => return Err(fail(e.to_string())),
    };
    let digest = getter::checksum_from_file(
        &text,
        &getter::url_path(target),
        &getter::url_path(&url.url),
    )
    .map_err(fail)?;
    tracing::info!(checksum_file = %file, digest = %digest, "checksum read from the checksum file");
    Ok(digest)
}
