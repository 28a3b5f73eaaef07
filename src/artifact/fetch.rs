//! Fetching an artifact: the sources in order, each with retries (back-off, resuming from the
//! bytes already written) within its timeout, and the checksum over the bytes as written.

use std::time::{Duration, Instant};

use cap_std::fs::Dir;

use super::Limits;
use super::output::Download;
use crate::cancel::Cancel;
use crate::plugin::{self, Artifact, FetchError, HashAlgorithm, Host, Source};

/// A downloaded, verified artifact file.
#[derive(Debug)]
pub struct Fetched {
    /// The file's name in the work folder.
    pub name: String,
    pub size: u64,
    pub sha256_or_512: String,
    pub source: String,
}

/// Why an artifact was not fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchFailure {
    /// The bytes do not match the expected digest: no other source is asked.
    #[error(
        "checksum mismatch for {url} (from source {source_name}): expected {expected}, got {actual}; nothing was installed"
    )]
    Mismatch {
        url: String,
        source_name: String,
        expected: String,
        actual: String,
    },
    /// A stop request ended the fetch; the partial file stays for the next start to resume.
    #[error("stopped: wasmvisor is shutting down")]
    Cancelled,
    #[error("cannot fetch {url}: {reasons}")]
    Failed { url: String, reasons: String },
    #[error("{0}")]
    Io(String),
}

/// Runs the sources in order until one fetches `artifact` and its checksum matches. The partial
/// file lives in `work` (named after the URL), so a restart resumes it after a transient
/// failure; a final failure (a wrong checksum, an oversized artifact, every source refusing)
/// deletes it. Each source's `timeout` bounds all of its tries, back-off included.
pub fn fetch(
    host: &Host,
    sources: &[Source],
    artifact: &Artifact,
    work: &Dir,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Fetched, FetchFailure> {
    let sha512 = matches!(
        artifact.checksum.as_ref().map(|c| c.algorithm),
        Some(HashAlgorithm::Sha512)
    );
    let key = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(artifact.url.as_bytes())[..8]);
    let partial = format!("{key}.part");
    let label = artifact
        .url
        .rsplit('/')
        .next()
        .unwrap_or(&artifact.url)
        .to_string();
    let limits = limits.within_free_space(work);
    let discard = || {
        let _ = crate::fs::remove_if_present(work, &partial);
    };
    let mut reasons = Vec::new();
    let mut resumable = false;
    'sources: for source in sources {
        let name = &source.spec.name;
        let deadline = Instant::now() + source.spec.timeout;
        let call = plugin::Call {
            cancel: cancel.clone(),
            deadline: Some(deadline),
        };
        let mut backoff = limits.backoff;
        for attempt in 1..=limits.tries {
            if cancel.is_cancelled() {
                return Err(FetchFailure::Cancelled);
            }
            let download = Download::open(work, &partial, sha512, limits.download, &label)
                .map_err(|e| FetchFailure::Io(format!("cannot open {partial}: {e}")))?;
            if download.written() > 0 {
                tracing::info!(source = %name, bytes = download.written(), "resuming a partial download");
            }
            let (download, result) = host.fetch(source, artifact, download, &call);
            let Some(download) = download else {
                return Err(FetchFailure::Io(format!(
                    "the download of {} was lost by the plugin host",
                    artifact.url
                )));
            };
            if download.over_limit {
                discard();
                reasons.push(format!(
                    "{name}: the artifact is larger than {} bytes (the most a node binary with its libraries may take, or the free space left)",
                    limits.download
                ));
                resumable = false;
                continue 'sources;
            }
            match result {
                Ok(Ok(())) => {
                    let (size, digest) = download
                        .finish()
                        .map_err(|e| FetchFailure::Io(format!("cannot sync {partial}: {e}")))?;
                    if let Some(expected) = &artifact.checksum {
                        let expected = expected.hex.to_ascii_lowercase();
                        if expected != digest {
                            discard();
                            return Err(FetchFailure::Mismatch {
                                url: artifact.url.clone(),
                                source_name: name.clone(),
                                expected,
                                actual: digest,
                            });
                        }
                    } else {
                        tracing::warn!(url = %artifact.url, sha256 = %digest, "artifact has no checksum to verify");
                    }
                    return Ok(Fetched {
                        name: partial,
                        size,
                        sha256_or_512: digest,
                        source: name.clone(),
                    });
                }
                Ok(Err(FetchError::Unsupported)) => {
                    tracing::debug!(source = %name, url = %artifact.url, "source does not handle this URL");
                    continue 'sources;
                }
                Ok(Err(FetchError::Failed(m))) => {
                    tracing::warn!(source = %name, url = %artifact.url, "fetch failed: {m}");
                    reasons.push(format!("{name}: {m}"));
                    resumable = false;
                    continue 'sources;
                }
                Ok(Err(FetchError::Retryable(m))) => {
                    if cancel.is_cancelled() {
                        return Err(FetchFailure::Cancelled);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if attempt == limits.tries || left <= backoff {
                        let why = if attempt == limits.tries {
                            format!("after {attempt} tries")
                        } else {
                            format!(
                                "its timeout of {} is spent after {attempt} tries",
                                crate::duration::format(source.spec.timeout)
                            )
                        };
                        tracing::warn!(source = %name, attempt, "fetch failed, giving up ({why}): {m}");
                        reasons.push(format!("{name}: {m} ({why})"));
                        resumable = true;
                        continue 'sources;
                    }
                    tracing::warn!(source = %name, attempt, of = limits.tries, "fetch failed, will retry: {m}");
                    if !cancel.sleep(backoff) {
                        return Err(FetchFailure::Cancelled);
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(e) if matches!(e.kind, plugin::ErrorKind::Cancelled) => {
                    return Err(FetchFailure::Cancelled);
                }
                Err(e) => {
                    tracing::error!("{e}");
                    reasons.push(e.to_string());
                    continue 'sources;
                }
            }
        }
    }
    // A transient failure keeps the bytes for a later resume; anything else leaves nothing.
    if !resumable {
        discard();
    }
    if reasons.is_empty() {
        reasons.push("no configured source handles this URL".into());
    }
    Err(FetchFailure::Failed {
        url: artifact.url.clone(),
        reasons: reasons.join("; "),
    })
}
