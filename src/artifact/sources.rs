//! Fetching an artifact: the sources in order, each with retries (back-off, resuming from the
//! bytes already written) within its timeout, and the checksums over the bytes as written. A
//! `file://` URL (or an absolute path, as go-getter reads one) names a file on this host: the host
//! reads it itself, so no plugin is given any access to the filesystem for it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cap_std::fs::Dir;

use wasmvisor_plugin_support::getter::{Algorithm, Digest};

use super::Limits;
use super::download::{Digests, Download, WriteError};
use crate::cancel::Cancel;
use crate::plugin::{self, Artifact, FetchError, Host, Source};

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
    #[error(transparent)]
    Mismatch(Mismatch),
    /// A stop request ended the fetch; the partial file stays for the next start to resume.
    #[error("stopped: wasmvisor is shutting down")]
    Cancelled,
    /// No source delivered: why, source by source.
    #[error("cannot fetch {url}: {}", joined(.reasons))]
    Failed {
        url: String,
        reasons: Vec<SourceFailure>,
    },
    #[error("cannot open {file}: {source}")]
    Open { file: String, source: io::Error },
    #[error("cannot sync {file}: {source}")]
    Sync { file: String, source: io::Error },
    #[error("the download of {0} was lost by the plugin host")]
    Lost(String),
}

/// Bytes that do not match the checksum they were expected to have.
#[derive(Debug, thiserror::Error)]
#[error(
    "checksum mismatch for {url} (from source {source_name}): expected {expected}, got {actual}; nothing was installed"
)]
pub struct Mismatch {
    pub url: String,
    pub source_name: String,
    pub expected: String,
    pub actual: String,
}

/// Why one source (or the host, for a local file) did not deliver the artifact.
#[derive(Debug, thiserror::Error)]
pub enum SourceFailure {
    #[error("a file URL names a file on this host: write it file:///absolute/path")]
    HostlessFileUrl,
    #[error(transparent)]
    Local(LocalError),
    #[error(
        "{name}: the artifact is larger than {limit} bytes (the most a node binary with its libraries may take, or the free space left)"
    )]
    TooLarge { name: String, limit: u64 },
    /// The source's own final failure, in its words.
    #[error("{name}: {message}")]
    Refused { name: String, message: String },
    /// Retryable failures until the tries or the timeout ran out; the bytes stay to resume.
    #[error("{name}: {message} ({why})")]
    GaveUp {
        name: String,
        message: String,
        why: GaveUp,
    },
    #[error("{0}")]
    Plugin(plugin::PluginError),
    #[error("no configured source handles this URL")]
    NoSource,
}

/// What ended a source's retries.
#[derive(Debug, thiserror::Error)]
pub enum GaveUp {
    #[error("after {0} tries")]
    Tries(u32),
    #[error("its timeout of {} is spent after {attempt} tries", crate::duration::format(*.timeout))]
    Timeout { timeout: Duration, attempt: u32 },
}

/// Why a local file was not copied.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{}: {source}", .path.display())]
    Open {
        path: PathBuf,
        source: crate::fs::ReadError,
    },
    #[error("{}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("stopped")]
    Stopped,
    #[error(transparent)]
    Write(#[from] WriteError),
}

fn joined(reasons: &[SourceFailure]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
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
    let run = Run::new(host, artifact, expected, work, limits, cancel);
    if artifact.url.starts_with("file://")
        && !artifact.url.starts_with("file:///")
        && !artifact.url.starts_with("file://localhost/")
    {
        return Err(run.failed(vec![SourceFailure::HostlessFileUrl]));
    }
    if let Some(path) = local_path(&artifact.url) {
        return run.local(&path);
    }
    let mut reasons = Vec::new();
    let mut resumable = false;
    for source in sources {
        match run.source(source, &mut reasons)? {
            Tried::Fetched(fetched) => return Ok(fetched),
            Tried::Next(Partial::Worthless) => resumable = false,
            Tried::Next(Partial::Resumable) => resumable = true,
            Tried::Next(Partial::AsItWas) => {}
        }
    }
    // A transient failure keeps the bytes for a later resume; anything else leaves nothing.
    if !resumable {
        run.discard();
    }
    if reasons.is_empty() {
        reasons.push(SourceFailure::NoSource);
    }
    Err(run.failed(reasons))
}

/// How a source's tries ended.
enum Tried {
    Fetched(Fetched),
    /// It did not deliver: on to the next source, the partial file left as this says.
    Next(Partial),
}

/// What a source that did not deliver leaves of the partial file.
enum Partial {
    /// Nothing worth resuming (a final failure, an oversized artifact).
    Worthless,
    /// Bytes a later start may resume (its retries ran out).
    Resumable,
    /// As it was before this source (it does not handle the URL, or the plugin failed).
    AsItWas,
}

/// One fetch of one artifact: what every source's tries share.
struct Run<'a> {
    host: &'a Host,
    artifact: &'a Artifact,
    expected: &'a [Digest],
    algorithms: Vec<Algorithm>,
    work: &'a Dir,
    /// The limits, lowered to the free space of `work`.
    limits: Limits,
    cancel: &'a Cancel,
    /// The partial file's name in `work`, and the name shown in the progress.
    partial: String,
    label: String,
}

impl<'a> Run<'a> {
    fn new(
        host: &'a Host,
        artifact: &'a Artifact,
        expected: &'a [Digest],
        work: &'a Dir,
        limits: &Limits,
        cancel: &'a Cancel,
    ) -> Run<'a> {
        let key =
            hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(artifact.url.as_bytes())[..8]);
        Run {
            host,
            artifact,
            expected,
            algorithms: expected.iter().map(|d| d.algorithm).collect(),
            work,
            limits: limits.within_free_space(work),
            cancel,
            partial: format!("{key}.part"),
            label: artifact
                .url
                .rsplit('/')
                .next()
                .unwrap_or(&artifact.url)
                .to_string(),
        }
    }

    fn failed(&self, reasons: Vec<SourceFailure>) -> FetchFailure {
        FetchFailure::Failed {
            url: self.artifact.url.clone(),
            reasons,
        }
    }

    fn discard(&self) {
        let _ = crate::fs::remove_if_present(self.work, &self.partial);
    }

    /// Opens (or resumes) the partial file.
    fn open(&self) -> Result<Download, FetchFailure> {
        Download::open(
            self.work,
            &self.partial,
            &self.algorithms,
            self.limits.download,
            &self.label,
        )
        .map_err(|source| FetchFailure::Open {
            file: self.partial.clone(),
            source,
        })
    }

    /// The finished download, if every expected digest matches (else it is deleted).
    fn verified(&self, download: Download, source: &str) -> Result<Fetched, FetchFailure> {
        let (size, digests) = download.finish().map_err(|e| FetchFailure::Sync {
            file: self.partial.clone(),
            source: e,
        })?;
        for want in self.expected {
            let actual = digests.get(want.algorithm).unwrap_or_default();
            if !want.matches(actual) {
                self.discard();
                return Err(FetchFailure::Mismatch(Mismatch {
                    url: self.artifact.url.clone(),
                    source_name: source.to_string(),
                    expected: want.to_string(),
                    actual: format!("{}:{actual}", want.algorithm),
                }));
            }
        }
        if self.expected.is_empty() {
            tracing::warn!(url = %self.artifact.url, sha256 = %digests.sha256(), "artifact has no checksum to verify");
        }
        Ok(Fetched {
            name: self.partial.clone(),
            size,
            digests,
            source: source.to_string(),
        })
    }

    /// A file on this host, read by the host itself.
    fn local(&self, path: &Path) -> Result<Fetched, FetchFailure> {
        // Read again from the start: a local file has nothing to resume.
        self.discard();
        let mut download = self.open()?;
        if let Err(reason) = read_local(path, &mut download, self.cancel) {
            self.discard();
            if self.cancel.is_cancelled() {
                return Err(FetchFailure::Cancelled);
            }
            return Err(self.failed(vec![SourceFailure::Local(reason)]));
        }
        self.verified(download, "the local file")
    }

    /// Tries `source` (with back-off, within its timeout); why it did not deliver goes into
    /// `reasons`.
    fn source(
        &self,
        source: &Source,
        reasons: &mut Vec<SourceFailure>,
    ) -> Result<Tried, FetchFailure> {
        let name = &source.spec.name;
        let url = &self.artifact.url;
        let deadline = Instant::now() + source.spec.timeout;
        let call = plugin::Call {
            cancel: self.cancel.clone(),
            deadline: Some(deadline),
        };
        let mut backoff = self.limits.backoff;
        for attempt in 1..=self.limits.tries {
            if self.cancel.is_cancelled() {
                return Err(FetchFailure::Cancelled);
            }
            let download = self.open()?;
            if download.written() > 0 {
                tracing::info!(source = %name, bytes = download.written(), "resuming a partial download");
            }
            let (download, result) = self.host.fetch(source, self.artifact, download, &call);
            let Some(download) = download else {
                return Err(FetchFailure::Lost(url.clone()));
            };
            if download.over_limit {
                self.discard();
                reasons.push(SourceFailure::TooLarge {
                    name: name.clone(),
                    limit: self.limits.download,
                });
                return Ok(Tried::Next(Partial::Worthless));
            }
            let message = match result {
                Ok(Ok(())) => return self.verified(download, name).map(Tried::Fetched),
                Ok(Err(FetchError::Unsupported)) => {
                    tracing::debug!(source = %name, url = %url, "source does not handle this URL");
                    return Ok(Tried::Next(Partial::AsItWas));
                }
                Ok(Err(FetchError::Failed(message))) => {
                    tracing::warn!(source = %name, url = %url, "fetch failed: {message}");
                    let name = name.clone();
                    reasons.push(SourceFailure::Refused { name, message });
                    return Ok(Tried::Next(Partial::Worthless));
                }
                Ok(Err(FetchError::Retryable(message))) => message,
                Err(e) if matches!(e.kind, plugin::ErrorKind::Cancelled) => {
                    return Err(FetchFailure::Cancelled);
                }
                Err(e) => {
                    tracing::error!("{e}");
                    reasons.push(SourceFailure::Plugin(e));
                    return Ok(Tried::Next(Partial::AsItWas));
                }
            };
            if self.cancel.is_cancelled() {
                return Err(FetchFailure::Cancelled);
            }
            let (tries, timeout) = (self.limits.tries, source.spec.timeout);
            if let Some(why) = give_up(attempt, tries, timeout, deadline, backoff) {
                tracing::warn!(source = %name, attempt, "fetch failed, giving up ({why}): {message}");
                let name = name.clone();
                reasons.push(SourceFailure::GaveUp { name, message, why });
                return Ok(Tried::Next(Partial::Resumable));
            }
            tracing::warn!(source = %name, attempt, of = self.limits.tries, "fetch failed, will retry: {message}");
            if !self.cancel.sleep(backoff) {
                return Err(FetchFailure::Cancelled);
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        // Only with no tries at all (`tries` 0): nothing was asked of this source.
        Ok(Tried::Next(Partial::AsItWas))
    }
}

/// After a retryable failure of try `attempt` of `tries`: why not to try again, if so (the
/// tries are spent, or the source's `timeout` would be by the next back-off).
fn give_up(
    attempt: u32,
    tries: u32,
    timeout: Duration,
    deadline: Instant,
    backoff: Duration,
) -> Option<GaveUp> {
    let left = deadline.saturating_duration_since(Instant::now());
    if attempt == tries {
        Some(GaveUp::Tries(attempt))
    } else if left <= backoff {
        Some(GaveUp::Timeout { timeout, attempt })
    } else {
        None
    }
}

/// The file a `file://` URL (or an absolute path) names on this host.
fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        // `file:///path`, or `file://localhost/path`.
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        return Some(wasmvisor_plugin_support::getter::percent_decode(path).into());
    }
    url.starts_with('/').then(|| url.into())
}

/// Copies the regular file `path` into `download`, in chunks (a stop request is noticed
/// between them).
fn read_local(path: &Path, download: &mut Download, cancel: &Cancel) -> Result<(), LocalError> {
    use std::io::Read;
    let mut file = crate::fs::open_regular_path(path).map_err(|source| LocalError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if cancel.is_cancelled() {
            return Err(LocalError::Stopped);
        }
        let n = file.read(&mut buf).map_err(|source| LocalError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            return Ok(());
        }
        download.append(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests;
