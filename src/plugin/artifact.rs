//! Fetching and installing an artifact: the sources in order with retries and resume, the
//! checksum over the bytes as written, safe unpacking and the installation of
//! `upgrades/<dir>/bin/<DAEMON_NAME>`.
//!
//! Unpacking accepts regular files and directories only (no symlinks, hard links or devices),
//! refuses absolute and `..` paths, caps the unpacked size and the number of entries (no
//! decompression bombs), and writes through a capability handle of the staging folder, so no
//! entry can land outside it. The binary is moved into place last: its presence means the
//! installation is complete.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use cap_std::fs::Dir;

use super::{ArchiveFormat, Artifact, FetchError, HashAlgorithm, Host, Loaded, Output};

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
        let free = match crate::fsutil::space(dir) {
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
    sources: &[Loaded],
    artifact: &Artifact,
    work: &Dir,
    limits: &Limits,
    cancel: &super::Cancel,
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
        let _ = crate::fsutil::remove_if_present(work, &partial);
    };
    let mut reasons = Vec::new();
    let mut resumable = false;
    'sources: for source in sources {
        let name = &source.spec.name;
        let deadline = Instant::now() + source.spec.timeout;
        let call = super::Call {
            cancel: cancel.clone(),
            deadline: Some(deadline),
        };
        let mut backoff = limits.backoff;
        for attempt in 1..=limits.tries {
            if cancel.is_cancelled() {
                return Err(FetchFailure::Cancelled);
            }
            let output = Output::open(work, &partial, sha512, limits.download, &label)
                .map_err(|e| FetchFailure::Io(format!("cannot open {partial}: {e}")))?;
            if output.written() > 0 {
                tracing::info!(source = %name, bytes = output.written(), "resuming a partial download");
            }
            let (output, result) = host.fetch(source, artifact, output, &call);
            if output.over_limit {
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
                    let (_, size, digest) = output
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
                Err(e) if matches!(e.kind, super::ErrorKind::Cancelled) => {
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

/// Unpacks the file `name` of `work` (per `format`) and installs the binary as
/// `upgrades/<dir>/bin/<daemon>` under `root`, with any other files of the archive beside it
/// (existing ones are kept).
pub fn install(
    root: &Dir,
    work: &Dir,
    name: &str,
    format: ArchiveFormat,
    dir: &str,
    daemon: &str,
    limits: &Limits,
) -> Result<(), String> {
    let upgrades = root
        .create_dir_all(crate::layout::UPGRADES_DIR)
        .and_then(|()| root.open_dir(crate::layout::UPGRADES_DIR))
        .map_err(|e| format!("cannot open upgrades/: {e}"))?;
    let staging_name = format!(".{dir}.unpack");
    let _ = upgrades.remove_dir_all(&staging_name);
    let limits = limits.within_free_space(&upgrades);
    let result = (|| {
        let staging = crate::fsutil::own_dir(&upgrades, &staging_name)
            .map_err(|e| format!("cannot create upgrades/{staging_name}: {e}"))?;
        let open = || {
            crate::fsutil::open_regular(work, name, crate::fsutil::Follow::No)
                .map(|f| f.into_std())
                .map_err(|e| format!("cannot open the downloaded file {name}: {e}"))
        };
        let format = match format {
            ArchiveFormat::Auto => sniff(&mut open()?)?,
            f => f,
        };
        match format {
            ArchiveFormat::Raw | ArchiveFormat::Auto => {
                staging.create_dir("bin").map_err(|e| e.to_string())?;
                copy_limited(
                    &mut open()?,
                    &staging,
                    Path::new("bin").join(daemon).as_path(),
                    limits.unpacked,
                    limits.unpacked,
                )?;
            }
            ArchiveFormat::TarGz => unpack_tar_gz(open()?, &staging, &limits)?,
            ArchiveFormat::Zip => unpack_zip(open()?, &staging, &limits)?,
        }
        let binary = [Path::new("bin").join(daemon), PathBuf::from(daemon)]
            .into_iter()
            .find(|p| staging.symlink_metadata(p).is_ok_and(|m| m.is_file()))
            .ok_or_else(|| format!("the archive holds neither bin/{daemon} nor {daemon}"))?;
        set_mode(&staging, &binary, 0o755)?;
        let target = format!("upgrades/{dir}");
        root.create_dir_all(format!("{target}/bin"))
            .map_err(|e| format!("cannot create {target}/bin: {e}"))?;
        // Everything else first (files already there are kept), the binary last.
        merge(&staging, Path::new(""), root, Path::new(&target), &binary)?;
        let final_path = format!("{target}/bin/{daemon}");
        staging
            .rename(&binary, root, &final_path)
            .map_err(|e| format!("cannot install {final_path}: {e}"))?;
        let bin_dir = root
            .open_dir(format!("{target}/bin"))
            .map_err(|e| e.to_string())?;
        crate::fsutil::sync_dir(&bin_dir).map_err(|e| format!("cannot sync {target}/bin: {e}"))?;
        tracing::info!(binary = %final_path, "installed the downloaded binary");
        Ok(())
    })();
    let _ = upgrades.remove_dir_all(&staging_name);
    result
}

/// Moves what `from/rel` holds into `to/rel` under `root`, entry by entry, keeping what is
/// already there and leaving `skip` (the binary) for last.
fn merge(from: &Dir, rel: &Path, root: &Dir, to: &Path, skip: &Path) -> Result<(), String> {
    let dir = if rel.as_os_str().is_empty() {
        from.try_clone().map_err(|e| e.to_string())?
    } else {
        from.open_dir(rel)
            .map_err(|e| format!("cannot open {}: {e}", rel.display()))?
    };
    for entry in dir.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let child = rel.join(entry.file_name());
        if child == skip {
            continue;
        }
        let dest = to.join(&child);
        let is_dir = entry.file_type().map_err(|e| e.to_string())?.is_dir();
        match root.symlink_metadata(&dest) {
            Err(_) => from
                .rename(&child, root, &dest)
                .map_err(|e| format!("cannot move {} into place: {e}", child.display()))?,
            Ok(meta) if is_dir && meta.is_dir() => merge(from, &child, root, to, skip)?,
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The format from the first bytes.
fn sniff(file: &mut std::fs::File) -> Result<ArchiveFormat, String> {
    let mut head = [0u8; 4];
    let n = file.read(&mut head).map_err(|e| e.to_string())?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => ArchiveFormat::TarGz,
        [b'P', b'K', 3, 4] => ArchiveFormat::Zip,
        _ => ArchiveFormat::Raw,
    })
}

/// The path of an archive entry if it is safe: relative, no `..`, no root, not empty.
fn safe_path(name: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "the archive entry {} escapes the archive",
                    name.display()
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!(
            "the archive entry {:?} has no name",
            name.display()
        ));
    }
    Ok(out)
}

fn copy_limited(
    reader: &mut dyn Read,
    dir: &Dir,
    path: &Path,
    left: u64,
    total: u64,
) -> Result<u64, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut file = dir
        .create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let copied = io::copy(&mut reader.take(left + 1), &mut file)
        .map_err(|e| format!("cannot unpack {}: {e}", path.display()))?;
    if copied > left {
        return Err(format!(
            "the archive unpacks to more than {total} bytes (the most a node binary with its libraries may take, or the free space left): refused as a decompression bomb"
        ));
    }
    file.sync_all().map_err(|e| e.to_string())?;
    Ok(copied)
}

fn set_mode(dir: &Dir, path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    dir.set_permissions(
        path,
        cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(mode)),
    )
    .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
}

fn unpack_tar_gz(file: std::fs::File, dir: &Dir, limits: &Limits) -> Result<(), String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut left = limits.unpacked;
    let mut count = 0u64;
    for entry in archive
        .entries()
        .map_err(|e| format!("not a tar.gz archive: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("corrupt tar.gz archive: {e}"))?;
        count += 1;
        if count > limits.entries {
            return Err(format!(
                "the archive has more than {} entries",
                limits.entries
            ));
        }
        let name = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        let path = safe_path(&name)?;
        if kind.is_dir() {
            dir.create_dir_all(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
            left -= copy_limited(&mut entry, dir, &path, left, limits.unpacked)?;
            set_mode(dir, &path, mode | 0o600)?;
        } else {
            return Err(format!(
                "the archive entry {} is a {kind:?}; only files and directories are accepted",
                name.display()
            ));
        }
    }
    Ok(())
}

fn unpack_zip(file: std::fs::File, dir: &Dir, limits: &Limits) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a zip archive: {e}"))?;
    if archive.len() as u64 > limits.entries {
        return Err(format!(
            "the archive has more than {} entries",
            limits.entries
        ));
    }
    let mut left = limits.unpacked;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("corrupt zip archive: {e}"))?;
        let raw_name = entry
            .name()
            .map_err(|e| format!("bad entry name in the zip archive: {e}"))?
            .into_owned();
        let path = safe_path(Path::new(&raw_name))?;
        if entry.enclosed_name().is_none() {
            return Err(format!("the archive entry {raw_name} escapes the archive"));
        }
        if entry.is_symlink() {
            return Err(format!(
                "the archive entry {raw_name} is a symlink; only files and directories are accepted"
            ));
        }
        if entry.is_dir() {
            dir.create_dir_all(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            continue;
        }
        if let Some(mode) = entry.unix_mode()
            && mode & 0o170000 != 0
            && mode & 0o170000 != 0o100000
        {
            return Err(format!(
                "the archive entry {raw_name} is not a regular file"
            ));
        }
        let mode = entry.unix_mode().unwrap_or(0o644) & 0o755;
        left -= copy_limited(&mut entry, dir, &path, left, limits.unpacked)?;
        set_mode(dir, &path, mode | 0o600)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_entry_paths_are_refused() {
        assert!(safe_path(Path::new("../evil")).is_err());
        assert!(safe_path(Path::new("/etc/passwd")).is_err());
        assert!(safe_path(Path::new("a/../../b")).is_err());
        assert!(safe_path(Path::new("./")).is_err());
        assert_eq!(
            safe_path(Path::new("./bin/simd")).unwrap(),
            PathBuf::from("bin/simd")
        );
    }
}
