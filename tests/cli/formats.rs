//! The plan forms real chains publish, each fetched over HTTP from a loopback server (or read
//! from this host) with the bundled plugins and the default configuration: every checksum form
//! go-getter reads, checksum files, `file://`, `//subfolder`, `archive=false`, every archive
//! format, `info` as a URL; and what is refused, with why.

use std::io::Write;
use std::process::Output;

use serde_json::json;

use crate::harness::serve::Server;
use crate::harness::*;

const T: std::time::Duration = std::time::Duration::from_secs(30);

/// A node binary carrying its configuration with it (the simulator behind a wrapper script
/// that names an absolute `sim.json`), so it runs wherever it is installed, alone.
fn standalone(home: &Home, version: &str) -> Vec<u8> {
    let dir = home.path.join("release");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join(format!("{version}.json"));
    std::fs::write(
        &config,
        json!({"version": version, "ordinal": 2, "handles": version, "block_ms": 50}).to_string(),
    )
    .unwrap();
    format!(
        "#!/bin/sh\nexec '{SIM}' --sim-config '{}' \"$@\"\n",
        config.display()
    )
    .into_bytes()
}

fn home() -> Home {
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    home
}

/// `prepare-upgrade` of a plan v2 whose binaries map gives `url` for this platform.
fn prepare(home: &Home, url: &str) -> Output {
    let _ = std::fs::remove_dir_all(home.root().join("upgrades/v2"));
    let info = json!({"binaries": {platform(): url}}).to_string();
    prepare_info(home, &info)
}

fn prepare_info(home: &Home, info: &str) -> Output {
    let plan = home.path.join("plan.json");
    std::fs::write(
        &plan,
        json!({"name": "v2", "height": 3, "info": info}).to_string(),
    )
    .unwrap();
    home.output(&["prepare-upgrade", "--plan", plan.to_str().unwrap()])
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn installed(home: &Home) -> Vec<u8> {
    std::fs::read(home.root().join("upgrades/v2/bin/simd")).unwrap_or_default()
}

fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
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

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut w =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
    w.write_all(bytes).unwrap();
    w.finish().unwrap()
}

fn bz2(bytes: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zst(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
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

#[test]
fn every_checksum_form_go_getter_reads_is_verified() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    server.put("/gaiad-v2-linux", binary.clone());
    let url = server.url("/gaiad-v2-linux");
    let digests = [
        (
            "md5",
            hex::encode(<md5::Md5 as md5::Digest>::digest(&binary)),
        ),
        (
            "sha1",
            hex::encode(<sha1::Sha1 as sha1::Digest>::digest(&binary)),
        ),
        ("sha256", sha256(&binary)),
        (
            "sha512",
            hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&binary)),
        ),
    ];
    for (kind, hex) in &digests {
        // Typed (in any case), and bare: the type follows from the length.
        for checksum in [
            format!("{kind}:{hex}"),
            format!("{}:{}", kind.to_uppercase(), hex.to_uppercase()),
            hex.clone(),
        ] {
            let out = prepare(&home, &format!("{url}?checksum={checksum}"));
            assert!(out.status.success(), "{checksum}: {}", err(&out));
            assert_eq!(installed(&home), binary, "{checksum}");
            let weak = matches!(*kind, "md5" | "sha1");
            assert_eq!(
                err(&out).contains("broken for collisions"),
                weak,
                "{checksum}: {}",
                err(&out)
            );
        }
        // The same form with a wrong digest installs nothing.
        let wrong = format!("{kind}:{}", "0".repeat(hex.len()));
        let out = prepare(&home, &format!("{url}?checksum={wrong}"));
        assert!(!out.status.success());
        assert!(err(&out).contains("checksum mismatch"), "{}", err(&out));
        assert!(installed(&home).is_empty());
    }
    // Malformed ones, as real registries hold them, are refused naming the fault.
    for (checksum, says) in [
        (
            format!("sha256:{}gaiad-v10.0.1-linux-amd64", &digests[2].1),
            "not hex",
        ),
        (format!("sha256:{}1", &digests[2].1), "odd number"),
        (format!("sha256:{}", &digests[1].1), "40 hex digits, not 64"),
    ] {
        let out = prepare(&home, &format!("{url}?checksum={checksum}"));
        assert!(!out.status.success());
        assert!(err(&out).contains(says), "{checksum}: {}", err(&out));
    }
}

#[test]
fn checksum_files_are_fetched_by_the_same_sources_and_read_for_the_download() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    server.put("/v2.0.0/gaiad-linux-amd64", binary.clone());
    let other = "f".repeat(64);
    // GNU lines (sha256sum's output), another file first, the binary marker.
    server.put(
        "/v2.0.0/SHA256SUMS",
        format!(
            "{other}  gaiad-darwin-arm64\n{} *gaiad-linux-amd64\n",
            sha256(&binary)
        )
        .into_bytes(),
    );
    // BSD lines (shasum --tag), a declared type.
    let sha512 = hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&binary));
    server.put(
        "/v2.0.0/checksums.txt",
        format!(
            "SHA512 (gaiad-darwin-arm64) = {}\nSHA512 (gaiad-linux-amd64) = {sha512}\n",
            "e".repeat(128)
        )
        .into_bytes(),
    );
    server.put(
        "/v2.0.0/NOTHING",
        format!("{other}  gaiad-darwin-arm64\n").into_bytes(),
    );
    let url = server.url("/v2.0.0/gaiad-linux-amd64");
    for sums in ["SHA256SUMS", "checksums.txt"] {
        let out = prepare(
            &home,
            &format!(
                "{url}?checksum=file:{}",
                server.url(&format!("/v2.0.0/{sums}"))
            ),
        );
        assert!(out.status.success(), "{sums}: {}", err(&out));
        assert_eq!(installed(&home), binary);
    }
    let out = prepare(
        &home,
        &format!("{url}?checksum=file:{}", server.url("/v2.0.0/NOTHING")),
    );
    assert!(!out.status.success());
    assert!(
        err(&out).contains("no line for gaiad-linux-amd64"),
        "{}",
        err(&out)
    );
    assert!(installed(&home).is_empty());
}

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
    // Nothing else of the archive's tree lands in the upgrade folder.
    let mut left: Vec<String> = std::fs::read_dir(home.root().join("upgrades/v2"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["bin"]);
}

#[test]
fn a_binary_already_on_this_host_is_read_from_a_file_url() {
    let home = home();
    let binary = standalone(&home, "v2");
    let local = home.path.join("downloads/gaiad v2");
    std::fs::create_dir_all(local.parent().unwrap()).unwrap();
    std::fs::write(&local, &binary).unwrap();
    let escaped = local.display().to_string().replace(' ', "%20");
    for url in [
        format!("file://{escaped}?checksum=sha256:{}", sha256(&binary)),
        format!("file://{escaped}"),
    ] {
        let out = prepare(&home, &url);
        assert!(out.status.success(), "{url}: {}", err(&out));
        assert_eq!(installed(&home), binary);
    }
    let out = prepare(
        &home,
        &format!("file://{escaped}?checksum=sha256:{}", "0".repeat(64)),
    );
    assert!(err(&out).contains("checksum mismatch"), "{}", err(&out));
    let out = prepare(&home, "file:///nonexistent/gaiad");
    assert!(err(&out).contains("/nonexistent/gaiad"), "{}", err(&out));
}

#[test]
fn info_as_a_url_to_the_binaries_document_checksum_verified() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    server.put("/gaiad", binary.clone());
    // As Persistence's plans do: info is a URL to binaries.json, with its own checksum.
    let document = json!({"binaries": {platform(): format!("{}?checksum=sha256:{}", server.url("/gaiad"), sha256(&binary))}}).to_string();
    server.put("/upgrades/v2/binaries.json", document.clone().into_bytes());
    let doc_url = server.url("/upgrades/v2/binaries.json");
    let out = prepare_info(
        &home,
        &format!("{doc_url}?checksum=sha256:{}", sha256(document.as_bytes())),
    );
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(installed(&home), binary);
    let _ = std::fs::remove_dir_all(home.root().join("upgrades/v2"));
    let out = prepare_info(&home, &format!("{doc_url}?checksum={}", "a".repeat(64)));
    assert!(
        err(&out).contains("the document at") && err(&out).contains("mismatch"),
        "{}",
        err(&out)
    );
    assert!(installed(&home).is_empty());
}

#[test]
fn must_have_checksum_counts_every_form_and_nothing_else() {
    let server = Server::start();
    let mut home = home();
    home.set("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM", "true");
    let binary = standalone(&home, "v2");
    server.put("/gaiad", binary.clone());
    server.put(
        "/SHA256SUMS",
        format!("{}  gaiad\n", sha256(&binary)).into_bytes(),
    );
    let url = server.url("/gaiad");
    for ok in [
        format!("{url}?checksum=sha256:{}", sha256(&binary)),
        format!("{url}?checksum={}", sha256(&binary)),
        format!("{url}?checksum=file:{}", server.url("/SHA256SUMS")),
    ] {
        let out = prepare(&home, &ok);
        assert!(out.status.success(), "{ok}: {}", err(&out));
    }
    let out = prepare(&home, &url);
    assert!(
        err(&out).contains("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM"),
        "{}",
        err(&out)
    );
    // Every other form, with its checksum and without: a local file, a subfolder of an
    // archive, an archive taken as it is, each archive format.
    let local = home.path.join("gaiad-local");
    std::fs::write(&local, &binary).unwrap();
    let tarball = gz(&tar(&[("gaiad-v2/bin/simd", &binary)]));
    server.put("/gaiad-v2.tar.gz", tarball.clone());
    let xzball = xz(&tar(&[("bin/simd", &binary)]));
    server.put("/gaiad-v2.tar.xz", xzball.clone());
    server.put("/gaiad.tar.gz", binary.clone());
    for (bare, sum) in [
        (format!("file://{}", local.display()), sha256(&binary)),
        (
            format!("{}//gaiad-v2", server.url("/gaiad-v2.tar.gz")),
            sha256(&tarball),
        ),
        (server.url("/gaiad-v2.tar.xz"), sha256(&xzball)),
        (
            format!("{}?archive=false", server.url("/gaiad.tar.gz")),
            sha256(&binary),
        ),
    ] {
        let with = if bare.contains('?') {
            format!("{bare}&checksum={sum}")
        } else {
            format!("{bare}?checksum={sum}")
        };
        let out = prepare(&home, &with);
        assert!(out.status.success(), "{with}: {}", err(&out));
        let out = prepare(&home, &bare);
        assert!(
            err(&out).contains("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM"),
            "{bare}: {}",
            err(&out)
        );
        assert!(installed(&home).is_empty(), "{bare}");
    }
    // The info document's URL too.
    let document = json!({"binaries": {platform(): format!("{url}?checksum={}", sha256(&binary))}})
        .to_string();
    server.put("/binaries.json", document.into_bytes());
    let out = prepare_info(&home, &server.url("/binaries.json"));
    assert!(
        err(&out).contains("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM"),
        "{}",
        err(&out)
    );
}

#[test]
fn a_policy_can_demand_a_stronger_checksum_than_md5() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    server.put("/gaiad", binary.clone());
    std::fs::write(
        home.root().join("plugins.toml"),
        format!(
            "[[resolver]]\nname = \"cosmovisor\"\npath = \"bundled:cosmovisor\"\n\n[[resolver]]\nname = \"strong\"\npath = \"{}\"\nconfig = {{ min-checksum = \"sha256\" }}\n",
            wasm("wasmvisor-plugin-allowlist").display()
        ),
    )
    .unwrap();
    let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(&binary));
    let out = prepare(
        &home,
        &format!("{}?checksum=md5:{md5}", server.url("/gaiad")),
    );
    assert!(
        err(&out).contains("md5 checksum; min-checksum is sha256"),
        "{}",
        err(&out)
    );
    let out = prepare(
        &home,
        &format!("{}?checksum={}", server.url("/gaiad"), sha256(&binary)),
    );
    assert!(out.status.success(), "{}", err(&out));
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

#[test]
fn a_refusal_names_the_folder_wasmvisor_really_looks_in() {
    let home = Home::new();
    let plan = home.path.join("plan.json");
    std::fs::write(
        &plan,
        json!({"name": "V2-Upgrade", "height": 3}).to_string(),
    )
    .unwrap();
    let out = home.output(&["prepare-upgrade", "--plan", plan.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        err(&out).contains("upgrades/v2-upgrade/bin/simd"),
        "{}",
        err(&out)
    );
}

#[test]
fn prepare_upgrade_asks_the_chain_for_its_plan_over_grpc_or_abci_query() {
    let server = Server::start();
    let mut home = home();
    let (grpc, rpc) = (free_port(), free_port());
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": rpc, "grpc_port": grpc}),
    );
    let binary = standalone(&home, "v2");
    server.put("/gaiad", binary.clone());
    // Governance passed v2 for a height far ahead: the node runs, the plan is on the chain.
    plan_with_binary(
        &home,
        "v2",
        100_000,
        &format!(
            "{}?checksum=sha256:{}",
            server.url("/gaiad"),
            sha256(&binary)
        ),
    );
    let run = home.run(&[]);
    home.wait_for("the node's gRPC server", T, |h| {
        !h.events_of("grpc").is_empty()
    });
    home.wait_height("genesis", 2);

    // Over gRPC, as Cosmovisor asks (the RPC address leads nowhere).
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{grpc}"))
        .set(
            "WASMVISOR_RPC_ADDRESS",
            &format!("http://127.0.0.1:{}", free_port()),
        );
    let out = home.output(&["prepare-upgrade"]);
    assert!(out.status.success(), "{}", err(&out));
    assert!(
        err(&out).contains(&format!("gRPC at 127.0.0.1:{grpc}")),
        "{}",
        err(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("downloaded, verified and staged"));
    assert_eq!(installed(&home), binary);
    assert_eq!(home.events_of("grpc-query").len(), 1);

    // Through the RPC's abci_query, for a node whose gRPC server is off.
    std::fs::remove_dir_all(home.root().join("upgrades/v2")).unwrap();
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{}", free_port()))
        .set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{rpc}"));
    let out = home.output(&["prepare-upgrade"]);
    assert!(out.status.success(), "{}", err(&out));
    assert!(err(&out).contains("abci_query at"), "{}", err(&out));
    assert_eq!(installed(&home), binary);
    run.stop();
}

#[test]
fn a_grpc_error_falls_back_to_abci_query_and_both_failing_are_named() {
    let server = Server::start();
    let mut home = home();
    let (grpc, rpc) = (free_port(), free_port());
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": rpc, "grpc_port": grpc, "grpc_error": 14}),
    );
    let binary = standalone(&home, "v2");
    server.put("/gaiad", binary.clone());
    plan_with_binary(
        &home,
        "v2",
        100_000,
        &format!("{}?checksum={}", server.url("/gaiad"), sha256(&binary)),
    );
    let run = home.run(&[]);
    home.wait_for("the node's gRPC server", T, |h| {
        !h.events_of("grpc").is_empty()
    });
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{grpc}"))
        .set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{rpc}"));
    let out = home.output(&["prepare-upgrade"]);
    assert!(out.status.success(), "{}", err(&out));
    assert!(err(&out).contains("abci_query at"), "{}", err(&out));
    assert_eq!(installed(&home), binary);
    // Neither: the error names both, and what each said.
    home.set(
        "WASMVISOR_RPC_ADDRESS",
        &format!("http://127.0.0.1:{}", free_port()),
    );
    let out = home.output(&["prepare-upgrade"]);
    assert!(!out.status.success());
    assert!(
        err(&out).contains("gRPC status \"14\" query service unavailable"),
        "{}",
        err(&out)
    );
    run.stop();
}

#[test]
fn prepare_upgrade_with_no_plan_on_the_chain_has_nothing_to_do() {
    let mut home = home();
    let grpc = free_port();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "grpc_port": grpc}),
    );
    let run = home.run(&[]);
    home.wait_for("the node's gRPC server", T, |h| {
        !h.events_of("grpc").is_empty()
    });
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{grpc}"));
    let out = home.output(&["prepare-upgrade"]);
    assert!(out.status.success(), "{}", err(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no upgrade is scheduled"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    run.stop();
}

#[test]
fn the_chain_registry_resolver_reads_both_layouts_locally_and_over_http() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    server.put("/releases/v31/osmosisd-linux", binary.clone());
    let url = format!(
        "{}?checksum={}",
        server.url("/releases/v31/osmosisd-linux"),
        sha256(&binary)
    );
    // Today's layout, versions.json, as the registry's raw files are served: behind a redirect.
    let versions = json!({
        "$schema": "../versions.schema.json",
        "chain_name": "osmosis",
        "versions": [
            {"name": "v30", "height": 40000000, "binaries": {platform(): "https://example.invalid/v30"}},
            {"name": "v31", "tag": "v31.0.0", "height": 3, "recommended_version": "31.0.0", "binaries": {platform(): url}}
        ]
    });
    server.put(
        "/raw/osmosis/versions.json",
        versions.to_string().into_bytes(),
    );
    server.redirect(
        "/cosmos/chain-registry/master/osmosis/versions.json",
        "/raw/osmosis/versions.json",
    );
    let plugins = |config: &str, dirs: &str| {
        std::fs::write(
            home.root().join("plugins.toml"),
            format!(
                "[[resolver]]\nname = \"registry\"\npath = \"{}\"\nconfig = {{ {config} }}\nallow-hosts = [\"127.0.0.1:{}\"]\n{dirs}",
                wasm("wasmvisor-plugin-chain-registry").display(),
                server.port
            ),
        )
        .unwrap();
    };
    let plan = |name: &str| {
        let file = home.path.join("plan.json");
        std::fs::write(&file, json!({"name": name, "height": 3}).to_string()).unwrap();
        let _ = std::fs::remove_dir_all(home.root().join("upgrades").join(name.to_lowercase()));
        home.output(&["prepare-upgrade", "--plan", file.to_str().unwrap()])
    };
    plugins(
        &format!(
            "registry = \"{}\", chain = \"osmosis\"",
            server.url("/cosmos/chain-registry/master")
        ),
        "",
    );
    // The plan's name in another case than the registry's.
    let out = plan("V31");
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(
        std::fs::read(home.root().join("upgrades/v31/bin/simd")).unwrap(),
        binary
    );

    // The older layout, chain.json's codebase.versions, from a granted local checkout.
    let checkout = home.path.join("chain-registry/juno");
    std::fs::create_dir_all(&checkout).unwrap();
    std::fs::write(
        checkout.join("chain.json"),
        json!({"chain_name": "juno", "codebase": {"versions": [
            {"name": "v31", "height": 3, "binaries": {platform(): url}}
        ]}})
        .to_string(),
    )
    .unwrap();
    plugins(
        "registry = \"/registry\", chain = \"juno\"",
        &format!(
            "dirs = [[\"{}\", \"/registry\"]]\n",
            home.path.join("chain-registry").display()
        ),
    );
    let out = plan("v31");
    assert!(out.status.success(), "{}", err(&out));
    // The existing setting naming one file takes either layout.
    plugins(
        "chain-json = \"/registry/juno/chain.json\"",
        &format!(
            "dirs = [[\"{}\", \"/registry\"]]\n",
            home.path.join("chain-registry").display()
        ),
    );
    let out = plan("v31");
    assert!(out.status.success(), "{}", err(&out));
    let out = plan("v99");
    assert!(
        err(&out).contains("no version named \"v99\""),
        "{}",
        err(&out)
    );
}
