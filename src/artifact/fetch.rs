//! Fetching an artifact: the sources in order, each with retries (back-off, resuming from the
//! bytes already written) within its timeout, and the checksums over the bytes as written. A
//! `file://` URL (or an absolute path, as go-getter reads one) names a file on this host: the host
//! reads it itself, so no plugin is given any access to the filesystem for it.

use std::time::{Duration, Instant};

use cap_std::fs::Dir;

use wasmvisor_plugin_support::getter::{Algorithm, Digest};

use super::Limits;
use super::output::{Digests, Download};
use crate::cancel::Cancel;
use crate::plugin::{self, Artifact, FetchError, Host, Sink, Source};

/// A downloaded, verified artifact file.
#[derive(Debug)]
pub struct Fetched {
    /// The file's name in the work folder.
    pub name: String,
    pub size: u64,
    pub digests: Digests,
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

/// Runs the sources in order until one fetches `artifact` and every `expected` digest matches.
/// The partial file lives in `work` (named after the URL), so a restart resumes it after a
/// transient failure; a final failure (a wrong checksum, an oversized artifact, every source
/// refusing) deletes it. Each source's `timeout` bounds all of its tries, back-off included.
pub fn fetch(
    host: &Host,
    sources: &[Source],
    artifact: &Artifact,
    expected: &[Digest],
    work: &Dir,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Fetched, FetchFailure> {
    let algorithms: Vec<Algorithm> = expected.iter().map(|d| d.algorithm).collect();
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
    let verified = |download: Download, source: &str| -> Result<Fetched, FetchFailure> {
        let (size, digests) = download
            .finish()
            .map_err(|e| FetchFailure::Io(format!("cannot sync {partial}: {e}")))?;
        for want in expected {
            let actual = digests.get(want.algorithm).unwrap_or_default();
            if !want.matches(actual) {
                discard();
                return Err(FetchFailure::Mismatch {
                    url: artifact.url.clone(),
                    source_name: source.to_string(),
                    expected: want.to_string(),
                    actual: format!("{}:{actual}", want.algorithm),
                });
            }
        }
        if expected.is_empty() {
            tracing::warn!(url = %artifact.url, sha256 = %digests.sha256(), "artifact has no checksum to verify");
        }
        Ok(Fetched {
            name: partial.clone(),
            size,
            digests,
            source: source.to_string(),
        })
    };
    if artifact.url.starts_with("file://")
        && !artifact.url.starts_with("file:///")
        && !artifact.url.starts_with("file://localhost/")
    {
        return Err(FetchFailure::Failed {
            url: artifact.url.clone(),
            reasons: "a file URL names a file on this host: write it file:///absolute/path".into(),
        });
    }
    if let Some(path) = local_path(&artifact.url) {
        // Read again from the start: a local file has nothing to resume.
        discard();
        let mut download = Download::open(work, &partial, &algorithms, limits.download, &label)
            .map_err(|e| FetchFailure::Io(format!("cannot open {partial}: {e}")))?;
        if let Err(reason) = read_local(&path, &mut download, cancel) {
            discard();
            if cancel.is_cancelled() {
                return Err(FetchFailure::Cancelled);
            }
            return Err(FetchFailure::Failed {
                url: artifact.url.clone(),
                reasons: reason,
            });
        }
        return verified(download, "the local file");
    }
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
            let download = Download::open(work, &partial, &algorithms, limits.download, &label)
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
                Ok(Ok(())) => return verified(download, name),
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

/// The file a `file://` URL (or an absolute path) names on this host.
fn local_path(url: &str) -> Option<std::path::PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        // `file:///path`, or `file://localhost/path`.
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        return Some(wasmvisor_plugin_support::getter::percent_decode(path).into());
    }
    url.starts_with('/').then(|| url.into())
}

/// Copies the regular file `path` into `download`, in chunks (a stop request is noticed
/// between them).
fn read_local(
    path: &std::path::Path,
    download: &mut Download,
    cancel: &Cancel,
) -> Result<(), String> {
    use std::io::Read;
    let shown = path.display();
    let mut file = crate::fs::open_regular_path(path).map_err(|e| format!("{shown}: {e}"))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if cancel.is_cancelled() {
            return Err("stopped".into());
        }
        let n = file.read(&mut buf).map_err(|e| format!("{shown}: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        download.write(&buf[..n])?;
    }
}
