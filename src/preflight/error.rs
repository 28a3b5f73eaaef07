//! Why a staged binary will not run here, in words an operator acts on. Paths are as the
//! operator sees them (relative to the home when under it); outputs are bounded and escaped.

use std::time::Duration;

/// Why the binary is not ready. `Display` is the operator's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("{binary} does not exist")]
    Missing { binary: String },
    #[error("{binary} cannot be read: {error}")]
    Unreadable { binary: String, error: String },
    #[error("{binary} is a {kind}, not a regular file")]
    NotRegular { binary: String, kind: &'static str },
    #[error("{binary} is empty (a download cut short?)")]
    Empty { binary: String },
    #[error("{binary} has no execute permission (`chmod +x` it)")]
    NoExecBit { binary: String },
    #[error(
        "{binary} is not an executable for this machine (an ELF for {arch}, or a script): it is {what}"
    )]
    NotElf {
        binary: String,
        arch: &'static str,
        what: &'static str,
    },
    #[error("{binary} is an ELF {what}, not an executable")]
    NotProgram { binary: String, what: String },
    #[error(
        "{binary} is an ELF executable for {theirs}, not for this machine ({arch}): the plan's binary for another platform?"
    )]
    OtherMachine {
        binary: String,
        theirs: String,
        arch: &'static str,
    },
    #[error("{binary} is not a well-formed ELF file: {what}")]
    Malformed { binary: String, what: String },
    #[error("{binary} is a script for {interpreter}, which {problem}")]
    ScriptInterpreter {
        binary: String,
        interpreter: String,
        problem: &'static str,
    },
    #[error(
        "{binary} needs the ELF interpreter {interpreter}, which {problem}: the binary is built for another libc or distribution"
    )]
    Interpreter {
        binary: String,
        interpreter: String,
        problem: &'static str,
    },
    #[error(transparent)]
    LibraryMissing(Box<LibraryMissing>),
    #[error(transparent)]
    VersionMissing(Box<VersionMissing>),
    #[error("{binary} needs more than {limit} libraries")]
    TooManyLibraries { binary: String, limit: usize },
    #[error("{binary} {command} could not be started: {error}")]
    CannotExec {
        binary: String,
        command: String,
        error: String,
        /// The error's errno, when it has one: whether the host or the binary is at fault.
        errno: Option<i32>,
    },
    #[error("{binary} {command} exited with status {code}{output}")]
    Exited {
        binary: String,
        command: String,
        code: i32,
        output: String,
    },
    #[error("{binary} {command} was killed by signal {signal}{output}")]
    Signalled {
        binary: String,
        command: String,
        signal: i32,
        output: String,
    },
    #[error("{binary} {command} did not finish within {}, and was killed{output}", crate::duration::format(*.after))]
    TimedOut {
        binary: String,
        command: String,
        after: Duration,
        output: String,
    },
    #[error("{binary} {command} was stopped: wasmvisor is stopping")]
    Cancelled { binary: String, command: String },
    #[error("no scratch folder for {binary} {command}: {error}")]
    Scratch {
        binary: String,
        command: String,
        error: String,
    },
}

impl NotReady {
    /// Whether the check says the binary will not run, rather than that it could not tell:
    /// a run that timed out, was cancelled, or could not be started for want of a process,
    /// memory, a descriptor or a scratch folder may do better next time (on a less loaded
    /// host), and one killed by SIGKILL or SIGTERM was most likely stopped from outside (the
    /// kernel's OOM killer, an operator), not by a fault of its own (SIGSEGV, SIGABRT, SIGILL
    /// are conclusive). A binary the kernel refuses to execute (EACCES on a `noexec` mount,
    /// ENOEXEC, ENOENT for its interpreter) is conclusive.
    pub fn is_conclusive(&self) -> bool {
        use nix::libc::{EAGAIN, EMFILE, ENFILE, ENOMEM, ETXTBSY, SIGKILL, SIGTERM};
        match self {
            NotReady::TimedOut { .. } | NotReady::Cancelled { .. } | NotReady::Scratch { .. } => {
                false
            }
            NotReady::CannotExec { errno, .. } => !matches!(
                errno,
                Some(EAGAIN | ENOMEM | EMFILE | ENFILE | ETXTBSY) | None
            ),
            NotReady::Signalled { signal, .. } => !matches!(*signal, SIGKILL | SIGTERM),
            _ => true,
        }
    }
}

/// A needed library the loader will not find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{binary} needs {library}{through}, found neither in {lib_dir}{lib_dir_note} nor in the loader's paths ({searched})"
)]
pub struct LibraryMissing {
    pub binary: String,
    pub library: String,
    /// " (for libwasmvm.so)" when a library needs it, not the binary itself.
    pub through: String,
    pub lib_dir: String,
    pub lib_dir_note: &'static str,
    pub searched: String,
}

/// A symbol version the library the loader finds does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{binary} needs {version} from {file}{through}, and {found} {provides}")]
pub struct VersionMissing {
    pub binary: String,
    pub version: String,
    pub file: String,
    pub through: String,
    /// Where the loader finds `file`.
    pub found: String,
    /// "provides at most GLIBC_2.36", or "does not define it".
    pub provides: String,
}
