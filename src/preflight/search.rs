//! Finding each needed library as glibc's loader does (`elf/dl-load.c` `_dl_map_object`), then
//! checking the symbol versions asked of it (`elf/dl-version.c`).
//!
//! For a name without a `/`, in order: the DT_RPATH of the object that needs it and of the
//! objects that loaded that one, up to the program (each only when that object has no
//! DT_RUNPATH, and none when the needing object has one); LD_LIBRARY_PATH (the upgrade's `lib/`
//! first, as wasmvisor sets it for the node); the needing object's DT_RUNPATH; `/etc/ld.so.cache`;
//! the default directories. `$ORIGIN` is the needing object's folder. A candidate of another
//! class or machine, or not a shared object, is passed over, as the loader passes it over. A
//! name already loaded (as needed or by its soname) is not searched again. Not modelled: the
//! glibc-hwcaps subdirectories (a library found in one is found in its parent too on every
//! distribution we know), `$LIB` and `$PLATFORM`, secure (setuid) mode.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};

use super::elf::{self, Ident, Object};
use super::error::{LibraryMissing, VersionMissing};
use super::{NotReady, Target, ldcache};

/// Libraries loaded at most: a real node binary needs a handful.
const MAX_OBJECTS: usize = 512;

struct Loaded {
    name: String,
    path: PathBuf,
    origin: PathBuf,
    object: Object,
    /// The object whose need loaded this one (`None` for the program).
    loader: Option<usize>,
}

pub(super) struct Search<'a> {
    t: &'a Target<'a>,
    binary: &'a str,
    ident: Ident,
    loaded: Vec<Loaded>,
    by_name: HashMap<String, usize>,
    cache: Option<Vec<ldcache::Entry>>,
}

impl<'a> Search<'a> {
    pub(super) fn new(t: &'a Target<'a>, binary: &'a str, program: Object) -> Search<'a> {
        let path = t.binary.to_path_buf();
        let origin = std::fs::canonicalize(&path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
        Search {
            t,
            binary,
            ident: program.ident,
            loaded: vec![Loaded {
                name: String::new(),
                path,
                origin,
                object: program,
                loader: None,
            }],
            by_name: HashMap::new(),
            cache: None,
        }
    }

    /// Loads every need breadth-first, as the loader does, then checks the versions.
    pub(super) fn run(mut self) -> Result<Vec<(String, PathBuf)>, NotReady> {
        let mut queue = VecDeque::from([0usize]);
        while let Some(i) = queue.pop_front() {
            for name in self.loaded[i].object.needed.clone() {
                if self.by_name.contains_key(&name) {
                    continue;
                }
                if self.loaded.len() >= MAX_OBJECTS {
                    return Err(NotReady::TooManyLibraries {
                        binary: self.binary.to_string(),
                        limit: MAX_OBJECTS,
                    });
                }
                let (path, object) = self.find(i, &name)?;
                let origin = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let j = self.loaded.len();
                self.by_name.insert(name.clone(), j);
                if let Some(soname) = &object.soname {
                    self.by_name.entry(soname.clone()).or_insert(j);
                }
                self.loaded.push(Loaded {
                    name,
                    path,
                    origin,
                    object,
                    loader: Some(i),
                });
                queue.push_back(j);
            }
        }
        self.versions()?;
        Ok(self.loaded.drain(1..).map(|l| (l.name, l.path)).collect())
    }

    /// " (for libfoo.so)" when the need is a library's, not the program's.
    fn through(&self, i: usize) -> String {
        match i {
            0 => String::new(),
            _ => format!(" (for {})", self.loaded[i].name),
        }
    }

    fn find(&mut self, i: usize, name: &str) -> Result<(PathBuf, Object), NotReady> {
        let mut searched = Vec::new();
        if name.contains('/') {
            let path = PathBuf::from(expand(name, &self.loaded[i].origin));
            if let Some(found) = self.candidate(&path)? {
                return Ok(found);
            }
        } else {
            for dir in self.dirs(i, &mut searched) {
                if let Some(found) = self.candidate(&dir.join(name))? {
                    return Ok(found);
                }
            }
            if !self.loaded[i].object.nodeflib {
                for path in self.cached(name) {
                    if let Some(found) = self.candidate(&path)? {
                        return Ok(found);
                    }
                }
                searched.push(ldcache::PATH.to_string());
                for dir in default_dirs(self.ident.machine, self.ident.class64) {
                    if let Some(found) = self.candidate(&dir.join(name))? {
                        return Ok(found);
                    }
                    if dir.is_dir() {
                        searched.push(dir.display().to_string());
                    }
                }
            }
        }
        let lib_dir_note = if self.t.lib_dir.is_dir() {
            ""
        } else {
            " (which does not exist)"
        };
        Err(NotReady::LibraryMissing(Box::new(LibraryMissing {
            binary: self.binary.to_string(),
            library: crate::output::escape_controls(name).into_owned(),
            through: self.through(i),
            lib_dir: self.t.show(self.t.lib_dir),
            lib_dir_note,
            searched: searched.join(", "),
        })))
    }

    /// The directories searched before the cache, in order, naming each kind in `searched`.
    fn dirs(&self, i: usize, searched: &mut Vec<String>) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if self.loaded[i].object.runpath.is_none() {
            let mut l = Some(i);
            while let Some(k) = l {
                let o = &self.loaded[k];
                if let (None, Some(rpath)) = (&o.object.runpath, &o.object.rpath) {
                    dirs.extend(split(rpath, &o.origin));
                    push_once(searched, "RPATH");
                }
                l = o.loader;
            }
        }
        dirs.push(self.t.lib_dir.to_path_buf());
        if let Some(env) = self.t.env_ld_library_path.filter(|v| !v.is_empty()) {
            dirs.extend(split(&env.to_string_lossy(), &self.loaded[0].origin));
            searched.push("LD_LIBRARY_PATH".to_string());
        }
        if let Some(runpath) = &self.loaded[i].object.runpath {
            dirs.extend(split(runpath, &self.loaded[i].origin));
            searched.push("RUNPATH".to_string());
        }
        dirs
    }

    /// The cache's files for `name` this program's loader accepts, base directories first.
    fn cached(&mut self, name: &str) -> Vec<PathBuf> {
        let cache = self.cache.get_or_insert_with(|| {
            crate::fs::read_regular_path(Path::new(ldcache::PATH), ldcache::MAX_BYTES)
                .ok()
                .and_then(|bytes| ldcache::parse(&bytes).ok())
                .unwrap_or_default()
        });
        let (machine, class64) = (self.ident.machine, self.ident.class64);
        let mut hits: Vec<&ldcache::Entry> = cache
            .iter()
            .filter(|e| e.key == name && ldcache::accepts(e, machine, class64))
            .collect();
        hits.sort_by_key(|e| e.hwcap != 0);
        hits.into_iter().map(|e| PathBuf::from(&e.value)).collect()
    }

    /// The library at `path` if the loader would take it: a shared object of the program's
    /// class and machine. `Ok(None)` passes it over; a library it takes but cannot parse fails.
    fn candidate(&self, path: &Path) -> Result<Option<(PathBuf, Object)>, NotReady> {
        let Ok(file) = File::open(path) else {
            return Ok(None);
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        let Some(ident) = elf::ident(&file) else {
            return Ok(None);
        };
        let same = ident.class64 == self.ident.class64
            && ident.little == self.ident.little
            && ident.machine == self.ident.machine;
        if !same || ident.e_type != object::elf::ET_DYN {
            return Ok(None);
        }
        let shown = self.t.show(path);
        match elf::read(file) {
            Ok(elf::Kind::Elf(object)) => Ok(Some((path.to_path_buf(), *object))),
            Ok(_) => Ok(None),
            Err(what) => Err(NotReady::Malformed {
                binary: shown,
                what,
            }),
        }
    }

    /// Each version each object asks of a library is defined by the library it gets.
    fn versions(&self) -> Result<(), NotReady> {
        for (i, l) in self.loaded.iter().enumerate() {
            for need in &l.object.verneed {
                let Some(&k) = self.by_name.get(&need.file) else {
                    continue;
                };
                // No version definitions: glibc accepts it (and only says so when verbose).
                let Some(defined) = &self.loaded[k].object.verdef else {
                    continue;
                };
                for v in need.versions.iter().filter(|v| !v.weak) {
                    if !defined.contains(&v.name) {
                        return Err(NotReady::VersionMissing(Box::new(VersionMissing {
                            binary: self.binary.to_string(),
                            version: v.name.clone(),
                            file: need.file.clone(),
                            through: self.through(i),
                            found: self.t.show(&self.loaded[k].path),
                            provides: provides(&v.name, defined),
                        })));
                    }
                }
            }
        }
        Ok(())
    }
}

fn push_once(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|s| s == item) {
        list.push(item.to_string());
    }
}

/// A search path split as the loader splits it (`:` and `;`), `$ORIGIN` expanded, empty
/// entries (the process's working folder, which is not the node's) left out.
fn split(list: &str, origin: &Path) -> Vec<PathBuf> {
    list.split([':', ';'])
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(expand(d, origin)))
        .collect()
}

fn expand(path: &str, origin: &Path) -> String {
    let origin = origin.to_string_lossy();
    path.replace("${ORIGIN}", &origin)
        .replace("$ORIGIN", &origin)
}

/// "provides at most GLIBC_2.36": the highest version of the same family the library defines.
pub(super) fn provides(needed: &str, defined: &[String]) -> String {
    let family = needed.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let best = defined
        .iter()
        .filter(|d| d.len() > family.len() && d.starts_with(family))
        .filter(|d| d[family.len()..].starts_with(|c: char| c.is_ascii_digit()))
        .max_by(|a, b| version_key(&a[family.len()..]).cmp(&version_key(&b[family.len()..])));
    match best {
        Some(best) if !family.is_empty() => format!("provides at most {best}"),
        _ => "does not define it".to_string(),
    }
}

fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The loader's default directories for this machine (Debian's multiarch ones, then the
/// lib64 of Red Hat and SUSE, then the classic ones); a missing one is simply not there.
pub(super) fn default_dirs(machine: u16, class64: bool) -> Vec<PathBuf> {
    let (triplet, lib64) = match (machine, class64) {
        (62, true) => ("x86_64-linux-gnu", true),
        (62, false) => ("x86_64-linux-gnux32", false),
        (183, true) => ("aarch64-linux-gnu", true),
        (243, true) => ("riscv64-linux-gnu", true),
        (3, false) => ("i386-linux-gnu", false),
        (40, false) => ("arm-linux-gnueabihf", false),
        _ => ("", class64),
    };
    let mut dirs = Vec::new();
    if !triplet.is_empty() {
        dirs.push(PathBuf::from(format!("/lib/{triplet}")));
        dirs.push(PathBuf::from(format!("/usr/lib/{triplet}")));
    }
    if lib64 {
        dirs.push(PathBuf::from("/lib64"));
        dirs.push(PathBuf::from("/usr/lib64"));
    }
    dirs.push(PathBuf::from("/lib"));
    dirs.push(PathBuf::from("/usr/lib"));
    dirs
}
