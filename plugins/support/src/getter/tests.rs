//! The forms below are copied from real plans and registries (the sources are named), and from
//! go-getter's documentation of its checksum files.

use super::*;

fn digest(url: &str) -> Digest {
    match parse_url(url).unwrap().checksum {
        Some(Checksum::Digest(d)) => d,
        other => panic!("{url}: {other:?}"),
    }
}

#[test]
fn typed_checksums_of_every_algorithm_in_any_case() {
    // Cosmos Hub v8-Rho's on-chain plan.
    let gaia = "https://github.com/cosmos/gaia/releases/download/v8.0.0/gaiad-v8.0.0-linux-amd64?checksum=sha256:6d0c123e246a8b56ba534f70dd5dc72058b00fd5e5dde5ea40509ff51efc42e2";
    let u = parse_url(gaia).unwrap();
    assert_eq!(
        u.url,
        "https://github.com/cosmos/gaia/releases/download/v8.0.0/gaiad-v8.0.0-linux-amd64"
    );
    assert_eq!(
        digest(gaia),
        Digest {
            algorithm: Algorithm::Sha256,
            hex: "6d0c123e246a8b56ba534f70dd5dc72058b00fd5e5dde5ea40509ff51efc42e2".into()
        }
    );
    for (kind, algorithm) in [
        ("md5", Algorithm::Md5),
        ("SHA1", Algorithm::Sha1),
        ("Sha256", Algorithm::Sha256),
        ("sha512", Algorithm::Sha512),
    ] {
        let hex = "AB".repeat(algorithm.hex_len() / 2);
        let d = digest(&format!("https://h/b?checksum={kind}:{hex}"));
        assert_eq!(d.algorithm, algorithm);
        assert_eq!(d.hex, hex.to_ascii_lowercase());
    }
    // Percent-encoded, as a URL-encoding tool writes it.
    assert_eq!(
        digest(&format!(
            "https://h/b?checksum=sha512%3A{}",
            "c".repeat(128)
        ))
        .algorithm,
        Algorithm::Sha512
    );
}

#[test]
fn bare_checksums_take_their_algorithm_from_their_length() {
    // Osmosis v31 in chain-registry's osmosis/versions.json.
    let osmosis = "https://github.com/osmosis-labs/osmosis/releases/download/v31.0.0/osmosisd-31.0.0-linux-amd64?checksum=d435408b845e79a2594594a315d9d22797fdbb7871a5936df68f51f0df557957";
    assert_eq!(digest(osmosis).algorithm, Algorithm::Sha256);
    // Uptick v0.3.0: bare hex on a .tar.gz.
    let uptick = "https://raw.githubusercontent.com/UptickNetwork/uptick-mainnet/main/uptick_117-1/lib/uptickd-linux-amd64-v0.3.0.tar.gz?checksum=ceedede0f5016906fadc688cc69fb5c378832c661decba199bcb2a66507d0f76";
    let u = parse_url(uptick).unwrap();
    assert_eq!(Format::from_path(&url_path(&u.url)), Some(Format::TarGz));
    for (digits, algorithm) in [
        (32, Algorithm::Md5),
        (40, Algorithm::Sha1),
        (64, Algorithm::Sha256),
        (128, Algorithm::Sha512),
    ] {
        let d = digest(&format!("https://h/b?checksum={}", "0".repeat(digits)));
        assert_eq!(d.algorithm, algorithm);
    }
}

#[test]
fn malformed_checksums_from_real_registries_are_refused_naming_the_fault() {
    // cosmoshub/versions.json v10, darwin/arm64: a file name glued onto the hex.
    let glued = "https://github.com/cosmos/gaia/releases/download/v10.0.2/gaiad-v10.0.2-darwin-arm64?checksum=sha256:c8124d66ffa99b51da274656f6c3401b1ec9e165a76f3f01699761672e83a136gaiad-v10.0.1-linux-amd64";
    let e = parse_url(glued).unwrap_err();
    assert!(e.contains("?checksum=") && e.contains("not hex"), "{e}");
    // gonka/versions.json v0.2.0: 65 hex digits.
    let odd = "https://h/inferenced-darwin-arm64.zip?checksum=sha256:258fdf9a9faee08202c907034084626d221097c84d317283f0e4b4c6c7aecefc1";
    assert!(parse_url(odd).unwrap_err().contains("odd number"));
    let wrong_length = format!("https://h/b?checksum=sha256:{}", "a".repeat(40));
    assert!(
        parse_url(&wrong_length)
            .unwrap_err()
            .contains("40 hex digits, not 64")
    );
    assert!(
        parse_url("https://h/b?checksum=blake2b:abcd")
            .unwrap_err()
            .contains("blake2b")
    );
    assert!(
        parse_url("https://h/b?checksum=abcd")
            .unwrap_err()
            .contains("without a type")
    );
    assert!(
        parse_url("https://h/b?checksum=file:")
            .unwrap_err()
            .contains("no checksum file")
    );
}

#[test]
fn no_checksum_an_empty_one_and_other_parameters_kept() {
    let u = parse_url("https://h/b?a=1&checksum=&b=2#frag").unwrap();
    assert_eq!(u.url, "https://h/b?a=1&b=2#frag");
    assert_eq!(u.checksum, None);
    let u = parse_url("https://h/b").unwrap();
    assert_eq!(
        (u.url.as_str(), u.checksum, u.archive, u.subdir),
        ("https://h/b", None, Archive::Detect, None)
    );
}

#[test]
fn checksum_files_by_url() {
    // go-getter's own example form (Terraform's SHA256SUMS).
    let u = parse_url("https://releases.example.com/tool/1.0/tool_1.0_linux_amd64.zip?checksum=file:https://releases.example.com/tool/1.0/tool_1.0_SHA256SUMS").unwrap();
    assert_eq!(
        u.checksum,
        Some(Checksum::File(
            "https://releases.example.com/tool/1.0/tool_1.0_SHA256SUMS".into()
        ))
    );
    assert_eq!(
        u.url,
        "https://releases.example.com/tool/1.0/tool_1.0_linux_amd64.zip"
    );
}

#[test]
fn checksum_file_lines_as_go_getter_reads_them() {
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let target = "/org/repo/releases/download/v1/gaiad-linux-amd64";
    let sums = "/org/repo/releases/download/v1/SHA256SUMS";
    // GNU style, the binary marker, other files first.
    let gnu = format!("{a}  gaiad-darwin-arm64\n{b} *gaiad-linux-amd64\n");
    assert_eq!(checksum_from_file(&gnu, target, sums).unwrap().hex, b);
    // BSD style with a declared type.
    let bsd = format!("SHA256 (gaiad-darwin-arm64) = {a}\nSHA256 (gaiad-linux-amd64) = {b}\n");
    assert_eq!(checksum_from_file(&bsd, target, sums).unwrap().hex, b);
    let md5 = format!("MD5 (gaiad-linux-amd64) = {}\n", "c".repeat(32));
    assert_eq!(
        checksum_from_file(&md5, target, sums).unwrap().algorithm,
        Algorithm::Md5
    );
    // A file holding just the digest (kubectl.sha256 style) names no file: it is taken.
    assert_eq!(
        checksum_from_file(&format!("{a}\n"), target, sums)
            .unwrap()
            .hex,
        a
    );
    // Paths relative to the checksum file's folder, with ./, and comments skipped.
    let nested = format!("# release v1\n{a}  ./bin/gaiad\r\n");
    assert_eq!(
        checksum_from_file(&nested, "/r/v1/bin/gaiad", "/r/v1/SHA256SUMS")
            .unwrap()
            .hex,
        a
    );
    let up = format!("{a}  ../v1/gaiad\n");
    assert_eq!(
        checksum_from_file(&up, "/r/v1/gaiad", "/r/sums/SHA256SUMS")
            .unwrap()
            .hex,
        a
    );
    // Nothing for this file.
    let other = format!("{a}  gaiad-darwin-arm64\n");
    assert!(
        checksum_from_file(&other, target, sums)
            .unwrap_err()
            .contains("gaiad-linux-amd64")
    );
}

#[test]
fn archive_parameter_and_extensions() {
    assert_eq!(
        parse_url("https://h/b.tar.gz?archive=false")
            .unwrap()
            .archive,
        Archive::Off
    );
    assert_eq!(
        parse_url("https://h/b?archive=zip").unwrap().archive,
        Archive::Format(Format::Zip)
    );
    assert_eq!(
        parse_url("https://h/b?archive=tgz").unwrap().archive,
        Archive::Format(Format::TarGz)
    );
    assert_eq!(
        parse_url("https://h/b?archive=true").unwrap().archive,
        Archive::Detect
    );
    assert!(
        parse_url("https://h/b?archive=rar")
            .unwrap_err()
            .contains("rar")
    );
    assert_eq!(
        parse_url("https://h/b?archive=false").unwrap().url,
        "https://h/b"
    );
    for (path, format) in [
        ("/a/b.tar.gz", Some(Format::TarGz)),
        ("/a/b.TGZ", Some(Format::TarGz)),
        ("/a/b.tar.xz", Some(Format::TarXz)),
        ("/a/b.txz", Some(Format::TarXz)),
        ("/a/b.tar.bz2", Some(Format::TarBz2)),
        ("/a/b.tar.zst", Some(Format::TarZst)),
        ("/a/b.tar", Some(Format::Tar)),
        ("/a/b.zip", Some(Format::Zip)),
        ("/a/b.gz", Some(Format::Gz)),
        ("/a/b.xz", Some(Format::Xz)),
        ("/a/b.bz2", Some(Format::Bz2)),
        ("/a/b.zst", Some(Format::Zst)),
        ("/a/gaiad-v15.2.0-linux-amd64", None),
        ("/a/gaiad", None),
    ] {
        assert_eq!(Format::from_path(path), format, "{path}");
    }
}

#[test]
fn subfolders_after_a_double_slash() {
    let u = parse_url(&format!(
        "https://h/rel/simd-v2.tar.gz//simd-v2/bin?checksum=sha256:{}",
        "a".repeat(64)
    ))
    .unwrap();
    assert_eq!(u.url, "https://h/rel/simd-v2.tar.gz");
    assert_eq!(u.subdir.as_deref(), Some("simd-v2/bin"));
    assert!(u.checksum.is_some());
    // The query is searched for nothing: a URL in it does not split.
    let u = parse_url("https://h/b.tar.gz?checksum=file:https://h/SUMS").unwrap();
    assert_eq!(u.subdir, None);
    assert_eq!(
        parse_url("https://h/b.tar.gz//*")
            .unwrap()
            .subdir
            .as_deref(),
        Some("*")
    );
    assert_eq!(
        parse_url("file:///opt/simd.tar.gz//x").unwrap().url,
        "file:///opt/simd.tar.gz"
    );
    assert!(
        parse_url("https://h/b.tar.gz//../x")
            .unwrap_err()
            .contains("..")
    );
    assert_eq!(parse_url("https://h/b.tar.gz//").unwrap().subdir, None);
}

#[test]
fn paths_info_urls_and_globs() {
    assert_eq!(url_path("https://h:1/a%20b/c?x#y"), "/a b/c");
    assert_eq!(url_path("file:///opt/bin/simd"), "/opt/bin/simd");
    // Persistence core-1 v16.0.0: info is a URL to the binaries document.
    assert!(is_url(
        "https://raw.githubusercontent.com/persistenceOne/networks/core-1/upgrades/v16.0.0/core-1/upgrades/v16.0.0/binaries.json?checksum=sha256:8205122a9661494f5f558efdd79a09d5e71e06302ea2068196c074a54e5e2b96"
    ));
    assert!(is_url("/srv/plans/v2.json"));
    assert!(is_url(" file:///srv/plans/v2.json "));
    assert!(!is_url("{\"binaries\":{}}"));
    assert!(!is_url("v2 upgrade, see the forum"));
    assert!(glob_match("*", "simd-v2.0.1"));
    assert!(glob_match("simd-v?", "simd-v2"));
    assert!(!glob_match("simd-v?", "simd-v20"));
    assert!(glob_match("a*b*c", "axxbyyc"));
    assert!(!glob_match("a*b*c", "axxbyy"));
    assert!(glob_match("**", ""));
    // A pattern that makes a backtracking matcher run for ages answers at once.
    let started = std::time::Instant::now();
    assert!(!glob_match(
        &format!("{}x", "*".repeat(30)),
        &"a".repeat(100)
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
