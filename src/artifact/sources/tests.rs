//! The host's own part of a fetch, without a plugin: local files, the refusals before any
//! source is asked, the retry decision, and the failures kept as values (their words exactly
//! what an operator saw before they were values).

use std::time::{Duration, Instant};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::*;
use crate::plugin::ArchiveFormat;

/// A host (no cache, no plugin loaded) and a work folder.
struct Bench {
    host: Host,
    scratch: tempfile::TempDir,
    work: Dir,
}

fn bench() -> Bench {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir(scratch.path().join("work")).unwrap();
    let work = Dir::open_ambient_dir(scratch.path().join("work"), ambient_authority()).unwrap();
    Bench {
        host: Host::new(crate::plugin::HostConfig::default()).unwrap(),
        scratch,
        work,
    }
}

impl Bench {
    fn fetch(
        &self,
        url: &str,
        expected: &[Digest],
        limits: &Limits,
    ) -> Result<Fetched, FetchFailure> {
        let artifact = Artifact {
            url: url.to_string(),
            checksum: None,
            format: ArchiveFormat::Auto,
        };
        fetch(
            &self.host,
            &[],
            &artifact,
            expected,
            &self.work,
            limits,
            &Cancel::new(),
        )
    }

    /// A file beside the work folder, and its `file://` URL.
    fn local(&self, bytes: &[u8]) -> String {
        let path = self.scratch.path().join("simd");
        std::fs::write(&path, bytes).unwrap();
        format!("file://{}", path.display())
    }

    fn left_in_work(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.scratch.path().join("work"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

#[test]
fn a_local_file_with_the_right_checksum_is_fetched() {
    let bench = bench();
    let url = bench.local(b"#!/bin/sh\n");
    let expected = [Digest::typed("sha256", &sha256(b"#!/bin/sh\n")).unwrap()];
    let fetched = bench.fetch(&url, &expected, &Limits::default()).unwrap();
    assert_eq!(fetched.size, 10);
    assert_eq!(fetched.source, "the local file");
    assert_eq!(fetched.digests.sha256(), sha256(b"#!/bin/sh\n"));
    assert_eq!(bench.left_in_work(), [fetched.name]);
}

#[test]
fn a_checksum_mismatch_is_a_value_of_its_own_and_leaves_nothing() {
    let bench = bench();
    let url = bench.local(b"#!/bin/sh\n");
    let wrong = "0".repeat(64);
    let expected = [Digest::typed("sha256", &wrong).unwrap()];
    let Err(FetchFailure::Mismatch(m)) = bench.fetch(&url, &expected, &Limits::default()) else {
        panic!("not a mismatch");
    };
    assert_eq!(
        (m.url.as_str(), m.source_name.as_str()),
        (url.as_str(), "the local file")
    );
    assert_eq!(m.expected, format!("sha256:{wrong}"));
    assert_eq!(m.actual, format!("sha256:{}", sha256(b"#!/bin/sh\n")));
    assert_eq!(
        FetchFailure::Mismatch(m).to_string(),
        format!(
            "checksum mismatch for {url} (from source the local file): expected sha256:{wrong}, got sha256:{}; nothing was installed",
            sha256(b"#!/bin/sh\n")
        )
    );
    assert!(bench.left_in_work().is_empty());
}

#[test]
fn a_local_file_over_the_limit_is_refused_with_why() {
    let bench = bench();
    let url = bench.local(&[1u8; 100]);
    let small = Limits {
        download: 10,
        ..Limits::default()
    };
    let e = bench.fetch(&url, &[], &small).unwrap_err();
    assert!(
        matches!(
            &e,
            FetchFailure::Failed { reasons, .. }
                if matches!(reasons.as_slice(), [SourceFailure::Local(LocalError::Write(WriteError::TooLarge(10)))])
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("cannot fetch {url}: the artifact is larger than the limit of 10 bytes")
    );
    assert!(bench.left_in_work().is_empty());
}

#[test]
fn a_missing_local_file_names_its_path() {
    let bench = bench();
    let path = bench.scratch.path().join("absent");
    let url = path.display().to_string();
    let e = bench.fetch(&url, &[], &Limits::default()).unwrap_err();
    let FetchFailure::Failed { reasons, .. } = &e else {
        panic!("{e:?}");
    };
    let [
        SourceFailure::Local(LocalError::Open {
            path: named,
            source,
        }),
    ] = reasons.as_slice()
    else {
        panic!("{reasons:?}");
    };
    assert_eq!(named, &path);
    assert!(source.is_not_found(), "{source}");
    assert_eq!(
        e.to_string(),
        format!("cannot fetch {url}: {url}: {source}")
    );
}

#[test]
fn a_file_url_naming_a_host_and_a_url_no_source_takes_are_refused_in_words() {
    let bench = bench();
    let e = bench
        .fetch("file://build-host/simd", &[], &Limits::default())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot fetch file://build-host/simd: a file URL names a file on this host: write it file:///absolute/path"
    );
    let e = bench
        .fetch("https://example.com/simd", &[], &Limits::default())
        .unwrap_err();
    assert!(
        matches!(&e, FetchFailure::Failed { reasons, .. } if matches!(reasons.as_slice(), [SourceFailure::NoSource])),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "cannot fetch https://example.com/simd: no configured source handles this URL"
    );
}

#[test]
fn a_retryable_failure_gives_up_when_the_tries_or_the_timeout_are_spent() {
    let now = Instant::now();
    let (second, minute) = (Duration::from_secs(1), Duration::from_secs(60));
    assert!(give_up(2, 5, minute, now + minute, second).is_none());
    assert!(matches!(
        give_up(5, 5, minute, now + minute, second),
        Some(GaveUp::Tries(5))
    ));
    // The next back-off would reach the deadline: the timeout is spent.
    let why = give_up(2, 5, minute, now + second / 2, second).unwrap();
    assert!(matches!(why, GaveUp::Timeout { attempt: 2, .. }), "{why:?}");
    assert_eq!(
        why.to_string(),
        "its timeout of 1m0s is spent after 2 tries"
    );
    let reason = SourceFailure::GaveUp {
        name: "http".into(),
        message: "503".into(),
        why: GaveUp::Tries(5),
    };
    assert_eq!(reason.to_string(), "http: 503 (after 5 tries)");
    let reasons = vec![
        reason,
        SourceFailure::TooLarge {
            name: "s3".into(),
            limit: 7,
        },
    ];
    assert_eq!(
        FetchFailure::Failed {
            url: "https://x/simd".into(),
            reasons
        }
        .to_string(),
        "cannot fetch https://x/simd: http: 503 (after 5 tries); s3: the artifact is larger than 7 bytes (the most a node binary with its libraries may take, or the free space left)"
    );
}
