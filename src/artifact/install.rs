//! Installing a fetched artifact: unpacked into a staging folder of wasmvisor's own beside the
//! upgrade folder, the binary found in it (`bin/<daemon>`, `<daemon>`, the archive's only file,
//! or its only file of that name — in the `//subfolder` the URL names, if any), checked to be an
//! executable for this machine, the rest merged into `upgrades/<dir>` (files already there are
//! kept), and the binary moved into place last: its presence means the installation is complete.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use wasmvisor_plugin_support::getter::{Archive, Format, glob_match};

use super::Limits;
use super::guard::TarStream;
use super::unpack::{self, Packing, UnpackError};

/// The most a tar stream may take, headers and skipped entries included: twice what its files
/// may unpack to.
fn stream_limit(limits: &Limits) -> u64 {
    limits.unpacked.saturating_mul(2)
}

/// How the fetched file is to be unpacked, from the URL and the resolver's answer.
#[derive(Debug, Clone)]
pub struct Unpack {
    pub archive: Archive,
    /// The format the URL's path names by its extension.
    pub extension: Option<Format>,
    /// `//subfolder`: where in the archive the binary and its files are.
    pub subdir: Option<String>,
}

/// Why a fetched artifact was not installed, in the words the operator sees.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cannot open upgrades/: {0}")]
    Upgrades(std::io::Error),
    #[error("cannot create upgrades/{name}: {source}")]
    Staging {
        name: String,
        source: std::io::Error,
    },
    #[error("cannot open the downloaded file {name}: {source}")]
    Download {
        name: String,
        source: crate::fs::ReadError,
    },
    #[error("the {} data around the tar is corrupt after its last entry: {source}", .format.name())]
    AfterTheTar {
        format: Format,
        source: std::io::Error,
    },
    #[error("the archive has no folder {} (//{subdir})", .folder.display())]
    NoFolder { folder: PathBuf, subdir: String },
    #[error("//{subdir} matches several folders: {}", .folders.join(", "))]
    SeveralFolders {
        subdir: String,
        folders: Vec<String>,
    },
    #[error(
        "the archive holds neither bin/{daemon} nor {daemon}{} but: {} (name the folder that holds it with //<folder> after the URL)",
        .subdir.as_ref().map(|s| format!(" in //{s}")).unwrap_or_default(),
        listing(.files)
    )]
    NoBinary {
        daemon: String,
        subdir: Option<String>,
        files: Vec<PathBuf>,
    },
    #[error("{}: {source}", .path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not an executable for this machine (`tree::executable::executable` says why).
    #[error("{} {why}", .path.display())]
    NotExecutable {
        path: PathBuf,
        why: crate::tree::executable::NotExecutable,
    },
    #[error("cannot create {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot move {} into place: {source}", .path.display())]
    Move {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot install {path}: {source}")]
    Install {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot sync {path}: {source}")]
    Sync {
        path: String,
        source: std::io::Error,
    },
}

/// The first files of an archive without the binary, for the message.
fn listing(files: &[PathBuf]) -> String {
    let mut listed: Vec<String> = files
        .iter()
        .take(8)
        .map(|f| f.display().to_string())
        .collect();
    if files.len() > 8 {
        listed.push(format!("… ({} files)", files.len()));
    }
    if listed.is_empty() {
        "no files".into()
    } else {
        listed.join(", ")
    }
}

/// Unpacks the file `name` of `work` and installs the binary as `upgrades/<dir>/bin/<daemon>`
/// under `root`, with the other files of its folder beside it (existing ones are kept).
/// Returns what it put there besides the binary (paths relative to `upgrades/<dir>`).
pub fn install(
    root: &Dir,
    work: &Dir,
    name: &str,
    how: &Unpack,
    dir: &str,
    daemon: &str,
    limits: &Limits,
) -> Result<Vec<String>, InstallError> {
    let upgrades = root
        .create_dir_all(crate::tree::UPGRADES_DIR)
        .and_then(|()| root.open_dir(crate::tree::UPGRADES_DIR))
        .map_err(InstallError::Upgrades)?;
    let staging_name = format!(".{dir}.unpack");
    let _ = upgrades.remove_dir_all(&staging_name);
    let limits = limits.within_free_space(&upgrades);
    let result = (|| {
        let staging = crate::fs::own_dir(&upgrades, &staging_name).map_err(|source| {
            InstallError::Staging {
                name: staging_name.clone(),
                source,
            }
        })?;
        let packing = unpack_into(&staging, work, name, how, daemon, &limits)?;
        tracing::debug!(?packing, "unpacked the download");
        let (base, binary) = find_binary(&staging, how.subdir.as_deref(), daemon)?;
        check_executable(&staging, &base.join(&binary))?;
        let from = if base.as_os_str().is_empty() {
            staging.try_clone()?
        } else {
            staging.open_dir(&base)?
        };
        unpack::set_mode(&from, &binary, 0o755)?;
        let (final_path, beside) = put_in_place(root, &from, &binary, dir, daemon)?;
        tracing::info!(binary = %final_path, from = %base.join(&binary).display(), "installed the downloaded binary");
        Ok(beside)
    })();
    let _ = upgrades.remove_dir_all(&staging_name);
    result
}

/// Unpacks the file `name` of `work` into `staging` as `how` and its bytes say: a single file
/// as `bin/<daemon>`, an archive as it is.
fn unpack_into(
    staging: &Dir,
    work: &Dir,
    name: &str,
    how: &Unpack,
    daemon: &str,
    limits: &Limits,
) -> Result<Packing, InstallError> {
    let open = || {
        crate::fs::open_regular(work, name, crate::fs::Follow::No)
            .map(|f| f.into_std())
            .map_err(|source| InstallError::Download {
                name: name.to_string(),
                source,
            })
    };
    let packing = unpack::detect(&mut open()?, how.archive, how.extension)?;
    let binary_path = Path::new("bin").join(daemon);
    let single = |reader: &mut dyn std::io::Read| -> Result<(), InstallError> {
        staging.create_dir("bin")?;
        unpack::copy_limited(
            reader,
            staging,
            &binary_path,
            limits.unpacked,
            limits.unpacked,
        )?;
        Ok(())
    };
    match packing {
        Packing::Raw => single(&mut open()?)?,
        Packing::Single(c) => single(&mut unpack::decoder(c, BufReader::new(open()?))?)?,
        Packing::Tar(None) => unpack::tar(
            TarStream::new(BufReader::new(open()?), stream_limit(limits)),
            staging,
            limits,
        )?,
        Packing::Tar(Some(c)) => {
            let mut stream = TarStream::new(
                unpack::decoder(c, BufReader::new(open()?))?,
                stream_limit(limits),
            );
            unpack::tar(&mut stream, staging, limits)?;
            // The tar ends before its compression does: the checks are at the end.
            stream
                .finish()
                .map_err(|source| InstallError::AfterTheTar { format: c, source })?;
        }
        Packing::Zip => unpack::zip(open()?, staging, limits)?,
    }
    Ok(packing)
}

/// Moves what `from` holds into `upgrades/<dir>`: everything else first (files already there
/// are kept), the binary last, as `bin/<daemon>`. Returns where the binary is, and what was put
/// beside it.
fn put_in_place(
    root: &Dir,
    from: &Dir,
    binary: &Path,
    dir: &str,
    daemon: &str,
) -> Result<(String, Vec<String>), InstallError> {
    let target = format!("upgrades/{dir}");
    let bin = format!("{target}/bin");
    root.create_dir_all(&bin)
        .map_err(|source| InstallError::Create {
            path: bin.clone(),
            source,
        })?;
    let mut beside = Vec::new();
    merge(
        from,
        Path::new(""),
        (root, Path::new(&target)),
        binary,
        &mut beside,
    )?;
    let final_path = format!("{bin}/{daemon}");
    from.rename(binary, root, &final_path)
        .map_err(|source| InstallError::Install {
            path: final_path.clone(),
            source,
        })?;
    let bin_dir = root.open_dir(&bin)?;
    crate::fs::sync_dir(&bin_dir).map_err(|source| InstallError::Sync { path: bin, source })?;
    Ok((final_path, beside))
}

/// Where the binary is in the unpacked tree: `(folder, binary within it)`. The folder is the
/// `//subfolder` (its parts may be globs matching exactly one entry) or the top; in it,
/// `bin/<daemon>`, then `<daemon>`, then its only regular file (go-getter's single-file archive),
/// then its only file named `<daemon>` at any depth (an archive with a top-level folder).
fn find_binary(
    staging: &Dir,
    subdir: Option<&str>,
    daemon: &str,
) -> Result<(PathBuf, PathBuf), InstallError> {
    let mut base = PathBuf::new();
    for part in subdir.unwrap_or("").split('/').filter(|p| !p.is_empty()) {
        let here = open(staging, &base)?;
        let matches: Vec<String> = names(&here)?
            .into_iter()
            .filter(|n| glob_match(part, n) && here.metadata(n).is_ok_and(|m| m.is_dir()))
            .collect();
        match matches.as_slice() {
            [one] => base.push(one),
            [] => {
                return Err(InstallError::NoFolder {
                    folder: base.join(part),
                    subdir: subdir.unwrap_or("").to_string(),
                });
            }
            many => {
                return Err(InstallError::SeveralFolders {
                    subdir: subdir.unwrap_or("").to_string(),
                    folders: many.to_vec(),
                });
            }
        }
    }
    let folder = open(staging, &base)?;
    for candidate in [Path::new("bin").join(daemon), PathBuf::from(daemon)] {
        if folder
            .symlink_metadata(&candidate)
            .is_ok_and(|m| m.is_file())
        {
            return Ok((base, candidate));
        }
    }
    let mut files = Vec::new();
    walk(&folder, Path::new(""), &mut files)?;
    if let [only] = files.as_slice() {
        // The archive's only file, at any depth: its folder comes with it (nothing else does).
        let parent = only.parent().unwrap_or(Path::new(""));
        let name = only.file_name().map(PathBuf::from).unwrap_or_default();
        return Ok((base.join(parent), name));
    }
    let named: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == daemon))
        .collect();
    if let [only] = named.as_slice() {
        // Its folder (the one holding `bin/`, when it is in one) comes with it.
        let parent = only.parent().unwrap_or(Path::new(""));
        let home = if parent.file_name().is_some_and(|n| n == "bin") {
            parent.parent().unwrap_or(Path::new(""))
        } else {
            parent
        };
        let binary = only.strip_prefix(home).unwrap_or(only).to_path_buf();
        return Ok((base.join(home), binary));
    }
    Err(InstallError::NoBinary {
        daemon: daemon.to_string(),
        subdir: subdir.map(str::to_string),
        files,
    })
}

fn open(staging: &Dir, rel: &Path) -> Result<Dir, InstallError> {
    if rel.as_os_str().is_empty() {
        Ok(staging.try_clone()?)
    } else {
        staging
            .open_dir(rel)
            .map_err(|source| InstallError::Folder {
                path: rel.to_path_buf(),
                source,
            })
    }
}

fn names(dir: &Dir) -> Result<Vec<String>, InstallError> {
    let mut out: Vec<String> = dir
        .entries()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    out.sort();
    Ok(out)
}

/// Every regular file under `dir`, relative to it, sorted.
fn walk(dir: &Dir, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), InstallError> {
    let here = open(dir, rel)?;
    for name in names(&here)? {
        let meta = here.symlink_metadata(&name)?;
        if meta.is_dir() {
            walk(dir, &rel.join(&name), out)?;
        } else if meta.is_file() {
            out.push(rel.join(&name));
        }
    }
    Ok(())
}

/// Refuses what this machine cannot execute: only an ELF for its architecture, or a script
/// (`#!`), is installed — never an archive taken for the binary, an error page, or a build for
/// another platform, which would leave the node down at its next launch.
fn check_executable(dir: &Dir, path: &Path) -> Result<(), InstallError> {
    let mut file = dir.open(path).map_err(|source| InstallError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut head = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, 64), &mut head).map_err(
        |source| InstallError::Read {
            path: path.to_path_buf(),
            source,
        },
    )?;
    crate::tree::executable::executable(&head).map_err(|why| InstallError::NotExecutable {
        path: path.to_path_buf(),
        why,
    })
}

/// Moves what `from/rel` holds into `to/rel` under `root`, entry by entry, keeping what is
/// already there and leaving `skip` (the binary) for last. Each file moved is added to `moved`.
fn merge(
    from: &Dir,
    rel: &Path,
    (root, to): (&Dir, &Path),
    skip: &Path,
    moved: &mut Vec<String>,
) -> Result<(), InstallError> {
    let dir = open(from, rel)?;
    for entry in dir.entries()? {
        let entry = entry?;
        let child = rel.join(entry.file_name());
        if child == skip {
            continue;
        }
        let dest = to.join(&child);
        let is_dir = entry.file_type()?.is_dir();
        match root.symlink_metadata(&dest) {
            Err(_) => {
                from.rename(&child, root, &dest)
                    .map_err(|source| InstallError::Move {
                        path: child.clone(),
                        source,
                    })?;
                // File by file: what the operator adds to a folder of the archive's later
                // (a library in its `lib/`) is not the archive's.
                let mut files = Vec::new();
                if is_dir {
                    walk(root, &dest, &mut files)?;
                } else {
                    files.push(dest);
                }
                moved.extend(
                    files
                        .iter()
                        .map(|f| f.strip_prefix(to).unwrap_or(f).display().to_string()),
                );
            }
            Ok(meta) if is_dir && meta.is_dir() => merge(from, &child, (root, to), skip, moved)?,
            Ok(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
