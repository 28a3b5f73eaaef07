//! "Is this the binary that failed?", judged from fingerprints.

use super::*;

const SHA_A: &str = "aa00000000000000000000000000000000000000000000000000000000000000";
const SHA_B: &str = "bb00000000000000000000000000000000000000000000000000000000000000";

fn disk(ino: u64) -> OnDisk {
    OnDisk {
        dev: 2049,
        ino,
        len: 1_000_000,
        mtime: 1_700_000_000,
        mtime_nsec: 5,
    }
}

fn failure(plan: Plan, sha256: &str, on_disk: Option<OnDisk>, reason: &str) -> Failed {
    Failed {
        plan,
        dir: "v2".into(),
        sha256: sha256.into(),
        fingerprint: on_disk.map_or_else(String::new, |d| d.to_string()),
        reason: reason.into(),
        restored: None,
        unrestored: None,
        at_unix_ms: 1,
    }
}

fn read(sha256: &str, on_disk: Option<OnDisk>) -> Result<Fingerprint, ReadError> {
    Ok(staged(on_disk, sha256.into()))
}

fn blocked_by(verdict: FailedBefore) -> Option<(String, String)> {
    match verdict {
        FailedBefore::Blocked { failed, sha256 } => Some((failed.reason, sha256)),
        FailedBefore::NotBlocked => None,
        FailedBefore::Unreadable { .. } => panic!("unexpected {verdict:?}"),
    }
}

#[test]
fn the_same_sha256_is_the_failed_binary_whatever_its_place_on_disk() {
    let failed = [failure(
        Plan::manual("v2", 3),
        SHA_A,
        Some(disk(1)),
        "exit 1",
    )];
    assert_eq!(
        blocked_by(judge(
            &failed,
            &Plan::manual("v2", 3),
            read(SHA_A, Some(disk(9)))
        )),
        Some(("exit 1".into(), SHA_A.into()))
    );
}

#[test]
fn a_different_sha256_is_another_binary_even_in_the_same_file() {
    // Rewritten in place, size and modification time kept: the content decides.
    let failed = [failure(
        Plan::manual("v2", 3),
        SHA_A,
        Some(disk(1)),
        "exit 1",
    )];
    assert_eq!(
        blocked_by(judge(
            &failed,
            &Plan::manual("v2", 3),
            read(SHA_B, Some(disk(1)))
        )),
        None
    );
}

#[test]
fn a_failure_recorded_without_a_sha256_is_recognised_by_its_identity_on_disk() {
    let failed = [failure(Plan::manual("v2", 3), "", Some(disk(1)), "exit 1")];
    assert_eq!(
        blocked_by(judge(
            &failed,
            &Plan::manual("v2", 3),
            read(SHA_B, Some(disk(1)))
        )),
        Some(("exit 1".into(), SHA_B.into()))
    );
    assert_eq!(
        blocked_by(judge(
            &failed,
            &Plan::manual("v2", 3),
            read(SHA_B, Some(disk(2)))
        )),
        None,
        "another file is another binary"
    );
}

#[test]
fn an_unknown_identity_never_matches_an_unknown_one() {
    let failed = [failure(Plan::manual("v2", 3), "", None, "exit 1")];
    assert_eq!(
        blocked_by(judge(&failed, &Plan::manual("v2", 3), read(SHA_A, None))),
        None
    );
}

#[test]
fn an_unreadable_staged_binary_counts_as_the_latest_failure() {
    let failed = [
        failure(Plan::manual("v2", 3), SHA_A, None, "first"),
        failure(Plan::manual("v2", 3), SHA_B, None, "second"),
        failure(Plan::manual("v3", 9), SHA_B, None, "another upgrade"),
    ];
    let verdict = judge(
        &failed,
        &Plan::manual("v2", 3),
        Err(ReadError::NotRegular("directory")),
    );
    assert!(
        matches!(&verdict, FailedBefore::Unreadable { failed, error: ReadError::NotRegular("directory") } if failed.reason == "second"),
        "{verdict:?}"
    );
    assert_eq!(
        verdict.into_failure().map(|f| f.reason),
        Some("second; and the staged binary cannot be read to tell whether it is another: it is a directory, not a regular file".into())
    );
}

#[test]
fn only_failures_of_that_very_upgrade_block_it() {
    let failed = [
        failure(Plan::manual("v2", 3), SHA_A, None, "at 3"),
        failure(Plan::manual("v3", 9), SHA_B, None, "v3"),
    ];
    for other in [
        Plan::manual("v2", 4),
        Plan::manual("v3", 3),
        Plan::manual("v4", 3),
    ] {
        assert_eq!(
            blocked_by(judge(&failed, &other, read(SHA_A, None))),
            None,
            "{other:?}"
        );
        assert!(matches!(
            judge(&failed, &other, Err(ReadError::TooLarge(1))),
            FailedBefore::NotBlocked
        ));
    }
}

#[test]
fn the_newest_matching_failure_is_the_one_reported() {
    let failed = [
        failure(Plan::manual("v2", 3), SHA_A, None, "older"),
        failure(Plan::manual("v2", 3), SHA_B, None, "other binary"),
        failure(Plan::manual("v2", 3), SHA_A, None, "newer"),
    ];
    assert_eq!(
        blocked_by(judge(&failed, &Plan::manual("v2", 3), read(SHA_A, None))).map(|b| b.0),
        Some("newer".into())
    );
    assert!(
        FailedBefore::NotBlocked.into_failure().is_none(),
        "not blocked has no failure"
    );
}

#[test]
fn the_journaled_identity_reads_back_and_malformed_ones_are_unknown() {
    let d = OnDisk {
        mtime: -3,
        ..disk(77)
    };
    assert_eq!(d.to_string(), "2049:77:1000000:-3.5");
    assert_eq!(OnDisk::parse(&d.to_string()), Some(d));
    for bad in [
        "",
        "1:2:3",
        "1:2:3:4",
        "1:2:3:4.5:6",
        "x:2:3:4.5",
        "1:2:3:4.y",
        "-1:2:3:4.5",
    ] {
        assert_eq!(OnDisk::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn the_identity_on_disk_ignores_a_chmod_and_sees_a_new_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("simd");
    std::fs::write(&bin, b"#!/bin/sh\n").unwrap();
    let before = OnDisk::of(&bin).unwrap();
    assert_eq!(OnDisk::journaled(&bin), before.to_string());
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(OnDisk::of(&bin), Some(before), "a chmod keeps the binary");
    let new = dir.path().join("new");
    std::fs::write(&new, b"#!/bin/sh\n").unwrap();
    std::fs::rename(&new, &bin).unwrap();
    assert_ne!(
        OnDisk::of(&bin),
        Some(before),
        "a file put in its place is another"
    );
    assert_eq!(OnDisk::of(&dir.path().join("gone")), None);
    assert_eq!(OnDisk::journaled(&dir.path().join("gone")), "");
}
