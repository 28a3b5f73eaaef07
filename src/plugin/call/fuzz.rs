//! Property tests of what the host accepts from a plugin: any answer a hostile resolver or
//! health check can give is either within bounds or refused with a reason — never a panic, and
//! never a control character on the operator's terminal.

use proptest::prelude::*;

use super::*;
use crate::plugin::bindings::{ArchiveFormat, Artifact, Checksum, Deferral};

fn algorithm() -> impl Strategy<Value = HashAlgorithm> {
    prop_oneof![Just(HashAlgorithm::Sha256), Just(HashAlgorithm::Sha512)]
}

fn checksum() -> impl Strategy<Value = Checksum> {
    let hex = prop_oneof![
        "[0-9a-fA-F]{64}",
        "[0-9a-fA-F]{128}",
        "[0-9a-zA-Z]{0,130}",
        ".{0,130}",
    ];
    (algorithm(), hex).prop_map(|(algorithm, hex)| Checksum { algorithm, hex })
}

fn artifact() -> impl Strategy<Value = Artifact> {
    let url = prop_oneof![
        4 => "https://[a-z.]{1,20}/[a-z0-9._/-]{0,40}",
        1 => ".{0,64}",
        1 => Just(String::new()),
        1 => (MAX_URL - 2..MAX_URL + 2).prop_map(|n| "u".repeat(n)),
    ];
    let format = prop_oneof![
        Just(ArchiveFormat::Auto),
        Just(ArchiveFormat::Raw),
        Just(ArchiveFormat::TarGz),
        Just(ArchiveFormat::Zip),
    ];
    (url, prop::option::of(checksum()), format).prop_map(|(url, checksum, format)| Artifact {
        url,
        checksum,
        format,
    })
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        Just(Decision::UseStaged),
        prop_oneof![
            ".{0,64}",
            (MAX_TEXT - 2..MAX_TEXT + 2).prop_map(|n| "r".repeat(n))
        ]
        .prop_map(Decision::Refuse),
        prop::collection::vec(artifact(), 0..MAX_ARTIFACTS + 3).prop_map(Decision::Fetch),
        ".{0,64}".prop_map(Decision::Unresolved),
        (
            prop_oneof![
                0..=MAX_NOT_BEFORE,
                MAX_NOT_BEFORE..=u64::MAX,
                NOW - 10..=NOW + MAX_DEFERRAL + 10,
            ],
            ".{0,64}"
        )
            .prop_map(|(at, reason)| Decision::NotBefore(Deferral { at, reason })),
    ]
}

/// The time the answers are given at (2026-01-01).
const NOW: u64 = 1_767_225_600;

#[test]
fn a_deferral_more_than_a_year_ahead_is_refused() {
    let at = |at: u64| {
        validate_decision(
            &Decision::NotBefore(Deferral {
                at,
                reason: "window".into(),
            }),
            NOW,
        )
    };
    assert_eq!(at(NOW + 3600), Ok(()));
    assert_eq!(at(NOW - 3600), Ok(()), "a past time holds nothing back");
    assert_eq!(at(NOW + MAX_DEFERRAL), Ok(()));
    // 2126: the old check let anything up to the year 9999 through.
    let err = at(NOW + 100 * 365 * 86_400).unwrap_err();
    assert!(
        err.contains("2125-12-08T00:00:00Z") && err.contains("more than a year ahead"),
        "{err}"
    );
    assert!(at(NOW + MAX_DEFERRAL + 1).is_err());
    // Milliseconds for seconds: past the year 9999, refused as before.
    assert!(at(NOW * 1000).unwrap_err().contains("9999"));
}

proptest! {
    #[test]
    fn a_resolver_answer_is_within_bounds_or_refused_with_a_reason(d in decision()) {
        match validate_decision(&d, NOW) {
            Err(reason) => prop_assert!(!reason.is_empty()),
            Ok(()) => match &d {
                Decision::UseStaged => {}
                Decision::Refuse(reason) | Decision::Unresolved(reason) => {
                    prop_assert!(reason.len() <= MAX_TEXT)
                }
                Decision::NotBefore(d) => {
                    prop_assert!(d.at <= MAX_NOT_BEFORE && d.reason.len() <= MAX_TEXT);
                    prop_assert!(d.at <= NOW + MAX_DEFERRAL)
                }
                Decision::Fetch(list) => {
                    prop_assert!(!list.is_empty() && list.len() <= MAX_ARTIFACTS);
                    for a in list {
                        prop_assert!(!a.url.is_empty() && a.url.len() <= MAX_URL);
                        if let Some(c) = &a.checksum {
                            let digits = match c.algorithm {
                                HashAlgorithm::Sha256 => 64,
                                HashAlgorithm::Sha512 => 128,
                            };
                            prop_assert_eq!(c.hex.len(), digits);
                            prop_assert!(hex::decode(&c.hex).is_ok());
                        }
                    }
                }
            },
        }
    }

    #[test]
    fn a_plugin_text_reaches_the_operator_without_control_characters(text in "(.|\\PC|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}])*") {
        let shown = plain(text.clone());
        prop_assert!(!shown.chars().any(char::is_control), "{:?}", shown);
        if !text.chars().any(char::is_control) {
            prop_assert_eq!(shown, text);
        }
    }
}
