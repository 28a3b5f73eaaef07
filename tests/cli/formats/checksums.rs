//! Checksums: every form go-getter reads, checksum files, `info` as a URL to a checksummed
//! document, and what `DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM` and a policy demand.

use serde_json::json;

use crate::harness::serve::Server;
use crate::harness::*;

use super::{err, gz, home, installed, prepare, prepare_info, standalone, tar, xz};

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
