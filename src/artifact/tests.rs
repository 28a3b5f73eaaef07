//! What `stage` tells its callers: a mismatch, a stop and the per-artifact failures as values a
//! caller matches on, rendered as the one line an operator reads.

use super::*;

#[test]
fn a_failed_staging_keeps_each_artifacts_failure_and_joins_them_in_its_message() {
    let e = StageError::Failed(vec![
        ArtifactFailure::Url {
            url: "ftp://x".into(),
            reason: "not a URL go-getter reads".into(),
        },
        ArtifactFailure::NoChecksum {
            url: "https://a/simd".into(),
        },
        ArtifactFailure::Checksum {
            url: "https://b/simd".into(),
            source: ChecksumError::File {
                file: "https://b/SHA256SUMS".into(),
                reason: checksum::ChecksumFileError::Nested,
            },
        },
        ArtifactFailure::Install {
            url: "https://c/simd.tar.gz".into(),
            source: InstallError::Unpack(unpack::UnpackError::TooManyEntries(3)),
        },
    ]);
    assert_eq!(
        e.to_string(),
        "ftp://x: not a URL go-getter reads; \
         https://a/simd has no checksum and DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM is on; \
         https://b/simd: the checksum file https://b/SHA256SUMS: its own checksum is another checksum file; \
         https://c/simd.tar.gz: the archive has more than 3 entries"
    );
    let StageError::Failed(reasons) = &e else {
        unreachable!()
    };
    assert!(matches!(
        &reasons[3],
        ArtifactFailure::Install {
            source: InstallError::Unpack(unpack::UnpackError::TooManyEntries(3)),
            ..
        }
    ));
}

#[test]
fn a_mismatch_reads_as_the_fetch_said_it() {
    let mismatch = || Mismatch {
        url: "https://a/simd".into(),
        source_name: "http".into(),
        expected: "sha256:00".into(),
        actual: "sha256:11".into(),
    };
    assert_eq!(
        StageError::Mismatch(mismatch()).to_string(),
        FetchFailure::Mismatch(mismatch()).to_string()
    );
    assert_eq!(
        StageError::Mismatch(mismatch()).to_string(),
        "checksum mismatch for https://a/simd (from source http): expected sha256:00, got sha256:11; nothing was installed"
    );
}

#[test]
fn an_unmade_downloads_folder_names_it() {
    let e = StageError::Downloads {
        path: format!("{DOWNLOADS_DIR}/v2"),
        source: io::Error::from(io::ErrorKind::PermissionDenied),
    };
    assert_eq!(
        e.to_string(),
        format!(
            "{DOWNLOADS_DIR}/v2: {}",
            io::Error::from(io::ErrorKind::PermissionDenied)
        )
    );
}
