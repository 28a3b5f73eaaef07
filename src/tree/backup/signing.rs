//! The validator's signing state, `priv_validator_state.json`: the height, round and step it last
//! signed. CometBFT refuses to sign anything at or below it, which is what stops a validator
//! from signing two different blocks at one height. Restoring an older copy would lower that
//! guard, so a restore keeps the copy furthest ahead of all it can find: the live data's, the one
//! an interrupted restore moved aside, the backup's.
//!
//! A copy is compared by what it holds: a symlink (to a volume of its own) by the file it leads
//! to, a large one (re-indented, padded) read as a stream. A live copy that cannot be read or
//! understood stops the restore: no state is ever assumed to be older than the backup's.

use std::io::{self, BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;
use serde::Deserialize;

use crate::fs::{self, Follow};

/// Where CometBFT keeps it by default, relative to the data folder.
pub const SIGNING_STATE: &str = "priv_validator_state.json";
/// CometBFT writes a few hundred bytes; a padded or re-indented copy is still read (as a stream,
/// never held whole), and anything larger than this is refused rather than ignored.
const MAX_STATE: u64 = 64 << 20;

/// `(height, round, step)`: ordered as CometBFT orders what it signed.
pub type Position = (u64, i64, i64);

#[derive(Deserialize)]
struct Fields {
    height: Height,
    round: i64,
    step: i64,
}

/// Amino JSON writes the height as a string; a number is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Height {
    Text(String),
    Number(u64),
}

/// The position a signing state records, read from a stream (other fields are skipped, not
/// kept); `None` when it is not one.
fn position_of(reader: impl Read) -> Option<Position> {
    let f: Fields = serde_json::from_reader(BufReader::new(reader)).ok()?;
    let height = match f.height {
        Height::Text(s) => s.parse().ok()?,
        Height::Number(n) => n,
    };
    Some((height, f.round, f.step))
}

#[cfg(test)]
fn position(bytes: &[u8]) -> Option<Position> {
    position_of(bytes)
}

/// Why a copy of the signing state could not be read; each message starts with its path.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", .path.display())]
    Open {
        path: PathBuf,
        source: fs::ReadError,
    },
    #[error("{} is a symlink to {}, which cannot be read: {source}", .path.display(), .target.display())]
    Link {
        path: PathBuf,
        target: PathBuf,
        source: fs::ReadError,
    },
    #[error("{} holds {len} bytes, more than the {MAX_STATE} a signing state could", .path.display())]
    TooLarge { path: PathBuf, len: u64 },
    #[error(
        "{} is not a signing state (no height, round and step as CometBFT writes them)",
        .path.display()
    )]
    NotAState { path: PathBuf },
}

/// Why the newest signing state could not be kept: the restore stops.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error(
        "cannot compare the validator's signing state with the backup's: {source}; restoring without it could let the validator sign a height twice. Make it readable (mount the volume it links to, fix its permissions) and restore again; only if you are sure the backup's is not older, move it out of {}",
        .folder.display()
    )]
    Compare { folder: PathBuf, source: StateError },
    #[error("cannot keep the newer signing state in {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// One folder that may hold a copy of the signing state.
pub struct Candidate<'a> {
    pub dir: &'a Dir,
    /// Where the folder is: for messages, and to read a symlink pointing inside it.
    pub path: &'a Path,
}

/// A copy that was read.
struct Found {
    position: Position,
    /// The file it is (the link's target for a symlink), open at its start.
    file: std::fs::File,
    /// The link's contents, when the copy is a symlink leading out of the data folder (a
    /// volume of its own): such a copy is kept as the same link.
    link: Option<PathBuf>,
}

/// Reads the copy in `c`; `Ok(None)` when there is none, `Err` when there is one that cannot be
/// read or is not a signing state. `data` is where the data folder is (or will be,
/// once restored): a relative symlink climbing out of its folder is resolved from there, as the
/// node will resolve it.
fn read(c: &Candidate, data: &Path) -> Result<Option<Found>, StateError> {
    let shown = c.path.join(SIGNING_STATE);
    let io = |source| StateError::Io {
        path: shown.clone(),
        source,
    };
    let meta = match c.dir.symlink_metadata(SIGNING_STATE) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let (file, link) = if meta.is_symlink() {
        let target = c.dir.read_link_contents(SIGNING_STATE).map_err(io)?;
        let climbs = target
            .components()
            .any(|p| matches!(p, Component::ParentDir | Component::RootDir));
        let resolved = if climbs {
            data.join(&target)
        } else {
            c.path.join(&target)
        };
        let file = fs::open_regular_path(&resolved).map_err(|source| StateError::Link {
            path: shown.clone(),
            target: target.clone(),
            source,
        })?;
        let inside = std::fs::canonicalize(&resolved)
            .is_ok_and(|real| real.starts_with(data) || real.starts_with(c.path));
        (file, (!inside).then_some(target))
    } else {
        let file = fs::open_regular(c.dir, SIGNING_STATE, Follow::No).map_err(|source| {
            StateError::Open {
                path: shown.clone(),
                source,
            }
        })?;
        (file.into_std(), None)
    };
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_STATE {
        return Err(StateError::TooLarge {
            path: shown.clone(),
            len,
        });
    }
    let mut file = file;
    let Some(position) = position_of((&mut file).take(MAX_STATE)) else {
        return Err(StateError::NotAState {
            path: shown.clone(),
        });
    };
    file.rewind().map_err(io)?;
    Ok(Some(Found {
        position,
        file,
        link,
    }))
}

/// The height recorded in `c`, in words, for messages.
pub fn describe(c: &Candidate, data: &Path) -> String {
    match read(c, data) {
        Ok(Some(f)) => format!("signed up to height {}", f.position.0),
        Ok(None) => "no signing state".into(),
        Err(why) => why.to_string(),
    }
}

/// Puts the newest signing state among `live` (the copies the node wrote: the data folder, what an
/// interrupted restore moved aside) and `restored` (the backup's, just captured) into `restored`,
/// the folder that becomes the data folder `data`. Returns whether a live copy was kept (the
/// backup's was not ahead). Refuses when a live copy cannot be compared.
pub fn keep_newest(
    live: &[Candidate],
    restored: &Candidate,
    data: &Path,
) -> Result<bool, SigningError> {
    let mut best: Option<Found> = None;
    for c in live {
        let found = read(c, data).map_err(|source| SigningError::Compare {
            folder: c.path.to_path_buf(),
            source,
        })?;
        if let Some(f) = found
            && best.as_ref().is_none_or(|b| f.position > b.position)
        {
            best = Some(f);
        }
    }
    let Some(best) = best else {
        return Ok(false);
    };
    // The backup's own copy wins only when strictly ahead; one that cannot be read loses.
    if let Ok(Some(backed_up)) = read(restored, data)
        && backed_up.position > best.position
    {
        return Ok(false);
    }
    let write = |source| SigningError::Write {
        path: restored.path.join(SIGNING_STATE),
        source,
    };
    match &best.link {
        Some(target) => {
            fs::remove_if_present(restored.dir, SIGNING_STATE).map_err(write)?;
            restored
                .dir
                .symlink_contents(target, SIGNING_STATE)
                .map_err(write)?;
            fs::sync_dir(restored.dir).map_err(write)?;
        }
        None => copy_atomic(best.file, restored.dir).map_err(write)?,
    }
    Ok(true)
}

/// Copies the open `file` as `dir`'s signing state, with its permissions, atomically and durably,
/// as a stream.
fn copy_atomic(file: std::fs::File, dir: &Dir) -> io::Result<()> {
    use std::io::Write;
    let permissions = file.metadata()?.permissions();
    let tmp = fs::temp_name(Path::new(SIGNING_STATE));
    let result = (|| {
        let mut out = fs::create_fresh(dir, &tmp)?;
        io::copy(&mut file.take(MAX_STATE), &mut out)?;
        out.flush()?;
        out.set_permissions(cap_std::fs::Permissions::from_std(permissions))?;
        out.sync_all()?;
        dir.rename(&tmp, dir, SIGNING_STATE)?;
        fs::sync_dir(dir)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    #[test]
    fn reads_cometbft_signing_states() {
        let real = br#"{
  "height": "19639471",
  "round": 0,
  "step": 3,
  "signature": "dGVzdA==",
  "signbytes": "AB"
}"#;
        assert_eq!(position(real), Some((19_639_471, 0, 3)));
        assert_eq!(
            position(br#"{"height":"0","round":0,"step":0}"#),
            Some((0, 0, 0))
        );
        assert_eq!(
            position(br#"{"height":12,"round":1,"step":2}"#),
            Some((12, 1, 2))
        );
        assert_eq!(position(b"{}"), None);
        assert_eq!(position(br#"{"height":"x","round":0,"step":0}"#), None);
        assert!(
            position(br#"{"height":"5","round":1,"step":1}"#)
                > position(br#"{"height":"5","round":0,"step":3}"#)
        );
    }

    fn state(height: u64) -> String {
        format!(r#"{{"height":"{height}","round":0,"step":3}}"#)
    }

    struct Setup {
        t: tempfile::TempDir,
        data: PathBuf,
        restored: PathBuf,
    }

    fn setup(backup_height: u64) -> Setup {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        let restored = t.path().join(".data.restoring");
        std::fs::create_dir(&data).unwrap();
        std::fs::create_dir(&restored).unwrap();
        std::fs::write(restored.join(SIGNING_STATE), state(backup_height)).unwrap();
        Setup { t, data, restored }
    }

    fn open(p: &Path) -> Dir {
        Dir::open_ambient_dir(p, ambient_authority()).unwrap()
    }

    impl Setup {
        fn keep(&self) -> Result<bool, SigningError> {
            let (live, into) = (open(&self.data), open(&self.restored));
            keep_newest(
                &[Candidate {
                    dir: &live,
                    path: &self.data,
                }],
                &Candidate {
                    dir: &into,
                    path: &self.restored,
                },
                &self.data,
            )
        }

        fn restored_height(&self) -> u64 {
            let bytes = std::fs::read(self.restored.join(SIGNING_STATE)).unwrap();
            position(&bytes).unwrap().0
        }
    }

    #[test]
    fn a_live_state_behind_a_symlink_is_compared_and_kept_as_the_link() {
        let s = setup(9);
        let volume = s.t.path().join("volume");
        std::fs::create_dir(&volume).unwrap();
        std::fs::write(volume.join("state.json"), state(25)).unwrap();
        std::os::unix::fs::symlink(volume.join("state.json"), s.data.join(SIGNING_STATE)).unwrap();
        assert!(s.keep().unwrap());
        assert_eq!(s.restored_height(), 25);
        assert_eq!(
            std::fs::read_link(s.restored.join(SIGNING_STATE)).unwrap(),
            volume.join("state.json"),
            "still the operator's own volume"
        );
        // A relative link climbing out of data/ too.
        let s = setup(9);
        std::fs::write(s.t.path().join("pvs.json"), state(30)).unwrap();
        std::os::unix::fs::symlink("../pvs.json", s.data.join(SIGNING_STATE)).unwrap();
        assert!(s.keep().unwrap());
        assert_eq!(s.restored_height(), 30);
    }

    #[test]
    fn a_live_state_whose_link_cannot_be_followed_stops_the_restore() {
        let s = setup(9);
        std::os::unix::fs::symlink("/nonexistent/volume/state.json", s.data.join(SIGNING_STATE))
            .unwrap();
        let why = s.keep().unwrap_err().to_string();
        assert_eq!(
            why,
            format!(
                "cannot compare the validator's signing state with the backup's: {}/{SIGNING_STATE} is a symlink to /nonexistent/volume/state.json, which cannot be read: No such file or directory (os error 2); restoring without it could let the validator sign a height twice. Make it readable (mount the volume it links to, fix its permissions) and restore again; only if you are sure the backup's is not older, move it out of {}",
                s.data.display(),
                s.data.display()
            )
        );
        assert_eq!(s.restored_height(), 9, "nothing written");
    }

    #[test]
    fn a_padded_live_state_larger_than_a_mib_is_compared() {
        let s = setup(9);
        let mut padded = state(25).into_bytes();
        padded.extend(std::iter::repeat_n(b' ', 3 << 20));
        padded.push(b'\n');
        std::fs::write(s.data.join(SIGNING_STATE), &padded).unwrap();
        assert!(s.keep().unwrap());
        assert_eq!(s.restored_height(), 25);
        assert_eq!(
            std::fs::read(s.restored.join(SIGNING_STATE)).unwrap(),
            padded,
            "the node's bytes, as written"
        );
    }

    #[test]
    fn a_live_state_too_large_or_not_a_state_stops_the_restore() {
        let s = setup(9);
        let f = std::fs::File::create(s.data.join(SIGNING_STATE)).unwrap();
        f.set_len(MAX_STATE + 1).unwrap();
        let state = |e: SigningError| match e {
            SigningError::Compare { source, .. } => source.to_string(),
            other => panic!("{other}"),
        };
        let shown = s.data.join(SIGNING_STATE);
        assert_eq!(
            state(s.keep().unwrap_err()),
            format!(
                "{} holds {} bytes, more than the {MAX_STATE} a signing state could",
                shown.display(),
                MAX_STATE + 1
            )
        );
        std::fs::write(&shown, b"{\"height\":").unwrap();
        assert_eq!(
            state(s.keep().unwrap_err()),
            format!(
                "{} is not a signing state (no height, round and step as CometBFT writes them)",
                shown.display()
            )
        );
        assert_eq!(s.restored_height(), 9);
    }

    #[test]
    fn the_newest_of_every_copy_is_kept_and_a_backup_ahead_stays() {
        let s = setup(9);
        let aside = s.t.path().join(".data.replaced");
        std::fs::create_dir(&aside).unwrap();
        std::fs::write(aside.join(SIGNING_STATE), state(25)).unwrap();
        std::fs::write(s.data.join(SIGNING_STATE), state(0)).unwrap();
        let (live, moved, into) = (open(&s.data), open(&aside), open(&s.restored));
        let c = |dir, path| Candidate { dir, path };
        let kept = keep_newest(
            &[c(&live, &s.data), c(&moved, &aside)],
            &c(&into, &s.restored),
            &s.data,
        );
        assert!(kept.unwrap());
        assert_eq!(s.restored_height(), 25);
        // The backup's, further ahead, is left.
        let s = setup(40);
        std::fs::write(s.data.join(SIGNING_STATE), state(25)).unwrap();
        assert!(!s.keep().unwrap());
        assert_eq!(s.restored_height(), 40);
        // No live copy: the backup's stays.
        let s = setup(9);
        assert!(!s.keep().unwrap());
        assert_eq!(s.restored_height(), 9);
    }
}
