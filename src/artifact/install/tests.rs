//! Why an archive was not installed, as values: the binary not found (and the files listed
//! instead), a `//subfolder` that is not there, an entry of a refused kind — each message what
//! the operator saw when they were strings.

use cap_std::ambient_authority;

use super::*;
use crate::artifact::unpack::tests::{binary, gz, tar};

/// Installs `bytes` (downloaded as `name`) into a fresh tree, from the `//subdir` if any.
fn install_as(name: &str, bytes: &[u8], subdir: Option<&str>) -> Result<(), InstallError> {
    let scratch = tempfile::tempdir().unwrap();
    let (root_path, work_path) = (scratch.path().join("root"), scratch.path().join("work"));
    std::fs::create_dir(&root_path).unwrap();
    std::fs::create_dir(&work_path).unwrap();
    std::fs::write(work_path.join(name), bytes).unwrap();
    let root = Dir::open_ambient_dir(&root_path, ambient_authority()).unwrap();
    let work = Dir::open_ambient_dir(&work_path, ambient_authority()).unwrap();
    let how = Unpack {
        archive: Archive::Detect,
        extension: Format::from_path(name),
        subdir: subdir.map(str::to_string),
    };
    let result = install(&root, &work, name, &how, "v2", "simd", &Limits::default());
    // Nothing is left half-installed, nor the staging folder.
    if result.is_err() {
        assert!(!root_path.join("upgrades/v2/bin/simd").exists());
    }
    let upgrades: Vec<_> = std::fs::read_dir(root_path.join("upgrades"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(upgrades.iter().all(|n| n != ".v2.unpack"), "{upgrades:?}");
    result.map(drop)
}

#[test]
fn an_archive_without_the_binary_lists_what_it_holds() {
    let script = binary();
    let many: Vec<(String, &[u8])> = (0..10)
        .map(|i| (format!("doc/{i}.txt"), &script[..]))
        .collect();
    let entries: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let e = install_as("simd.tar.gz", &gz(&tar(&entries)), None).unwrap_err();
    let InstallError::NoBinary {
        daemon,
        subdir,
        files,
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!((daemon.as_str(), subdir, files.len()), ("simd", &None, 10));
    assert_eq!(
        e.to_string(),
        "the archive holds neither bin/simd nor simd but: doc/0.txt, doc/1.txt, doc/2.txt, doc/3.txt, doc/4.txt, doc/5.txt, doc/6.txt, doc/7.txt, … (10 files) (name the folder that holds it with //<folder> after the URL)"
    );
    let empty = tar(&[]);
    let e = install_as("simd.tar", &empty, Some("release")).unwrap_err();
    assert!(matches!(e, InstallError::NoFolder { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "the archive has no folder release (//release)"
    );
}

#[test]
fn a_subfolder_glob_matching_several_folders_names_them() {
    let script = binary();
    let archive = tar(&[("a-1/simd", &script), ("a-2/simd", &script)]);
    let e = install_as("simd.tar", &archive, Some("a-*")).unwrap_err();
    let InstallError::SeveralFolders { folders, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(folders, &["a-1", "a-2"]);
    assert_eq!(e.to_string(), "//a-* matches several folders: a-1, a-2");
    // The one it names is installed.
    install_as("simd.tar", &archive, Some("a-2")).unwrap();
}

#[test]
fn a_refused_entry_or_binary_keeps_its_kind() {
    // A symlink in a tar: the unpacking's own error, unchanged.
    let mut builder = ::tar::Builder::new(Vec::new());
    let mut header = ::tar::Header::new_gnu();
    header.set_entry_type(::tar::EntryType::Symlink);
    header.set_size(0);
    builder
        .append_link(&mut header, "bin/simd", "/bin/sh")
        .unwrap();
    let e = install_as("simd.tar", &builder.into_inner().unwrap(), None).unwrap_err();
    assert!(
        matches!(
            &e,
            InstallError::Unpack(UnpackError::Special { kind, .. }) if *kind == ::tar::EntryType::Symlink
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the archive entry bin/simd is a Symlink; only files and directories are accepted"
    );
    // Text taken for the binary: not an executable for this machine.
    let e = install_as("simd", b"<html>Not Found</html>", None).unwrap_err();
    let InstallError::NotExecutable { path, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(path, Path::new("bin/simd"));
    assert!(e.to_string().starts_with("bin/simd "), "{e}");
}
