//! The unpacking tests: the archives a release comes in, built here, installed into a fresh tree;
//! the formats' own decoders tested in `tests/xz.rs` and `tests/zstd.rs`.

mod xz;
mod zstd;

use std::io::Write;

use cap_std::ambient_authority;

use super::*;

#[test]
fn unsafe_entry_paths_are_refused() {
    assert!(safe_path(Path::new("../evil")).is_err());
    assert!(safe_path(Path::new("/etc/passwd")).is_err());
    assert!(safe_path(Path::new("a/../../b")).is_err());
    assert!(safe_path(Path::new("./")).is_err());
    assert_eq!(
        safe_path(Path::new("./bin/simd")).unwrap(),
        PathBuf::from("bin/simd")
    );
}

/// The binary of the test archives: a script (an executable for any machine), long enough
/// that the compressors write literals a flipped bit changes.
pub(in crate::artifact) fn binary() -> Vec<u8> {
    let mut script = b"#!/bin/sh\n".to_vec();
    for i in 0..24 {
        writeln!(
            script,
            "echo 'simd v2, line {i}: {}'",
            "abcdefgh".repeat(i % 5)
        )
        .unwrap();
    }
    script
}

pub(in crate::artifact) const LIBRARY: &[u8] = b"\x7fELF the library beside the binary";

pub(in crate::artifact) fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append_data(&mut header, name, *bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

/// The tar of the binary and the library.
pub(in crate::artifact) fn tarball() -> Vec<u8> {
    tar(&[("bin/simd", &binary()), ("lib/libwasmvm.so", LIBRARY)])
}

pub(in crate::artifact) fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub(in crate::artifact) fn xz_with(bytes: &[u8], options: lzma_rust2::XzOptions) -> Vec<u8> {
    let mut w = lzma_rust2::XzWriter::new(Vec::new(), options).unwrap();
    w.write_all(bytes).unwrap();
    w.finish().unwrap()
}

pub(in crate::artifact) fn xz(bytes: &[u8]) -> Vec<u8> {
    xz_with(bytes, lzma_rust2::XzOptions::with_preset(1))
}

pub(in crate::artifact) fn bz2(bytes: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One zstd frame, with its content checksum.
pub(in crate::artifact) fn zst(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}

pub(in crate::artifact) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    for (name, bytes) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Each format a release comes in, by name, holding the binary (and the library, for the
/// archives).
pub(in crate::artifact) fn every_format() -> Vec<(&'static str, Vec<u8>)> {
    let tarball = tarball();
    let binary = binary();
    vec![
        ("simd.tar.gz", gz(&tarball)),
        ("simd.tar.xz", xz(&tarball)),
        ("simd.tar.bz2", bz2(&tarball)),
        ("simd.tar.zst", zst(&tarball)),
        (
            "simd.zip",
            zip(&[("bin/simd", &binary), ("lib/libwasmvm.so", LIBRARY)]),
        ),
        ("simd.gz", gz(&binary)),
        ("simd.xz", xz(&binary)),
        ("simd.bz2", bz2(&binary)),
        ("simd.zst", zst(&binary)),
    ]
}

/// What installing `bytes`, downloaded as `name`, puts in place in a fresh tree: the
/// binary and the library beside it (if any), or why nothing was installed.
pub(in crate::artifact) fn install(
    name: &str,
    bytes: &[u8],
) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let scratch = tempfile::tempdir().unwrap();
    let (root_path, work_path) = (scratch.path().join("root"), scratch.path().join("work"));
    std::fs::create_dir(&root_path).unwrap();
    std::fs::create_dir(&work_path).unwrap();
    std::fs::write(work_path.join(name), bytes).unwrap();
    let root = Dir::open_ambient_dir(&root_path, ambient_authority()).unwrap();
    let work = Dir::open_ambient_dir(&work_path, ambient_authority()).unwrap();
    let how = super::super::install::Unpack {
        archive: Archive::Detect,
        extension: Format::from_path(name),
        subdir: None,
    };
    let result =
        super::super::install::install(&root, &work, name, &how, "v2", "simd", &Limits::default());
    let installed = root_path.join("upgrades/v2/bin/simd");
    match result {
        Ok(beside) => {
            let lib = std::fs::read(root_path.join("upgrades/v2/lib/libwasmvm.so")).ok();
            // What it reports installing beside the binary (recorded with it) is there.
            for b in &beside {
                assert!(root_path.join("upgrades/v2").join(b).exists(), "{b}");
            }
            Ok((std::fs::read(&installed).unwrap(), lib))
        }
        Err(why) => {
            assert!(!installed.exists(), "refused ({why}) yet installed");
            Err(why.to_string())
        }
    }
}

/// All that `c`-compressed `bytes` decode to, or why not.
pub(in crate::artifact) fn decode(c: Format, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    decoder(c, io::Cursor::new(bytes.to_vec()))
        .map_err(|e| e.to_string())?
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Why installing `bytes` as `name` was refused (a test failure if it was not).
fn refused(name: &str, bytes: &[u8]) -> String {
    match install(name, bytes) {
        Ok(_) => panic!("{name}: installed"),
        Err(why) => why,
    }
}

/// Why decoding `bytes` was refused (a test failure if it was not).
fn undecodable(c: Format, bytes: &[u8]) -> String {
    match decode(c, bytes) {
        Ok(out) => panic!("{}: decoded to {} bytes", c.name(), out.len()),
        Err(why) => why,
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/archives")
            .join(name),
    )
    .unwrap()
}

/// What the fixtures hold (tests/fixtures/archives/README.md).
fn fixture_content() -> Vec<u8> {
    b"wasmvisor\n".repeat(2 << 20)
}

#[test]
fn every_format_installs_the_binary_and_its_library() {
    for (name, bytes) in every_format() {
        let (binary, library) = install(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(binary, self::binary(), "{name}");
        let archive = name.contains(".tar.") || name.ends_with(".zip");
        assert_eq!(library.as_deref(), archive.then_some(LIBRARY), "{name}");
    }
}

/// Whether a flipped bit in any byte of `packed` decodes to `original` or is refused —
/// never decodes to something else.
fn every_flip_is_caught(c: Format, packed: &[u8], original: &[u8]) {
    for at in 0..packed.len() {
        for bit in 0..8 {
            let mut flipped = packed.to_vec();
            flipped[at] ^= 1 << bit;
            if let Ok(out) = decode(c, &flipped) {
                assert!(
                    out == original,
                    "{}: bit {bit} of byte {at} of {} flipped decodes to other bytes",
                    c.name(),
                    packed.len()
                );
            }
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_decodes_to_the_original_or_is_refused() {
    let binary = binary();
    for (c, packed) in [
        (Format::Gz, gz(&binary)),
        (Format::Xz, xz(&binary)),
        (Format::Bz2, bz2(&binary)),
        (Format::Zst, zst(&binary)),
    ] {
        every_flip_is_caught(c, &packed, &binary);
    }
}

/// The first single bit flip of `packed` (from its end) that `unchecked` decodes without an
/// error to other bytes than the original's, the difference all within the binary (which
/// starts at `at` in the original): the corruption only the format's own check can catch,
/// which would install another binary.
fn silent_flip(
    packed: &[u8],
    original: &[u8],
    at: usize,
    unchecked: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> Vec<u8> {
    let binary = at..at + binary().len();
    for i in (0..packed.len()).rev() {
        let mut flipped = packed.to_vec();
        flipped[i] ^= 0x01;
        let Some(out) = unchecked(&flipped) else {
            continue;
        };
        if out.len() == original.len()
            && out[binary.clone()] != original[binary.clone()]
            && out[..binary.start] == original[..binary.start]
            && out[binary.end..] == original[binary.end..]
        {
            return flipped;
        }
    }
    panic!("no flip changes the binary silently");
}

#[test]
fn a_tar_gz_is_read_to_its_end_and_its_crc_checked() {
    let tarball = tarball();
    let packed = gz(&tarball);
    // The trailer's CRC-32 and length, each flipped: the tar inside reads the same.
    for at in [packed.len() - 8, packed.len() - 1] {
        let mut flipped = packed.clone();
        flipped[at] ^= 0x10;
        let e = refused("simd.tar.gz", &flipped);
        assert!(e.contains("corrupt after its last entry"), "{e}");
    }
    // A flip in the deflate data that decodes to another tar, as a raw deflate decoder
    // reads it: only the CRC-32 knows.
    let flipped = silent_flip(&packed, &tarball, 512, |bytes| {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&bytes[10..])
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    });
    let e = refused("simd.tar.gz", &flipped);
    assert!(e.contains("corrupt after its last entry"), "{e}");
    // Data after the gzip stream.
    let mut tail = packed.clone();
    tail.extend(b"trailing");
    refused("simd.tar.gz", &tail);
    // Several members (as pigz and cat make them): all read.
    let (a, b) = tarball.split_at(600);
    let two = [gz(a), gz(b)].concat();
    assert_eq!(install("simd.tar.gz", &two).unwrap().0, binary());
}

#[test]
fn bzip2_streams_are_all_decoded_and_data_after_them_refused() {
    let binary = binary();
    let two = [bz2(&binary[..100]), bz2(&binary[100..])].concat();
    assert_eq!(install("simd.bz2", &two).unwrap().0, binary);
    let mut tail = bz2(&tarball());
    tail.extend(b"trailing");
    refused("simd.tar.bz2", &tail);
}
