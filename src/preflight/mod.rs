//! Will this staged node binary run on this host? Answered before the halt, so that a binary
//! needing a newer glibc, a missing `libwasmvm.so` or a crashing `version` is found days ahead
//! rather than with the network waiting.
//!
//! - [`dynamic_needs`]: the checks of the files, as the kernel and glibc's loader make them —
//!   the interpreter exists, every needed library (transitively) is found where the loader
//!   will look, and each symbol version the binary asks of a library is defined by the library
//!   it will get (elf.rs reads an ELF, search.rs finds libraries, ldcache.rs reads the cache);
//! - [`run_version`]: `<binary> version` (or the configured arguments) in a scratch folder,
//!   bounded in time and output (run.rs);
//! - [`warm`]: the binary and its `lib/` read into the page cache shortly before the upgrade
//!   (warm.rs).
//!
//! It knows nothing of the home, plans or the node's run: its caller names the files.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

mod elf;
mod error;
mod ldcache;
mod run;
mod search;
mod warm;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

pub use error::{LibraryMissing, NotReady, VersionMissing};
pub use run::{Exit, Launched, Launcher, Ran, run_version, run_version_with};
pub use warm::{Warmed, warm};

/// The binary to check and where the loader will look for its libraries.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub binary: &'a Path,
    /// `upgrades/<name>/lib`, first on the node's LD_LIBRARY_PATH (it may not exist).
    pub lib_dir: &'a Path,
    /// The LD_LIBRARY_PATH wasmvisor itself was given, which follows `lib_dir`.
    pub env_ld_library_path: Option<&'a OsStr>,
    /// Paths under it are shown relative to it (the home, `DAEMON_HOME`).
    pub display_root: Option<&'a Path>,
}

impl Target<'_> {
    /// A path as the operator reads it: relative to the home when under it.
    pub(crate) fn show(&self, path: &Path) -> String {
        let rel = self
            .display_root
            .and_then(|root| path.strip_prefix(root).ok())
            .filter(|rel| !rel.as_os_str().is_empty());
        crate::output::escape_controls(&rel.unwrap_or(path).to_string_lossy()).into_owned()
    }
}

/// How the binary is linked, once every need is met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linkage {
    /// PT_INTERP (the dynamic loader); `None` for a static binary or a script.
    pub interpreter: Option<PathBuf>,
    /// Every library loaded, transitively, in the loader's order: its name as needed, and the
    /// file the loader finds for it.
    pub libraries: Vec<(String, PathBuf)>,
    /// No interpreter and no libraries: nothing on the host it depends on (a script is not).
    pub static_binary: bool,
}

/// The loader's default folders on this machine, in its order.
pub fn loader_dirs() -> Vec<PathBuf> {
    let (machine, class64, _) = this_machine();
    search::default_dirs(machine, class64)
}

/// The architecture wasmvisor runs on: ELF `e_machine`, class, and its name.
pub(crate) fn this_machine() -> (u16, bool, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => (62, true, "x86_64"),
        "aarch64" => (183, true, "aarch64"),
        "riscv64" => (243, true, "riscv64"),
        "x86" => (3, false, "x86"),
        "arm" => (40, false, "arm"),
        other => (0, true, other),
    }
}

fn machine_name(machine: u16, class64: bool) -> String {
    let name = match machine {
        62 => "x86_64",
        183 => "aarch64",
        243 if class64 => "riscv64",
        3 => "x86",
        40 => "arm",
        8 => "mips",
        20 => "powerpc",
        21 => "powerpc64",
        22 => "s390",
        _ => return format!("machine {machine}"),
    };
    if machine == 62 && !class64 {
        "x32".to_string()
    } else {
        name.to_string()
    }
}

/// Whether the binary's dynamic needs are met on this host: read from its files only (no
/// process is started), in milliseconds even for a large binary.
pub fn dynamic_needs(t: &Target) -> Result<Linkage, NotReady> {
    let binary = t.show(t.binary);
    let meta = match std::fs::metadata(t.binary) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NotReady::Missing { binary });
        }
        Err(e) => {
            return Err(NotReady::Unreadable {
                binary,
                error: e.to_string(),
            });
        }
    };
    if !meta.is_file() {
        return Err(NotReady::NotRegular {
            binary,
            kind: kind(meta.file_type()),
        });
    }
    if meta.len() == 0 {
        return Err(NotReady::Empty { binary });
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(NotReady::NoExecBit { binary });
    }
    let file = File::open(t.binary).map_err(|e| NotReady::Unreadable {
        binary: binary.clone(),
        error: e.to_string(),
    })?;
    // The kernel's checks first: a binary for another machine is said to be one, whole or not.
    if let Some(ident) = elf::ident(&file) {
        program(&binary, &ident)?;
    }
    let object = match elf::read(file) {
        Err(what) => return Err(NotReady::Malformed { binary, what }),
        Ok(elf::Kind::Script(interpreter)) => return script(&binary, interpreter),
        Ok(elf::Kind::Other(what)) => {
            return Err(NotReady::NotElf {
                binary,
                arch: this_machine().2,
                what,
            });
        }
        Ok(elf::Kind::Elf(object)) => object,
    };
    let Some(interpreter) = object.interpreter.clone() else {
        if object.needed.is_empty() {
            return Ok(Linkage {
                interpreter: None,
                libraries: Vec::new(),
                static_binary: true,
            });
        }
        let what = "it needs libraries but names no interpreter to load them".to_string();
        return Err(NotReady::Malformed { binary, what });
    };
    if let Some(problem) = not_runnable(Path::new(&interpreter)) {
        return Err(NotReady::Interpreter {
            binary,
            interpreter,
            problem,
        });
    }
    let libraries = search::Search::new(t, &binary, *object).run()?;
    Ok(Linkage {
        interpreter: Some(PathBuf::from(interpreter)),
        libraries,
        static_binary: false,
    })
}

/// The kernel's checks of the program itself: an executable (or PIE) for this machine.
fn program(binary: &str, ident: &elf::Ident) -> Result<(), NotReady> {
    let (machine, class64, arch) = this_machine();
    if !matches!(ident.e_type, object::elf::ET_EXEC | object::elf::ET_DYN) {
        let what = match ident.e_type {
            object::elf::ET_REL => "object file".to_string(),
            object::elf::ET_CORE => "core dump".to_string(),
            other => format!("file of type {other}"),
        };
        return Err(NotReady::NotProgram {
            binary: binary.to_string(),
            what,
        });
    }
    if ident.machine != machine || ident.class64 != class64 {
        let theirs = machine_name(ident.machine, ident.class64);
        return Err(NotReady::OtherMachine {
            binary: binary.to_string(),
            theirs,
            arch,
        });
    }
    Ok(())
}

/// A script runs when the interpreter its `#!` line names does.
fn script(binary: &str, interpreter: String) -> Result<Linkage, NotReady> {
    let problem = if interpreter.is_empty() {
        Some("is not named (an empty `#!` line)")
    } else {
        not_runnable(Path::new(&interpreter))
    };
    match problem {
        Some(problem) => Err(NotReady::ScriptInterpreter {
            binary: binary.to_string(),
            interpreter,
            problem,
        }),
        None => Ok(Linkage {
            interpreter: None,
            libraries: Vec::new(),
            static_binary: false,
        }),
    }
}

/// Why a file the kernel is to execute cannot be: absent, not a file, not executable.
fn not_runnable(path: &Path) -> Option<&'static str> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist on this host"),
        Err(_) => Some("cannot be read"),
        Ok(m) if !m.is_file() => Some("is not a regular file"),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Some("is not executable"),
        Ok(_) => None,
    }
}

/// A file type in words (the `std` twin of `fs::kind`, which takes cap-std's).
pub(crate) fn kind(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "device"
    } else {
        "special file"
    }
}
