//! The digests an artifact must have: the resolver's checksum, and the URL's `?checksum=` in any
//! of go-getter's forms — a checksum file is fetched by the same sources and its line for the
//! artifact read.

use cap_std::fs::Dir;

use wasmvisor_plugin_support::getter::{self, Checksum, Digest, GetterUrl};

use super::Limits;
use super::sources::{self, FetchFailure};
use crate::cancel::Cancel;
use crate::plugin::{ArchiveFormat, Artifact, HashAlgorithm, PluginSet};

/// The largest checksum file read.
const MAX_CHECKSUM_FILE: u64 = 1 << 20;

/// Why the digests of an artifact are not known.
#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    /// A stop request ended the checksum file's fetch (`stage` ends with it: never shown as an
    /// artifact's failure).
    #[error("stopped: wasmvisor is shutting down")]
    Cancelled,
    /// The resolver's checksum is not one go-getter reads (the getter's words).
    #[error("{0}")]
    Digest(String),
    #[error("the checksum file {file}: {reason}")]
    File {
        file: String,
        reason: ChecksumFileError,
    },
}

/// Why a checksum file gave no digest.
#[derive(Debug, thiserror::Error)]
pub enum ChecksumFileError {
    /// Its URL, or its content, is not what go-getter reads (the getter's words).
    #[error("{0}")]
    Getter(String),
    #[error("its own checksum is another checksum file")]
    Nested,
    #[error("{0}")]
    Fetch(FetchFailure),
    #[error("it vanished")]
    Vanished,
    #[error("{0}")]
    Read(crate::fs::ReadError),
}

/// The digests an artifact must have: the resolver's checksum and the URL's (a checksum file is
/// fetched and read for it).
pub(super) fn expected(
    plugins: &PluginSet,
    artifact: &Artifact,
    url: &GetterUrl,
    work: &Dir,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Vec<Digest>, ChecksumError> {
    let mut digests = Vec::new();
    if let Some(c) = &artifact.checksum {
        let kind = match c.algorithm {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        };
        digests.push(Digest::typed(kind, &c.hex).map_err(ChecksumError::Digest)?);
    }
    match &url.checksum {
        Some(Checksum::Digest(d)) => digests.push(d.clone()),
        Some(Checksum::File(file)) => {
            let read = checksum_file(plugins, file, &url.url, work, limits, cancel);
            digests.push(read.map_err(|reason| match reason {
                ChecksumFileError::Fetch(FetchFailure::Cancelled) => ChecksumError::Cancelled,
                reason => ChecksumError::File {
                    file: file.clone(),
                    reason,
                },
            })?);
        }
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
) -> Result<Digest, ChecksumFileError> {
    let url = getter::parse_url(file).map_err(ChecksumFileError::Getter)?;
    let own = match url.checksum {
        None => Vec::new(),
        Some(Checksum::Digest(d)) => vec![d],
        Some(Checksum::File(_)) => return Err(ChecksumFileError::Nested),
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
    let fetched = sources::fetch(
        &plugins.host,
        &plugins.sources,
        &artifact,
        &own,
        work,
        &small,
        cancel,
    )
    .map_err(ChecksumFileError::Fetch)?;
    let text = crate::fs::read_regular(
        work,
        &fetched.name,
        MAX_CHECKSUM_FILE,
        crate::fs::Follow::No,
    );
    let _ = crate::fs::remove_if_present(work, &fetched.name);
    let text = match text {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => return Err(ChecksumFileError::Vanished),
        Err(e) => return Err(ChecksumFileError::Read(e)),
    };
    let digest = getter::checksum_from_file(
        &text,
        &getter::url_path(target),
        &getter::url_path(&url.url),
    )
    .map_err(ChecksumFileError::Getter)?;
    tracing::info!(checksum_file = %file, digest = %digest, "checksum read from the checksum file");
    Ok(digest)
}
