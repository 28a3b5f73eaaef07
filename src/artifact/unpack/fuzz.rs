//! Property tests of archive entry names: whatever names a hostile archive carries (absolute,
//! `..`, `.`, empty parts), unpacking writes inside the staging folder or is refused with a
//! reason — never a panic, never a file outside.

use std::io::{Read, Write};
use std::path::{Component, Path};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use proptest::prelude::*;

use super::*;

/// Entry names built from the parts that make paths dangerous.
fn entry_name() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just(String::new()),
        Just("bin".to_string()),
        Just("simd".to_string()),
        "[a-z]{1,4}",
        "[^/\\x00]{1,6}",
    ];
    (any::<bool>(), prop::collection::vec(part, 1..5)).prop_map(|(absolute, parts)| {
        let joined = parts.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
    })
}

/// A tar.gz whose entries carry these names verbatim (written into the header by hand: the
/// `tar` crate's own setters refuse the dangerous ones).
fn archive(entries: &[(String, bool)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, is_dir) in entries {
        let mut header = tar::Header::new_old();
        let bytes = name.as_bytes();
        let n = bytes.len().min(99);
        header.as_old_mut().name[..n].copy_from_slice(&bytes[..n]);
        header.set_mode(0o755);
        if *is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_cksum();
            builder.append(&header, std::io::empty()).unwrap();
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(4);
            header.set_cksum();
            builder.append(&header, &b"\x7fELF"[..]).unwrap();
        }
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Every path under `dir`, relative to `base`.
fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path().strip_prefix(base).unwrap().display().to_string());
        if e.file_type().unwrap().is_dir() {
            walk(base, &e.path(), out);
        }
    }
}

proptest! {
    #[test]
    fn a_safe_path_stays_inside(name in entry_name()) {
        match safe_path(Path::new(&name)) {
            Ok(path) => {
                prop_assert!(!path.as_os_str().is_empty());
                prop_assert!(path.components().all(|c| matches!(c, Component::Normal(_))));
            }
            Err(reason) => prop_assert!(reason.to_string().contains("archive entry"), "{}", reason),
        }
    }

    #[test]
    fn an_archive_of_any_names_unpacks_inside_or_is_refused(
        entries in prop::collection::vec((entry_name(), any::<bool>()), 1..6)
    ) {
        let scratch = tempfile::tempdir().unwrap();
        let staging = scratch.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        let file_path = scratch.path().join("artifact.tar.gz");
        std::fs::File::create(&file_path).unwrap().write_all(&archive(&entries)).unwrap();
        let dir = Dir::open_ambient_dir(&staging, ambient_authority()).unwrap();
        let result = tar(
            flate2::read::GzDecoder::new(std::fs::File::open(&file_path).unwrap()),
            &dir,
            &crate::artifact::Limits::default(),
        );
        if let Err(reason) = &result {
            prop_assert!(!reason.to_string().is_empty());
        }
        // Nothing beside the staging folder and the archive itself.
        let mut beside: Vec<String> = std::fs::read_dir(scratch.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        beside.sort();
        prop_assert_eq!(beside, ["artifact.tar.gz", "staging"]);
        let mut inside = Vec::new();
        walk(&staging, &staging, &mut inside);
        for path in inside {
            prop_assert!(safe_path(Path::new(&path)).is_ok(), "{}", path);
        }
    }
}

/// Each format a release comes in (made once: the cases share them).
fn formats() -> &'static [(&'static str, Vec<u8>)] {
    static FORMATS: std::sync::OnceLock<Vec<(&'static str, Vec<u8>)>> = std::sync::OnceLock::new();
    FORMATS.get_or_init(tests::every_format)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// A flipped bit anywhere in a compressed release (header, data, checksum, trailer)
    /// installs the original binary and library, or nothing — never other bytes: a plan without
    /// `?checksum=` has only the format's own checks.
    #[test]
    fn a_flipped_bit_installs_the_original_or_nothing(
        format in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let (name, packed) = &formats()[format.index(formats().len())];
        let mut flipped = packed.clone();
        flipped[at.index(packed.len())] ^= 1 << bit;
        match tests::install(name, &flipped) {
            Ok((binary, library)) => {
                prop_assert!(binary == tests::binary(), "{}: another binary installed", name);
                if let Some(library) = library {
                    prop_assert!(library == tests::LIBRARY, "{}: another library installed", name);
                }
            }
            Err(why) => prop_assert!(!why.is_empty()),
        }
    }

    /// Bytes overwritten anywhere in a compressed file, several at once: the original content
    /// or an error, never a panic, never other bytes.
    #[test]
    fn overwritten_bytes_decode_to_the_original_or_are_refused(
        format in 0..4usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let binary = tests::binary();
        let (c, packed) = match format {
            0 => (Format::Gz, tests::gz(&binary)),
            1 => (Format::Xz, tests::xz(&binary)),
            2 => (Format::Bz2, tests::bz2(&binary)),
            _ => (Format::Zst, tests::zst(&binary)),
        };
        let mut edited = packed.clone();
        for (at, byte) in edits {
            let at = at.index(edited.len());
            edited[at] = byte;
        }
        if let Ok(out) = tests::decode(c, &edited) {
            prop_assert!(out == binary, "{} decoded to other bytes", c.name());
        }
    }

    /// Tar headers of any kind and size field (octal, base-256 up to 2^64 - 1, not a number),
    /// with bodies of any length: read along, or refused, never a panic or a wrapped size.
    #[test]
    fn any_tar_header_is_read_along_without_a_panic(
        entries in prop::collection::vec(
            (
                any::<u8>(),
                prop_oneof![
                    (u64::MAX - 1024..=u64::MAX).prop_map(Some),
                    any::<u64>().prop_map(Some),
                    Just(None),
                ],
                prop::collection::vec(any::<u8>(), 12),
                prop::collection::vec(any::<u8>(), 0..1100),
            ),
            1..4,
        ),
    ) {
        let mut stream = Vec::new();
        for (kind, binary_size, text_size, body) in entries {
            let mut header = vec![0u8; 512];
            header[..4].copy_from_slice(b"simd");
            match binary_size {
                Some(size) => {
                    header[124] = 0x80;
                    header[128..136].copy_from_slice(&size.to_be_bytes());
                }
                None => header[124..136].copy_from_slice(&text_size),
            }
            header[156] = kind;
            stream.extend(header);
            stream.extend(body);
        }
        let mut guarded = super::super::guard::TarStream::new(stream.as_slice(), 1 << 20);
        let mut sink = [0u8; 333];
        while let Ok(n) = Read::read(&mut guarded, &mut sink) {
            if n == 0 {
                break;
            }
        }
    }

    /// Whatever follows a valid header, the xz and zstd structure readers never panic.
    #[test]
    fn arbitrary_bytes_after_a_header_never_panic(
        zstd in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let (c, mut bytes) = if zstd {
            (Format::Zst, vec![0x28, 0xb5, 0x2f, 0xfd])
        } else {
            (Format::Xz, tests::xz(b"")[..12].to_vec())
        };
        bytes.extend(body);
        let _ = tests::decode(c, &bytes);
    }
}
