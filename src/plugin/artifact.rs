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
use std::time::Duration;

use cap_std::fs::Dir;

use super::{ArchiveFormat, Artifact, FetchError, HashAlgorithm, Host, Loaded, Output};

/// Bounds on one artifact.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes a source may write.
    pub download: u64,
    /// Bytes an archive may unpack to.
    pub unpacked: u64,
    /// Entries an archive may hold.
    pub entries: u64,
    /// Tries per source for retryable failures.
    pub tries: u32,
    /// First back-off between tries (doubles each time).
    pub backoff: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            download: 4 << 30,
            unpacked: 8 << 30,
            entries: 100_000,
            tries: 5,
            backoff: Duration::from_millis(500),
        }
    }
}

/// A downloaded, verified artifact file.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub size: u64,
    pub sha256_or_512: String,
    pub source: String,
}

/// Runs the sources in order until one fetches `artifact` and its checksum matches. The partial
/// file lives in `work` (named after the URL), so a restart resumes it. A checksum mismatch is
/// final: the file is deleted and no other source is asked.
pub fn fetch(
    host: &Host,
    sources: &[Loaded],
    artifact: &Artifact,
    work: &Path,
    limits: &Limits,
) -> Result<Fetched, String> {
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let sha512 = matches!(
        artifact.checksum.as_ref().map(|c| c.algorithm),
        Some(HashAlgorithm::Sha512)
    );
    let key = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(artifact.url.as_bytes())[..8]);
    let partial = work.join(format!("{key}.part"));
    let label = artifact
        .url
        .rsplit('/')
        .next()
        .unwrap_or(&artifact.url)
        .to_string();
    let mut reasons = Vec::new();
    'sources: for source in sources {
        let name = &source.spec.name;
        let mut backoff = limits.backoff;
        for attempt in 1..=limits.tries {
            let output = Output::open(&partial, sha512, limits.download, &label)
                .map_err(|e| format!("cannot open {}: {e}", partial.display()))?;
            if output.written() > 0 {
                tracing::info!(source = %name, bytes = output.written(), "resuming a partial download");
            }
            let (output, result) = host.fetch(source, artifact, output);
            match result {
                Ok(Ok(())) => {
                    let (path, size, digest) = output
                        .finish()
                        .map_err(|e| format!("cannot sync {}: {e}", partial.display()))?;
                    if let Some(expected) = &artifact.checksum {
                        let expected = expected.hex.to_ascii_lowercase();
                        if expected != digest {
                            let _ = std::fs::remove_file(&path);
                            return Err(format!(
                                "checksum mismatch for {} (from source {name}): expected {expected}, got {digest}; nothing was installed",
                                artifact.url
                            ));
                        }
                    } else {
                        tracing::warn!(url = %artifact.url, sha256 = %digest, "artifact has no checksum to verify");
                    }
                    return Ok(Fetched {
                        path,
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
                    continue 'sources;
                }
                Ok(Err(FetchError::Retryable(m))) => {
                    tracing::warn!(source = %name, attempt, of = limits.tries, "fetch failed, will retry: {m}");
                    if attempt == limits.tries {
                        reasons.push(format!("{name}: {m} (after {attempt} tries)"));
                    } else {
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
                Err(e) => {
                    tracing::error!("{e}");
                    reasons.push(e.to_string());
                    continue 'sources;
                }
            }
        }
    }
    if reasons.is_empty() {
        reasons.push("no configured source handles this URL".into());
    }
    Err(format!(
        "cannot fetch {}: {}",
        artifact.url,
        reasons.join("; ")
    ))
}

/// Unpacks `file` (per `format`) and installs the binary as `upgrades/<dir>/bin/<daemon>` under
/// `root`, with any other files of the archive beside it (existing ones are kept).
pub fn install(
    root: &Dir,
    file: &Path,
    format: ArchiveFormat,
    dir: &str,
    daemon: &str,
    limits: &Limits,
) -> Result<(), String> {
    let staging_name = format!("upgrades/.{dir}.unpack");
    let _ = root.remove_dir_all(&staging_name);
    root.create_dir_all(&staging_name)
        .map_err(|e| format!("cannot create {staging_name}: {e}"))?;
    let result = (|| {
        let staging = root
            .open_dir(&staging_name)
            .map_err(|e| format!("cannot open {staging_name}: {e}"))?;
        let format = match format {
            ArchiveFormat::Auto => sniff(file)?,
            f => f,
        };
        let open = || {
            std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))
        };
        match format {
            ArchiveFormat::Raw | ArchiveFormat::Auto => {
                staging.create_dir("bin").map_err(|e| e.to_string())?;
                copy_limited(
                    &mut open()?,
                    &staging,
                    Path::new("bin").join(daemon).as_path(),
                    limits.unpacked,
                )?;
            }
            ArchiveFormat::TarGz => unpack_tar_gz(open()?, &staging, limits)?,
            ArchiveFormat::Zip => unpack_zip(open()?, &staging, limits)?,
        }
        let binary = [Path::new("bin").join(daemon), PathBuf::from(daemon)]
            .into_iter()
            .find(|p| staging.metadata(p).is_ok_and(|m| m.is_file()))
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
    let _ = root.remove_dir_all(&staging_name);
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
fn sniff(file: &Path) -> Result<ArchiveFormat, String> {
    let mut head = [0u8; 4];
    let mut f =
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let n = f.read(&mut head).map_err(|e| e.to_string())?;
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

fn copy_limited(reader: &mut dyn Read, dir: &Dir, path: &Path, left: u64) -> Result<u64, String> {
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
        return Err(
            "the archive unpacks to more than the size limit (a decompression bomb?)".into(),
        );
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
            left -= copy_limited(&mut entry, dir, &path, left)?;
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
        left -= copy_limited(&mut entry, dir, &path, left)?;
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
