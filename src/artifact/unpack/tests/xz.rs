//! The xz decoder and the structure read along it: every stream decoded, trailing data, bad
//! padding and lying indexes refused.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn concatenated_xz_streams_and_stream_padding_are_all_decoded() {
    let binary = binary();
    let (first, second) = binary.split_at(100);
    let mut two = xz(first);
    two.extend(xz(second));
    assert_eq!(install("simd.xz", &two).unwrap().0, binary);
    let tarball = tarball();
    let (a, b) = tarball.split_at(700);
    let mut two = xz(a);
    two.extend([0u8; 8]);
    two.extend(xz(b));
    two.extend([0u8; 4]);
    let (installed, library) = install("simd.tar.xz", &two).unwrap();
    assert_eq!(
        (installed, library.as_deref()),
        (binary.clone(), Some(LIBRARY))
    );
    // Every check type, several blocks, a filter before LZMA2.
    for check in [
        lzma_rust2::CheckType::None,
        lzma_rust2::CheckType::Crc32,
        lzma_rust2::CheckType::Crc64,
        lzma_rust2::CheckType::Sha256,
    ] {
        let mut options = lzma_rust2::XzOptions::with_preset(1);
        options.set_check_sum_type(check);
        options.set_block_size(std::num::NonZeroU64::new(100));
        options.prepend_pre_filter(lzma_rust2::FilterType::Delta, 1);
        let bytes = xz_with(&tarball, options);
        assert_eq!(decode(Format::Xz, &bytes).unwrap(), tarball, "{check:?}");
    }
    // What xz writes: 20 blocks stating their sizes; two streams.
    for name in ["wasmvisor-20m.blocks.xz", "wasmvisor-20m.cat.xz"] {
        let decoded = decode(Format::Xz, &fixture(name)).unwrap();
        assert!(
            decoded == fixture_content(),
            "{name}: {} bytes",
            decoded.len()
        );
    }
}

#[test]
fn xz_data_after_the_last_stream_and_bad_padding_are_refused() {
    let binary = binary();
    for tail in [&b"garbage!"[..], &[0u8; 3], &[0u8; 5], &[0xfd, b'7', b'z']] {
        let mut bytes = xz(&binary);
        bytes.extend(tail);
        let e = refused("simd.xz", &bytes);
        assert!(e.contains("xz"), "{tail:?}: {e}");
        let mut tarred = xz(&tarball());
        tarred.extend(tail);
        refused("simd.tar.xz", &tarred);
    }
    // Padding between streams comes in fours too.
    let mut bytes = xz(&binary[..100]);
    bytes.extend([0u8; 2]);
    bytes.extend(xz(&binary[100..]));
    let e = undecodable(Format::Xz, &bytes);
    assert!(e.contains("padding comes in fours"), "{e}");
    let e = undecodable(Format::Xz, &xz(&binary)[..60]);
    assert!(e.contains("xz"), "{e}");
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

/// The parts of a one-block xz stream: stream header, block, index, footer.
fn xz_parts(bytes: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let footer = bytes[bytes.len() - 12..].to_vec();
    let backward = u32::from_le_bytes(footer[4..8].try_into().unwrap());
    let index_at = bytes.len() - 12 - (backward as usize + 1) * 4;
    (
        bytes[..12].to_vec(),
        bytes[12..index_at].to_vec(),
        bytes[index_at..bytes.len() - 12].to_vec(),
        footer,
    )
}

/// `block` with its LZMA2 dictionary set to 4 GiB (its header's CRC-32 redone).
fn with_huge_dictionary(mut block: Vec<u8>) -> Vec<u8> {
    let size = (usize::from(block[0]) + 1) * 4;
    // Flags 0 (one filter, no sizes): id 0x21, one byte of properties, the dictionary.
    assert_eq!(&block[1..4], &[0x00, 0x21, 0x01]);
    block[4] = 40;
    let crc = crc32(&block[..size - 4]).to_le_bytes();
    block[size - 4..size].copy_from_slice(&crc);
    block
}

#[test]
fn a_block_the_index_does_not_list_is_capped_as_it_is_reached() {
    // Two blocks, an index listing one, the second asking for a 4 GiB dictionary: read
    // along as it is decoded, the second block is refused at its header, before the
    // decoder allocates anything for it.
    let (header, first, index, footer) = xz_parts(&xz(b"#!/bin/sh\n"));
    let (_, second, _, _) = xz_parts(&xz(b"exit 0\n"));
    let lying = [
        header.clone(),
        first.clone(),
        with_huge_dictionary(second.clone()),
        index.clone(),
        footer.clone(),
    ]
    .concat();
    let started = Instant::now();
    let e = undecodable(Format::Xz, &lying);
    assert!(
        e.contains("a dictionary of 4095 MiB in block 2 of stream 1"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let e = refused("simd.xz", &lying);
    assert!(e.contains("a dictionary of 4095 MiB"), "{e}");
    // The same index with an honest second block: refused for the lie.
    let unlisted = [header.clone(), first.clone(), second, index, footer].concat();
    let e = undecodable(Format::Xz, &unlisted);
    assert!(e.contains("lists 1 blocks, the stream has 2"), "{e}");
    // In a second stream, and as its first block.
    let mut streams = xz(b"#!/bin/sh\n");
    let (header, block, index, footer) = xz_parts(&xz(b"exit 0\n"));
    streams.extend([header, with_huge_dictionary(block), index, footer].concat());
    let e = undecodable(Format::Xz, &streams);
    assert!(
        e.contains("a dictionary of 4095 MiB in block 1 of stream 2"),
        "{e}"
    );
}
