//! The tar stream's bounds (the xz and zstd ones are tested through the decoders, in
//! `unpack/tests/`).

use std::io::{self, Read};

use super::TarStream;

fn header(name: &str, kind: u8, size: u64) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = format!("{size:011o}\0");
    h[124..136].copy_from_slice(octal.as_bytes());
    h[156] = kind;
    h
}

fn drain(stream: Vec<u8>, limit: u64) -> io::Result<()> {
    let mut guarded = TarStream::new(stream.as_slice(), limit);
    let mut sink = [0u8; 700];
    while guarded.read(&mut sink)? > 0 {}
    Ok(())
}

#[test]
fn a_tar_size_at_the_end_of_the_range_is_refused_not_wrapped() {
    // A base-256 size of 2^64 - 1: padded to 512 it wraps (a panic in a debug build, a
    // body of 0 bytes in a release one, and the next header read out of the body).
    let mut huge = header("bin/simd", b'0', 0);
    huge[124..136].copy_from_slice(&[
        0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    huge.extend(vec![0u8; 1024]);
    let e = drain(huge, 1 << 40).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    // The largest size that pads within range is followed.
    let mut large = header("bin/simd", b'0', 0);
    large[124..136].copy_from_slice(&[
        0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00,
    ]);
    drain(large, 1 << 40).unwrap();
}

#[test]
fn what_follows_the_end_of_a_tar_is_read_but_not_as_headers() {
    // After the end of the archive: not headers (a size that is not octal would be refused
    // as one), but still within the limit.
    let mut tar = header("bin/simd", b'0', 5);
    tar.extend(vec![1u8; 512]);
    tar.extend(vec![0u8; 1024]);
    let entries = tar.len();
    tar.extend(header("junk", b'0', 0).iter().map(|_| b'z'));
    let entries_of =
        |stream: &mut TarStream<&[u8]>| tar::Archive::new(stream).entries().unwrap().count();
    let mut stream = TarStream::new(tar.as_slice(), 1 << 20);
    assert_eq!(entries_of(&mut stream), 1);
    stream.finish().unwrap();
    let mut stream = TarStream::new(tar.as_slice(), entries as u64 + 100);
    assert_eq!(entries_of(&mut stream), 1);
    let e = stream.finish().unwrap_err();
    assert!(e.to_string().contains("decompression bomb"), "{e}");
}

#[test]
fn long_names_and_pax_headers_are_capped_and_pax_sizes_followed() {
    let mut ok = header("././@LongLink", b'L', 300);
    ok.extend(vec![b'n'; 512]);
    ok.extend(header("bin/simd", b'0', 5));
    ok.extend(vec![1u8; 512]);
    ok.extend(vec![0u8; 1024]);
    drain(ok, 1 << 20).unwrap();
    // A 4 GiB long name: refused at its header, before its body is read.
    let mut bomb = header("././@LongLink", b'L', 4 << 30);
    bomb.extend(vec![0u8; 512]);
    let e = drain(bomb, 1 << 40).unwrap_err();
    assert!(
        e.to_string().contains("a long name of 4294967296 bytes"),
        "{e}"
    );
    // A PAX header's size= governs the next entry's body.
    let pax_body = b"16 size=1100000\n".to_vec();
    let mut pax = header("PaxHeaders/simd", b'x', pax_body.len() as u64);
    let mut body = pax_body.clone();
    body.resize(512, 0);
    pax.extend(body);
    pax.extend(header("bin/simd", b'0', 0));
    pax.extend(vec![7u8; 1_100_000usize.div_ceil(512) * 512]);
    // The next header is found where the PAX size says: a long name bomb right after.
    pax.extend(header("././@LongLink", b'L', 1 << 30));
    assert!(
        drain(pax, 1 << 40)
            .unwrap_err()
            .to_string()
            .contains("long name")
    );
    assert!(
        drain(vec![0u8; 4096], 1000)
            .unwrap_err()
            .to_string()
            .contains("more than 1000 bytes")
    );
}
