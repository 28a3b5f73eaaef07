//! The binary's own checks (scripts, folders, empty files, other machines), the version
//! families in a reason, and the warming.

use super::super::*;

/// Checks a file written with `bytes` and `mode` at `<home>/upgrades/v2/bin/gaiad`.
fn check_file(bytes: &[u8], mode: u32) -> Result<Linkage, NotReady> {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let binary = t.path().join("gaiad");
    std::fs::write(&binary, bytes).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(mode)).unwrap();
    dynamic_needs(&Target {
        binary: &binary,
        lib_dir: t.path(),
        env_ld_library_path: None,
        display_root: Some(t.path()),
    })
}

#[test]
fn scripts_directories_empty_files_and_other_machines_have_their_reasons() {
    assert!(check_file(b"#!/bin/sh\necho hi\n", 0o755).is_ok());
    assert_eq!(
        check_file(b"#! /nonexistent/sh -e\n", 0o755)
            .unwrap_err()
            .to_string(),
        "gaiad is a script for /nonexistent/sh, which does not exist on this host"
    );
    assert_eq!(
        check_file(b"", 0o755).unwrap_err().to_string(),
        "gaiad is empty (a download cut short?)"
    );
    assert_eq!(
        check_file(b"#!/bin/sh\n", 0o644).unwrap_err().to_string(),
        "gaiad has no execute permission (`chmod +x` it)"
    );
    let html = check_file(b"<html>404</html>", 0o755)
        .unwrap_err()
        .to_string();
    assert!(
        html.ends_with("it is an HTML or XML document (an error page?)"),
        "{html}"
    );
    let mut other = std::fs::read(std::env::current_exe().unwrap())
        .map(|b| b[..4096].to_vec())
        .unwrap();
    other[18..20].copy_from_slice(&183u16.to_le_bytes());
    let reason = check_file(&other, 0o755).unwrap_err().to_string();
    assert!(
        reason.starts_with("gaiad is an ELF executable for aarch64, not for this machine"),
        "{reason}"
    );

    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("gaiad");
    std::fs::create_dir(&dir).unwrap();
    let target = Target {
        binary: &dir,
        lib_dir: t.path(),
        env_ld_library_path: None,
        display_root: Some(t.path()),
    };
    assert_eq!(
        dynamic_needs(&target).unwrap_err().to_string(),
        "gaiad is a directory, not a regular file"
    );
    let gone = t.path().join("nothing");
    let target = Target {
        binary: &gone,
        ..target
    };
    assert_eq!(
        dynamic_needs(&target).unwrap_err().to_string(),
        "nothing does not exist"
    );
}

#[test]
fn a_truncated_elf_is_malformed_not_a_panic() {
    let head = std::fs::read(std::env::current_exe().unwrap())
        .map(|b| b[..200].to_vec())
        .unwrap();
    let reason = check_file(&head, 0o755).unwrap_err();
    assert!(matches!(reason, NotReady::Malformed { .. }), "{reason}");
}

#[test]
fn provides_names_the_highest_version_of_the_family() {
    let defined: Vec<String> = [
        "libc.so.6",
        "GLIBC_2.2.5",
        "GLIBC_2.9",
        "GLIBC_2.36",
        "GLIBC_2.17",
        "GLIBC_PRIVATE",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        search::provides("GLIBC_2.38", &defined),
        "provides at most GLIBC_2.36"
    );
    assert_eq!(
        search::provides("GLIBCXX_3.4.32", &defined),
        "does not define it"
    );
}

#[test]
fn warm_reads_the_binary_and_every_file_of_lib_once_and_nothing_outside() {
    let t = tempfile::tempdir().unwrap();
    let lib = t.path().join("lib");
    std::fs::create_dir_all(lib.join("sub")).unwrap();
    std::fs::write(t.path().join("gaiad"), vec![1u8; 300_000]).unwrap();
    std::fs::write(lib.join("libwasmvm.so"), vec![2u8; 1000]).unwrap();
    std::fs::write(lib.join("sub/extra.so"), vec![3u8; 10]).unwrap();
    std::os::unix::fs::symlink("libwasmvm.so", lib.join("libwasmvm.so.1")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", lib.join("escape")).unwrap();
    let cancel = crate::cancel::Cancel::new();
    let paths = [t.path().join("gaiad"), lib, t.path().join("no-such-lib")];
    let warmed = warm(&paths, &cancel).unwrap();
    assert_eq!((warmed.files, warmed.bytes), (3, 301_010));
}
