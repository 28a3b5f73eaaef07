use super::*;

// minisign's own test vector: the key, and prehashed (ED) and legacy (Ed) signatures of "test".
const KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
const PREHASHED: &str = "untrusted comment: signature from minisign secret key
RUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=
trusted comment: timestamp:1633700835\tfile:test\tprehashed
wLMDjy9FLAuxZ3q4NlEvkgtyhrr0gtTu6KC4KBJdITbbOeAi1zBIYo0v4iTgt8jJpIidRJnp94ABQkJAgAooBQ==";
const LEGACY: &str = "untrusted comment: signature from minisign secret key
RWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=
trusted comment: timestamp:1555779966\tfile:test
QtKMXWyYcwdpZAlPF7tE2ENJkRd1ujvKjlj1m9RtHTBnZPa5WKU5uWRs5GoP5M/VqE81QFuMKI5k/SfNQUaOAA==";

fn settings(pairs: &[(&str, &str)]) -> Settings {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn policy() -> Policy {
    Policy::new(&settings(&[("public-key", KEY)]), "", "v2").unwrap()
}

#[test]
fn a_prehashed_signature_by_the_key_verifies_and_nothing_else_does() {
    let p = policy();
    assert_eq!(p.verify(b"test", PREHASHED), Ok(()));
    assert!(p.verify(b"tesT", PREHASHED).is_err(), "other data");
    let e = p.verify(b"test", LEGACY).unwrap_err();
    assert!(e.contains("no configured public-key"), "{e}");
    assert!(p.verify(b"test", "not a signature").is_err());
}

#[test]
fn the_settings_are_checked() {
    let e = Policy::new(&settings(&[]), "", "v2").err().unwrap();
    assert!(e.contains("no public-key"), "{e}");
    let e = Policy::new(&settings(&[("public-key", "RWQnope")]), "", "v2")
        .err()
        .unwrap();
    assert!(e.contains("not a minisign public key"), "{e}");
    let e = Policy::new(
        &settings(&[("public-key", KEY), ("signature", "plan")]),
        r#"{"binaries": {}}"#,
        "v2",
    )
    .err()
    .unwrap();
    assert!(e.contains("no \"minisig\""), "{e}");
    let p = Policy::new(
        &settings(&[("public-key", KEY), ("signature", "plan")]),
        &serde_json::json!({"minisig": PREHASHED}).to_string(),
        "v2",
    )
    .unwrap();
    assert_eq!(p.from, From::Plan(PREHASHED.into()));
    let e = Policy::new(
        &settings(&[("public-key", KEY), ("checksums", "a/b")]),
        "",
        "v2",
    )
    .err()
    .unwrap();
    assert!(e.contains("give a file name"), "{e}");
}

#[test]
fn the_signed_digest_is_read_from_the_checksum_file_beside_the_artifact() {
    // The checksum file is "test", which the vector signs: it lists no file, so a lone digest
    // would be needed; "test" is none, and the error says so.
    let p = policy();
    let mut asked = Vec::new();
    let e = p
        .signed("https://example.com/v2/simd-linux-amd64", &mut |u| {
            asked.push(u.to_string());
            Ok(if u.ends_with(".minisig") {
                PREHASHED.as_bytes().to_vec()
            } else {
                b"test".to_vec()
            })
        })
        .unwrap_err();
    assert_eq!(
        asked,
        [
            "https://example.com/v2/SHA256SUMS",
            "https://example.com/v2/SHA256SUMS.minisig"
        ]
    );
    assert!(e.contains("the signed SHA256SUMS"), "{e}");

    // A checksum file the key did not sign is refused before it is read.
    let e = p
        .signed("https://example.com/v2/simd", &mut |u| {
            Ok(if u.ends_with(".minisig") {
                PREHASHED.as_bytes().to_vec()
            } else {
                format!("{}  simd\n", "a".repeat(64)).into_bytes()
            })
        })
        .unwrap_err();
    assert!(e.contains("no configured public-key verifies"), "{e}");
}

#[test]
fn an_artifact_checksum_must_agree_with_the_signed_one() {
    let signed = "ab".repeat(32);
    let artifact = |url: &str, hex: Option<&str>| Artifact {
        url: url.into(),
        checksum: hex.map(|h| WitChecksum {
            algorithm: HashAlgorithm::Sha256,
            hex: h.into(),
        }),
        format: wasmvisor::plugin::types::ArchiveFormat::Auto,
    };
    assert_eq!(agrees(&artifact("https://h/x", None), &signed), Ok(()));
    assert_eq!(
        agrees(
            &artifact("https://h/x", Some(&signed.to_uppercase())),
            &signed
        ),
        Ok(())
    );
    assert!(agrees(&artifact("https://h/x", Some(&"cd".repeat(32))), &signed).is_err());
    let url = format!("https://h/x?checksum=sha256:{}", "cd".repeat(32));
    assert!(agrees(&artifact(&url, None), &signed).is_err());
}

#[test]
fn bound_to_the_plan_the_trusted_comment_must_name_it() {
    // The vector's trusted comment is "timestamp:1633700835\tfile:test\tprehashed".
    let bound = |plan: &str| {
        Policy::new(
            &settings(&[("public-key", KEY), ("bind-to-plan", "true")]),
            "",
            plan,
        )
        .unwrap()
    };
    assert_eq!(bound("test").verify(b"test", PREHASHED), Ok(()));
    let e = bound("v2").verify(b"test", PREHASHED).unwrap_err();
    assert!(e.contains("does not name the plan v2"), "{e}");
    // A word, not a substring: "tes" is not named.
    assert!(bound("tes").verify(b"test", PREHASHED).is_err());
    assert!(
        Policy::new(
            &settings(&[("public-key", KEY), ("bind-to-plan", "yes")]),
            "",
            "v2"
        )
        .is_err()
    );
}
