//! The zstd decoder: every frame decoded and checked, trailing data and windows refused.

use std::io::Read;

use super::*;

#[test]
fn concatenated_zstd_frames_are_all_decoded() {
    // Two frames one after the other, as `cat` makes them: the whole binary, never its
    // first part.
    let binary = binary();
    let (first, second) = binary.split_at(100);
    let mut two = zst(first);
    two.extend(zst(second));
    assert_eq!(install("simd.zst", &two).unwrap().0, binary);
    let tarball = tarball();
    let (first, second) = tarball.split_at(700);
    let mut two = zst(first);
    two.extend(zst(second));
    let (installed, library) = install("simd.tar.zst", &two).unwrap();
    assert_eq!(installed, binary);
    assert_eq!(library.as_deref(), Some(LIBRARY));
    // Skippable frames are passed over, before, between and after.
    let skippable = |n: u8| {
        let mut frame = vec![0x50 + n, 0x2a, 0x4d, 0x18, 3, 0, 0, 0];
        frame.extend([n; 3]);
        frame
    };
    let (first, second) = binary.split_at(100);
    let mut framed = skippable(0);
    framed.extend(zst(first));
    framed.extend(skippable(1));
    framed.extend(zst(second));
    framed.extend(skippable(15));
    assert_eq!(decode(Format::Zst, &framed).unwrap(), binary);
    assert_eq!(install("simd.zst", &framed).unwrap().0, binary);
    // What zstd and pzstd write: 2 frames stating their sizes; 11 after skippable frames.
    for name in ["wasmvisor-20m.cat.zst", "wasmvisor-20m.pzstd.zst"] {
        let decoded = decode(Format::Zst, &fixture(name)).unwrap();
        assert!(
            decoded == fixture_content(),
            "{name}: {} bytes",
            decoded.len()
        );
    }
}

#[test]
fn zstd_data_after_the_last_frame_and_wrong_sizes_are_refused() {
    let binary = binary();
    for tail in [
        &b"garbage"[..],
        &[0u8; 4],
        &[0x28, 0xb5, 0x2f],
        &[0x50, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 1],
    ] {
        let mut bytes = zst(&binary);
        bytes.extend(tail);
        let e = refused("simd.zst", &bytes);
        assert!(e.contains("zstd"), "{tail:?}: {e}");
        let mut tarred = zst(&tarball());
        tarred.extend(tail);
        refused("simd.tar.zst", &tarred);
    }
    assert!(
        install("simd.zst", &zst(&binary)[..40]).is_err(),
        "a truncated frame"
    );
    // A frame of one raw block stating its content size (1 byte, single segment): the
    // size must be the content's.
    let frame = |stated: u8, content: &[u8]| {
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, stated];
        let block = 1 | (content.len() as u32) << 3; // the last block, raw
        f.extend(&block.to_le_bytes()[..3]);
        f.extend(content);
        f
    };
    let script = b"#!/bin/sh\nexit 0\n";
    assert_eq!(decode(Format::Zst, &frame(17, script)).unwrap(), script);
    for stated in [16, 18] {
        let e = undecodable(Format::Zst, &frame(stated, script));
        assert!(e.contains("its header states"), "{stated}: {e}");
    }
}

#[test]
fn a_zstd_window_larger_than_zstd_accepts_is_refused_before_decoding() {
    // The decoder keeps a window of output in memory: a frame asking for 1 GiB (window
    // descriptor: exponent 20, mantissa 0), with one empty raw block.
    let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00];
    let e = undecodable(Format::Zst, &frame);
    assert!(e.contains("a window of 1024 MiB"), "{e}");
    // 128 MiB is what zstd -d accepts by default: accepted.
    let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3, 0x01, 0x00, 0x00];
    assert_eq!(decode(Format::Zst, &frame).unwrap(), b"");
}

#[test]
fn a_zstd_content_checksum_is_checked() {
    // A flip that ruzstd alone decodes to other bytes (it leaves the checksum to its
    // caller): refused, in a .zst and in a .tar.zst.
    let unchecked = |bytes: &[u8]| {
        let mut out = Vec::new();
        ruzstd::decoding::StreamingDecoder::new(bytes)
            .ok()?
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    };
    let binary = binary();
    let flipped = silent_flip(&zst(&binary), &binary, 0, unchecked);
    let e = refused("simd.zst", &flipped);
    assert!(e.contains("does not match its checksum"), "{e}");
    let tarball = tarball();
    let flipped = silent_flip(&zst(&tarball), &tarball, 512, unchecked);
    let e = refused("simd.tar.zst", &flipped);
    assert!(e.contains("does not match its checksum"), "{e}");
}
