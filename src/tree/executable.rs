//! Whether a file is something this machine executes, told from its first bytes: an ELF for its
//! architecture, or a script. What it is instead is said in words (an archive, an error page, a
//! build for another platform), for the binary checks of the tree and of a download.

/// Why a file is not an executable for this machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotExecutable {
    #[error("is an ELF file of type {e_type} (an object file or a core dump), not an executable")]
    NotProgram { e_type: u16 },
    #[error(
        "is an ELF executable for {theirs}, not for this machine ({arch}): the plan's binary for another platform?"
    )]
    OtherMachine {
        theirs: &'static str,
        arch: &'static str,
    },
    #[error("is not an executable for this machine (an ELF for {arch}, or a script): it is {what}")]
    NotElf {
        arch: &'static str,
        what: &'static str,
    },
}

/// What is wrong with the binary of a folder in the tree, said after its path.
#[derive(Debug, thiserror::Error)]
pub enum BinaryFault {
    #[error("is not a regular file")]
    NotRegular,
    #[error("has no execute permission (`chmod +x` it)")]
    NoExecBit,
    #[error("cannot be read: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("cannot be used: {0}")]
    Unusable(#[source] std::io::Error),
    #[error(transparent)]
    NotExecutable(#[from] NotExecutable),
}

/// Whether a file starting with `head` (its first 64 bytes) is something this machine executes:
/// an ELF executable for its architecture, or a script (`#!`). The error says what it is instead.
pub fn executable(head: &[u8]) -> Result<(), NotExecutable> {
    if head.starts_with(b"#!") {
        return Ok(());
    }
    let (machine, is64, arch) = crate::preflight::this_machine();
    if head.starts_with(b"\x7fELF") && head.len() >= 20 {
        let class64 = head[4] == 2;
        let little = head[5] == 1;
        let e_machine = if little {
            u16::from_le_bytes([head[18], head[19]])
        } else {
            u16::from_be_bytes([head[18], head[19]])
        };
        let e_type = if little {
            u16::from_le_bytes([head[16], head[17]])
        } else {
            u16::from_be_bytes([head[16], head[17]])
        };
        // ET_EXEC, or ET_DYN (position-independent executables, and shared libraries, which
        // the ELF header alone cannot tell apart); never an object file or a core dump.
        if !matches!(e_type, 2 | 3) {
            return Err(NotExecutable::NotProgram { e_type });
        }
        if e_machine == machine && class64 == is64 {
            return Ok(());
        }
        let theirs = match e_machine {
            62 => "x86_64",
            183 => "aarch64",
            243 => "riscv64",
            3 => "x86",
            40 => "arm",
            _ => "another architecture",
        };
        return Err(NotExecutable::OtherMachine { theirs, arch });
    }
    Err(NotExecutable::NotElf {
        arch,
        what: describe(head),
    })
}

/// What a file's first bytes show, in words.
pub fn describe(head: &[u8]) -> &'static str {
    match head {
        [] => "empty",
        [0x7f, b'E', b'L', b'F', ..] => "a truncated ELF file",
        [b'M', b'Z', ..] => "a Windows executable",
        [0xcf, 0xfa, 0xed, 0xfe, ..]
        | [0xfe, 0xed, 0xfa, 0xcf, ..]
        | [0xca, 0xfe, 0xba, 0xbe, ..] => "a macOS executable",
        [0x1f, 0x8b, ..] => "a gzip archive",
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => "an xz archive",
        [b'B', b'Z', b'h', ..] => "a bzip2 archive",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "a zstd archive",
        [b'P', b'K', 3, 4, ..] => "a zip archive",
        _ => {
            let text = String::from_utf8_lossy(head).to_ascii_lowercase();
            if text.contains("<html") || text.contains("<!doctype") {
                "an HTML page (an error page instead of the binary?)"
            } else if head
                .iter()
                .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
            {
                "text"
            } else {
                "of no executable format"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BinaryFault, NotExecutable, executable};

    fn elf(class: u8, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = 1;
        h[16] = 2;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn only_this_machines_executables_and_scripts_pass() {
        assert!(executable(b"#!/bin/sh\nexec x\n").is_ok());
        let (ours, other, ours_name, other_name) = if cfg!(target_arch = "x86_64") {
            (62, 183, "x86_64", "aarch64")
        } else {
            (183, 62, "aarch64", "x86_64")
        };
        assert!(executable(&elf(2, ours)).is_ok());
        assert_eq!(
            executable(&elf(2, other)),
            Err(NotExecutable::OtherMachine {
                theirs: other_name,
                arch: ours_name
            })
        );
        assert!(executable(&elf(1, ours)).is_err());
        let mut object = elf(2, ours);
        object[16] = 1;
        assert_eq!(
            executable(&object),
            Err(NotExecutable::NotProgram { e_type: 1 })
        );
        let what = |head: &[u8]| match executable(head) {
            Err(NotExecutable::NotElf { what, .. }) => what,
            other => panic!("{other:?}"),
        };
        assert_eq!(what(b"\x1f\x8b\x08\x00"), "a gzip archive");
        assert_eq!(what(b"\xfd7zXZ\x00\x00"), "an xz archive");
        assert_eq!(
            what(b"<!DOCTYPE html><html>"),
            "an HTML page (an error page instead of the binary?)"
        );
        assert_eq!(what(b""), "empty");
    }

    /// A binary of the tree that cannot run is named with what is wrong and what to do, in the
    /// words the reason had when it was a string.
    #[test]
    fn a_bad_binary_reads_path_reason_and_fix() {
        let bad = |why| {
            crate::tree::LayoutError::BadBinary {
                path: "/h/cosmovisor/genesis/bin/gaiad".into(),
                why,
            }
            .to_string()
        };
        let fix =
            "; replace it with the right binary (`wasmvisor add-upgrade <name> <binary> --force`)";
        let gone = || std::io::Error::from(std::io::ErrorKind::NotFound);
        for (got, reason) in [
            (
                bad(BinaryFault::NotRegular),
                "is not a regular file".to_string(),
            ),
            (
                bad(BinaryFault::NoExecBit),
                "has no execute permission (`chmod +x` it)".into(),
            ),
            (
                bad(BinaryFault::Unreadable(gone())),
                format!("cannot be read: {}", gone()),
            ),
            (
                bad(BinaryFault::Unusable(gone())),
                format!("cannot be used: {}", gone()),
            ),
            (
                bad(NotExecutable::NotProgram { e_type: 4 }.into()),
                "is an ELF file of type 4 (an object file or a core dump), not an executable"
                    .into(),
            ),
        ] {
            assert_eq!(
                got,
                format!("/h/cosmovisor/genesis/bin/gaiad {reason}{fix}")
            );
        }
    }

    /// The words an operator reads, exactly as they were when the reason was a string.
    #[test]
    fn each_reason_reads_as_before() {
        let cases = [
            (
                NotExecutable::NotProgram { e_type: 4 },
                "is an ELF file of type 4 (an object file or a core dump), not an executable",
            ),
            (
                NotExecutable::OtherMachine {
                    theirs: "arm",
                    arch: "x86_64",
                },
                "is an ELF executable for arm, not for this machine (x86_64): the plan's binary for another platform?",
            ),
            (
                NotExecutable::NotElf {
                    arch: "x86_64",
                    what: "a zip archive",
                },
                "is not an executable for this machine (an ELF for x86_64, or a script): it is a zip archive",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }
}
