//! The download file a source writes into: hashed as it grows (with every algorithm its
//! checksums need) and capped in size (the host side of the plugins' `output` resource). A partial
//! file left by an interrupted fetch is hashed again and resumed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use wasmvisor_plugin_support::getter::Algorithm;

use crate::output::Progress;

/// One digest being computed.
#[derive(Clone)]
enum One {
    Md5(Md5),
    Sha1(Sha1),
    Sha256(Sha256),
    Sha512(Sha512),
}

/// The digests being computed over the bytes as written: always sha256 (for the log and the
/// journal), and whatever else the expected checksums need.
#[derive(Clone)]
pub struct Hasher(Vec<(Algorithm, One)>);

impl Hasher {
    pub fn new(algorithms: &[Algorithm]) -> Hasher {
        let mut all: Vec<Algorithm> = algorithms.to_vec();
        all.push(Algorithm::Sha256);
        all.sort();
        all.dedup();
        Hasher(
            all.into_iter()
                .map(|a| {
                    let one = match a {
                        Algorithm::Md5 => One::Md5(Md5::new()),
                        Algorithm::Sha1 => One::Sha1(Sha1::new()),
                        Algorithm::Sha256 => One::Sha256(Sha256::new()),
                        Algorithm::Sha512 => One::Sha512(Sha512::new()),
                    };
                    (a, one)
                })
                .collect(),
        )
    }

    fn update(&mut self, bytes: &[u8]) {
        for (_, one) in &mut self.0 {
            match one {
                One::Md5(h) => h.update(bytes),
                One::Sha1(h) => h.update(bytes),
                One::Sha256(h) => h.update(bytes),
                One::Sha512(h) => h.update(bytes),
            }
        }
    }

    /// Every digest, lower-case hex.
    pub fn digests(&self) -> Digests {
        Digests(
            self.0
                .iter()
                .map(|(a, one)| {
                    let hex = match one.clone() {
                        One::Md5(h) => hex::encode(h.finalize()),
                        One::Sha1(h) => hex::encode(h.finalize()),
                        One::Sha256(h) => hex::encode(h.finalize()),
                        One::Sha512(h) => hex::encode(h.finalize()),
                    };
                    (*a, hex)
                })
                .collect(),
        )
    }

    fn algorithms(&self) -> Vec<Algorithm> {
        self.0.iter().map(|(a, _)| *a).collect()
    }
}

/// The digests of a finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests(Vec<(Algorithm, String)>);

impl Digests {
    pub fn get(&self, algorithm: Algorithm) -> Option<&str> {
        self.0
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map(|(_, h)| h.as_str())
    }

    pub fn sha256(&self) -> &str {
        self.get(Algorithm::Sha256).unwrap_or_default()
    }
}

/// Why bytes were not appended to a download.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the artifact is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
}

pub struct Download {
    /// The file's name, for messages.
    pub path: PathBuf,
    file: File,
    hasher: Hasher,
    written: u64,
    limit: u64,
    /// Set when a write went over the size limit: the partial file is worthless.
    pub over_limit: bool,
    progress: Progress,
}

impl Download {
    /// Opens (or resumes) the partial file `name` in `dir`, never through a symlink and only
    /// if it is a regular file.
    pub fn open(
        dir: &cap_std::fs::Dir,
        name: &str,
        algorithms: &[Algorithm],
        limit: u64,
        label: &str,
    ) -> io::Result<Download> {
        use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
        let mut options = cap_std::fs::OpenOptions::new();
        options
            .read(true)
            .append(true)
            .create(true)
            .follow(FollowSymlinks::No);
        let file = dir.open_with(name, &options)?.into_std();
        Self::from_file(file, Path::new(name), algorithms, limit, label)
    }

    /// Opens (or resumes) a file anywhere: `plugin call`'s `--out`.
    pub fn open_path(
        path: &Path,
        algorithms: &[Algorithm],
        limit: u64,
        label: &str,
    ) -> io::Result<Download> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        Self::from_file(file, path, algorithms, limit, label)
    }

    fn from_file(
        mut file: File,
        path: &Path,
        algorithms: &[Algorithm],
        limit: u64,
        label: &str,
    ) -> io::Result<Download> {
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let mut hasher = Hasher::new(algorithms);
        let mut written = 0u64;
        file.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            written += n as u64;
        }
        let mut progress = Progress::new(label, 0, "downloading", "downloaded");
        progress.skip(written);
        Ok(Download {
            path: path.to_path_buf(),
            file,
            hasher,
            written,
            limit,
            over_limit: false,
            progress,
        })
    }

    /// Appends `bytes`, hashing them; past the size limit, nothing more is written.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let after = self.written + bytes.len() as u64;
        if after > self.limit {
            self.over_limit = true;
            return Err(WriteError::TooLarge(self.limit));
        }
        self.file
            .write_all(bytes)
            .map_err(|source| WriteError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.hasher.update(bytes);
        self.written = after;
        self.progress.advance(bytes.len() as u64);
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// The size and digests of everything written, after syncing the file.
    pub fn finish(mut self) -> io::Result<(u64, Digests)> {
        self.file.flush()?;
        self.file.sync_all()?;
        self.progress.finish();
        Ok((self.written, self.hasher.digests()))
    }
}

impl crate::plugin::Sink for Download {
    /// The plugin boundary: the source is told why in words.
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.append(bytes).map_err(|e| e.to_string())
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn reset(&mut self) {
        if self.file.set_len(0).is_ok() {
            self.written = 0;
            self.hasher = Hasher::new(&self.hasher.algorithms());
        }
    }
}
