//! Archives: every format unpacked by content and by name, `//subfolder` and `archive=false`,
//! what this machine cannot execute, memory bombs, concatenated and corrupt frames, and a
//! `.tar.xz` release run end to end.

use crate::harness::serve::Server;
use crate::harness::*;

use super::{bz2, err, gz, home, installed, prepare, standalone, tar, xz, zip, zst};

#[test]
fn every_archive_format_is_unpacked_by_content_and_by_name() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    let files: &[(&str, &[u8])] = &[
        ("bin/simd", &binary),
        ("lib/libwasmvm.x86_64.so", b"\x7fELF lib"),
    ];
    let tarball = tar(files);
    // (name, bytes, whether the archive holds more than the binary)
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("simd.tar.gz", gz(&tarball), true),
        ("simd.tgz", gz(&tarball), true),
        ("simd.tar.xz", xz(&tarball), true),
        ("simd.txz", xz(&tarball), true),
        ("simd.tar.bz2", bz2(&tarball), true),
        ("simd.tar.zst", zst(&tarball), true),
        ("simd.tar", tarball.clone(), true),
        ("simd.zip", zip(files), true),
        // A single compressed binary.
        ("simd.gz", gz(&binary), false),
        ("simd.xz", xz(&binary), false),
        ("simd.bz2", bz2(&binary), false),
        ("simd.zst", zst(&binary), false),
        // No extension: the bytes decide.
        ("simd-linux-amd64-xz", xz(&tarball), true),
        ("simd-linux-amd64-zip", zip(files), true),
        ("simd-linux-amd64-gz", gz(&binary), false),
    ];
    for (name, bytes, packed) in cases {
        server.put(&format!("/{name}"), bytes.clone());
        let out = prepare(
            &home,
            &format!(
                "{}?checksum=sha256:{}",
                server.url(&format!("/{name}")),
                sha256(&bytes)
            ),
        );
        assert!(out.status.success(), "{name}: {}", err(&out));
        assert_eq!(installed(&home), binary, "{name}");
        let lib = home.root().join("upgrades/v2/lib/libwasmvm.x86_64.so");
        assert_eq!(
            lib.exists(),
            packed,
            "{name}: the archive's other files come along"
        );
    }
}

#[test]
fn subfolders_archive_false_and_single_file_archives() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    // A release tarball with a top-level folder, taken apart with //.
    let nested = gz(&tar(&[
        ("simd-v2.0.0/bin/simd", &binary),
        ("simd-v2.0.0/lib/libx.so", b"lib"),
        ("simd-v2.0.0/README.md", b"readme"),
    ]));
    server.put("/simd-v2.0.0.tar.gz", nested.clone());
    let base = server.url("/simd-v2.0.0.tar.gz");
    let sum = sha256(&nested);
    for subdir in ["simd-v2.0.0", "*", "simd-v*"] {
        let out = prepare(&home, &format!("{base}//{subdir}?checksum=sha256:{sum}"));
        assert!(out.status.success(), "//{subdir}: {}", err(&out));
        assert_eq!(installed(&home), binary);
        assert!(home.root().join("upgrades/v2/lib/libx.so").exists());
    }
    let out = prepare(&home, &format!("{base}//other?checksum=sha256:{sum}"));
    assert!(err(&out).contains("no folder other"), "{}", err(&out));
    // Without //, the archive's only file named simd is found all the same.
    let out = prepare(&home, &format!("{base}?checksum=sha256:{sum}"));
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(installed(&home), binary);
    // An archive of one file named otherwise: that file is the binary (go-getter's file mode).
    let single = zip(&[("simd-linux-amd64", &binary)]);
    server.put("/single.zip", single.clone());
    let out = prepare(
        &home,
        &format!(
            "{}?checksum=sha256:{}",
            server.url("/single.zip"),
            sha256(&single)
        ),
    );
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(installed(&home), binary);
    // archive=false: the bytes are the binary, whatever the name says.
    server.put("/simd.tar.gz", binary.clone());
    let out = prepare(
        &home,
        &format!(
            "{}?archive=false&checksum=sha256:{}",
            server.url("/simd.tar.gz"),
            sha256(&binary)
        ),
    );
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(installed(&home), binary);
    // archive=<format> forces it.
    let tarball = tar(&[("bin/simd", &binary)]);
    server.put("/release-asset", tarball.clone());
    let out = prepare(
        &home,
        &format!(
            "{}?archive=tar&checksum=sha256:{}",
            server.url("/release-asset"),
            sha256(&tarball)
        ),
    );
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(installed(&home), binary);
}

#[test]
fn what_this_machine_cannot_execute_is_never_installed() {
    let server = Server::start();
    let home = home();
    // An ELF for another architecture, an archive wasmvisor does not know (7z), an error page.
    let mut foreign = vec![0u8; 64];
    foreign[..4].copy_from_slice(b"\x7fELF");
    foreign[4] = 2;
    foreign[5] = 1;
    foreign[16] = 2; // ET_EXEC
    let machine: u16 = if cfg!(target_arch = "aarch64") {
        62
    } else {
        183
    };
    foreign[18..20].copy_from_slice(&machine.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("/gaiad-arm", foreign.clone(), "not for this machine"),
        (
            "/gaiad.7z",
            b"7z\xbc\xaf\x27\x1c\x00\x04 rest of an archive".to_vec(),
            "not an executable",
        ),
        (
            "/gaiad-404",
            b"<!DOCTYPE html><html><body>Not Found</body></html>".to_vec(),
            "HTML page",
        ),
        (
            "/inner-foreign.tar.gz",
            gz(&tar(&[("bin/simd", &foreign)])),
            "not for this machine",
        ),
    ];
    for (path, bytes, says) in cases {
        server.put(path, bytes.clone());
        let out = prepare(
            &home,
            &format!("{}?checksum=sha256:{}", server.url(path), sha256(&bytes)),
        );
        assert!(!out.status.success(), "{path}");
        assert!(err(&out).contains(says), "{path}: {}", err(&out));
        assert!(installed(&home).is_empty(), "{path}");
    }
    // A URL named .tar.xz whose bytes are something else is refused, not installed as is.
    server.put("/simd.tar.xz", b"not an archive at all".to_vec());
    let out = prepare(&home, &server.url("/simd.tar.xz"));
    assert!(!out.status.success());
    assert!(
        err(&out).contains("names a .tar.xz file but the bytes are text"),
        "{}",
        err(&out)
    );
    assert!(installed(&home).is_empty());
}

/// A tar header by hand: the `tar` crate refuses to write the hostile ones.
fn raw_header(name: &str, kind: u8, size: u64) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[148..156].copy_from_slice(b"        ");
    h[156] = kind;
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// The CRC-32 xz puts in its headers.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn memory_bombs_in_the_new_formats_are_refused_before_they_allocate() {
    let server = Server::start();
    let home = home();
    let started = std::time::Instant::now();
    // A GNU long name of 4 GiB (the tar crate would read it whole into memory), in a few bytes.
    let mut bomb = raw_header("././@LongLink", b'L', 4 << 30);
    bomb.extend(vec![b'a'; 4096]);
    let packed = gz(&bomb);
    server.put("/longname.tar.gz", packed.clone());
    let out = prepare(
        &home,
        &format!(
            "{}?checksum={}",
            server.url("/longname.tar.gz"),
            sha256(&packed)
        ),
    );
    assert!(!out.status.success());
    assert!(
        err(&out).contains("a long name of 4294967296 bytes"),
        "{}",
        err(&out)
    );
    // An xz file whose block asks for a 4 GiB dictionary: its header is patched (and its CRC).
    let mut xzed = xz(b"#!/bin/sh\nexit 0\n");
    let at = 12; // the block header, after the stream header
    let size = (usize::from(xzed[at]) + 1) * 4;
    // flags 0 (one filter, no sizes): id 0x21, one byte of properties, the dictionary.
    assert_eq!(&xzed[at + 2..at + 4], &[0x21, 0x01]);
    xzed[at + 4] = 40;
    let crc = crc32(&xzed[at..at + size - 4]).to_le_bytes();
    xzed[at + size - 4..at + size].copy_from_slice(&crc);
    server.put("/dict.xz", xzed.clone());
    let out = prepare(
        &home,
        &format!("{}?checksum={}", server.url("/dict.xz"), sha256(&xzed)),
    );
    assert!(!out.status.success());
    assert!(
        err(&out).contains("a dictionary of 4095 MiB"),
        "{}",
        err(&out)
    );
    assert!(installed(&home).is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn concatenated_frames_install_whole_and_what_the_format_calls_corrupt_is_refused() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    let (a, b) = binary.split_at(binary.len() / 2);
    // As cat, pzstd and pigz make them: two frames, streams or members, all of the binary.
    for (name, bytes) in [
        ("simd.zst", [zst(a), zst(b)].concat()),
        ("simd.xz", [xz(a), xz(b)].concat()),
        ("simd.gz", [gz(a), gz(b)].concat()),
        ("simd.bz2", [bz2(a), bz2(b)].concat()),
    ] {
        server.put(&format!("/{name}"), bytes.clone());
        let url = server.url(&format!("/{name}"));
        let out = prepare(&home, &format!("{url}?checksum=sha256:{}", sha256(&bytes)));
        assert!(out.status.success(), "{name}: {}", err(&out));
        assert_eq!(installed(&home), binary, "{name}: the whole binary");
    }
    // The checksum covers the bytes as they are; the format's own check says they are not what
    // was packed: a gzip trailer's CRC-32, a zstd content checksum (the tar inside reads the
    // same, and ends before them).
    let tarball = tar(&[("bin/simd", &binary)]);
    let mut tgz = gz(&tarball);
    let at = tgz.len() - 8;
    tgz[at] ^= 0x01;
    let mut tzst = zst(&tarball);
    let at = tzst.len() - 1;
    tzst[at] ^= 0x01;
    for (name, bytes) in [("simd.tar.gz", tgz), ("simd.tar.zst", tzst)] {
        server.put(&format!("/{name}"), bytes.clone());
        let url = server.url(&format!("/{name}"));
        let out = prepare(&home, &format!("{url}?checksum=sha256:{}", sha256(&bytes)));
        assert!(!out.status.success(), "{name}: installed");
        assert!(err(&out).contains("corrupt"), "{name}: {}", err(&out));
        assert!(installed(&home).is_empty(), "{name}");
    }
}

#[test]
fn the_only_file_of_an_archive_is_the_binary_at_any_depth() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    let nested = zip(&[("simd-v2/linux/simd-linux-amd64", &binary)]);
    server.put("/nested.zip", nested.clone());
    let out = prepare(
        &home,
        &format!("{}?checksum={}", server.url("/nested.zip"), sha256(&nested)),
    );
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(installed(&home), binary);
    // Nothing else of the archive's tree lands in the upgrade folder (beside the binary, the
    // record of the plan it was staged for).
    let mut left: Vec<String> = std::fs::read_dir(home.root().join("upgrades/v2"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["bin", "wasmvisor-staged.json"]);
}

#[test]
fn a_tar_xz_release_upgrades_the_running_node() {
    // The end-to-end path: detected, downloaded, unpacked from .tar.xz, switched, run.
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    let asset = xz(&tar(&[("simd-v2/bin/simd", &binary)]));
    server.put("/simd-v2.tar.xz", asset.clone());
    plan_with_binary(
        &home,
        "v2",
        3,
        &format!(
            "{}//simd-v2?checksum={}",
            server.url("/simd-v2.tar.xz"),
            sha256(&asset)
        ),
    );
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let out = run.stop();
    assert_eq!(home.current(), "upgrades/v2", "{}", out.stderr);
    assert_eq!(home.history()[0], ("genesis".into(), 1, 2));
}
