//! What a source writes into: a file that is hashed as it grows and capped in size (the host side
//! of the plugins' `output` resource). A partial file left by an interrupted fetch is hashed
//! again and resumed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha512};

use crate::output::Progress;

/// The digest being computed, of the algorithm the artifact's checksum names (sha256 without one).
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(sha512: bool) -> Hasher {
        if sha512 {
            Hasher::Sha512(Sha512::new())
        } else {
            Hasher::Sha256(Sha256::new())
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn hex(&self) -> String {
        match self.clone() {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

pub struct Download {
    /// The file's name, for messages.
    pub path: PathBuf,
    file: File,
    hasher: Hasher,
    sha512: bool,
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
        sha512: bool,
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
        Self::from_file(file, Path::new(name), sha512, limit, label)
    }

    /// Opens (or resumes) a file anywhere: `plugin call`'s `--out`.
    pub fn open_path(path: &Path, sha512: bool, limit: u64, label: &str) -> io::Result<Download> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        Self::from_file(file, path, sha512, limit, label)
    }

    fn from_file(
        mut file: File,
        path: &Path,
        sha512: bool,
        limit: u64,
        label: &str,
    ) -> io::Result<Download> {
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let mut hasher = Hasher::new(sha512);
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
            sha512,
            written,
            limit,
            over_limit: false,
            progress,
        })
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
        let after = self.written + bytes.len() as u64;
        if after > self.limit {
            self.over_limit = true;
            return Err(format!(
                "the artifact is larger than the limit of {} bytes",
                self.limit
            ));
        }
        self.file
            .write_all(bytes)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        self.hasher.update(bytes);
        self.written = after;
        self.progress.advance(bytes.len() as u64);
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// The size and digest of everything written, after syncing the file.
    pub fn finish(mut self) -> io::Result<(u64, String)> {
        self.file.flush()?;
        self.file.sync_all()?;
        self.progress.finish();
        Ok((self.written, self.hasher.hex()))
    }
}

impl crate::plugin::Sink for Download {
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.append(bytes)
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn reset(&mut self) {
        if self.file.set_len(0).is_ok() {
            self.written = 0;
            self.hasher = Hasher::new(self.sha512);
        }
    }
}
