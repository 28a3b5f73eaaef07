//! Installing a binary into the tree: `init` (genesis) and `add-upgrade` (an upgrade folder).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Layout, LayoutError};
use crate::fs;

/// Room left on the disk after installing a binary, for the node's own writes.
const INSTALL_MARGIN: u64 = 64 << 20;

impl Layout {
    /// Copies a binary from anywhere into `<rel_dir>/bin/$DAEMON_NAME` with exec bits, atomically.
    /// The source must be a regular file (a device or FIFO is refused before a byte is read),
    /// and the copy streams: its size costs disk, checked first, never memory.
    pub fn install_binary(&self, rel_dir: &Path, source: &Path) -> Result<(), LayoutError> {
        let source_err = |why: String| LayoutError::Source {
            path: source.to_path_buf(),
            why,
        };
        let mut input = fs::open_regular_path(source).map_err(|e| source_err(e.to_string()))?;
        let size = input
            .metadata()
            .map_err(|e| source_err(e.to_string()))?
            .len();
        let bin_dir = rel_dir.join("bin");
        self.root
            .create_dir_all(&bin_dir)
            .map_err(|e| self.io(&bin_dir, e))?;
        let sub = self
            .root
            .open_dir(&bin_dir)
            .map_err(|e| self.io(&bin_dir, e))?;
        let free = fs::free_bytes(&sub).map_err(|e| self.io(&bin_dir, e))?;
        if size.saturating_add(INSTALL_MARGIN) > free {
            return Err(LayoutError::NoSpace {
                path: self.root_path.join(&bin_dir),
                needed: size,
                margin: INSTALL_MARGIN,
                free,
            });
        }
        let target = bin_dir.join(&self.daemon_name);
        let tmp = fs::temp_name(Path::new(&self.daemon_name));
        let copied = (|| {
            let mut out = fs::create_fresh(&sub, &tmp)?;
            std::io::copy(&mut input, &mut out)?;
            out.set_permissions(cap_std::fs::Permissions::from_std(
                std::fs::Permissions::from_mode(0o755),
            ))?;
            out.sync_all()?;
            sub.rename(&tmp, &sub, &self.daemon_name)?;
            fs::sync_dir(&sub)
        })();
        if let Err(e) = copied {
            let _ = sub.remove_file(&tmp);
            return Err(self.io(target, e));
        }
        Ok(())
    }
}

/// ELF `e_machine` of the architecture wasmvisor runs on, and whether its ELF class is 64-bit.
fn this_machine() -> (u16, bool, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => (62, true, "x86_64"),
        "aarch64" => (183, true, "aarch64"),
        "riscv64" => (243, true, "riscv64"),
        "x86" => (3, false, "x86"),
        "arm" => (40, false, "arm"),
        other => (0, true, other),
    }
}

/// Whether a file starting with `head` (its first 64 bytes) is something this machine executes:
/// an ELF executable for its architecture, or a script (`#!`). The error says what it is instead.
pub fn executable(head: &[u8]) -> Result<(), String> {
    if head.starts_with(b"#!") {
        return Ok(());
    }
    let (machine, is64, arch) = this_machine();
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
            return Err(format!(
                "is an ELF file of type {e_type} (an object file or a core dump), not an executable"
            ));
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
        return Err(format!(
            "is an ELF executable for {theirs}, not for this machine ({arch}): the plan's binary for another platform?"
        ));
    }
    Err(format!(
        "is not an executable for this machine (an ELF for {arch}, or a script): it is {}",
        describe(head)
    ))
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
    use super::executable;

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
        let (ours, other) = if cfg!(target_arch = "x86_64") {
            (62, 183)
        } else {
            (183, 62)
        };
        assert!(executable(&elf(2, ours)).is_ok());
        assert!(
            executable(&elf(2, other))
                .unwrap_err()
                .contains("not for this machine")
        );
        assert!(executable(&elf(1, ours)).is_err());
        let mut object = elf(2, ours);
        object[16] = 1;
        assert!(executable(&object).unwrap_err().contains("object file"));
        assert!(
            executable(b"\x1f\x8b\x08\x00")
                .unwrap_err()
                .contains("gzip")
        );
        assert!(executable(b"\xfd7zXZ\x00\x00").unwrap_err().contains("xz"));
        assert!(
            executable(b"<!DOCTYPE html><html>")
                .unwrap_err()
                .contains("HTML")
        );
        assert!(executable(b"").unwrap_err().contains("empty"));
    }
}
