//! The gov `Proposals` reader: the decoder on pages shaped as the SDK encodes real upgrade
//! proposals, and the whole query against servers that answer page by page, refuse gov v1 as a
//! v0.45 chain does, or answer garbage — with the texts the operator reads.
//!
//! The fixtures follow real proposals, encoded here with the field numbers of the SDK's
//! `cosmos/gov/v1/gov.proto`, `cosmos/gov/v1beta1/gov.proto`, `cosmos/upgrade/v1beta1/*.proto`
//! and `cosmos/gov/v1/tx.proto`:
//! - gov v1 `MsgSoftwareUpgrade`: the Cosmos Hub's v15 upgrade proposal as Gaia's docs draft it
//!   (`docs/governance/proposal-types/software-upgrade.md`: title "Upgrade v15", authority the
//!   gov module `cosmos10d07y265gmmuvt4z0w9aw880jnsr700j6zn9kn`, `info` the binaries map with
//!   the release's sha256 checksums); the id and heights are this test's;
//! - gov v1beta1 `SoftwareUpgradeProposal`: Osmosis proposal 458, "Osmosis v15 Sodium Upgrade",
//!   plan `v15` at height 8732500 (Osmosis then ran SDK 0.45: gov v1beta1 only); its `info`
//!   here is a release URL, text that is not JSON;
//! - `MsgExecLegacyContent`: that same content as an SDK 0.46+ chain stores a proposal sent
//!   through the legacy route;
//! - the `abci_query` answers: CometBFT v0.38's `ResponseQuery` JSON (`code`, `log`, `info`,
//!   `index` and `height` as strings, `key`/`value` base64 or null, `proofOps`, `codespace`),
//!   and the SDK's refusal of a path it has no route for (code 6, codespace `sdk`, "unknown
//!   query path: unknown request").

//!
//! The encoder and the fixtures are in `fixtures.rs`, the servers and the whole query in
//! `query.rs`.

mod fixtures;
mod query;

pub(crate) use fixtures::*;

use super::ProposalError;
use super::Proposed;
use super::decode::{Gov, decode_page, request};
use crate::chain::plan::DecodeError;
use crate::tree::Plan;
fn proposed(id: u64, name: &str, height: u64, info: &str, title: &str, end: i64) -> Proposed {
    Proposed {
        id,
        plan: Plan {
            name: name.into(),
            height,
            info: info.into(),
        },
        title: title.into(),
        voting_end_unix: Some(end),
    }
}

#[test]
fn both_kinds_of_gov_v1_upgrade_are_read_and_other_messages_passed_over() {
    let text = {
        let mut value = Vec::new();
        bytes(&mut value, 1, b"Signal");
        bytes(&mut value, 2, b"prose");
        exec_legacy_content(
            &any("/cosmos.gov.v1beta1.TextProposal", &value),
            GOV_AUTHORITY,
        )
    };
    let spend = any(
        "/cosmos.distribution.v1beta1.MsgCommunityPoolSpend",
        b"\x0a\x02ab",
    );
    let cancel = any("/cosmos.upgrade.v1beta1.MsgCancelUpgrade", b"\x0a\x02ab");
    let legacy = exec_legacy_content(&osmosis_v15_content(), GOV_AUTHORITY);
    let message = page(
        &[
            gaia_v15(885),
            v1_proposal(886, &[text, spend, cancel], 2, "Signal"),
            // No title of its own (SDK 0.46): the content's.
            v1_proposal(887, &[legacy], 2, ""),
        ],
        b"",
        3,
    );
    let page = decode_page(&message, Gov::V1).unwrap();
    assert!(page.next_key.is_empty());
    assert_eq!(
        page.proposed,
        [
            proposed(
                885,
                "v15",
                19_639_600,
                GAIA_V15_INFO,
                "Upgrade v15",
                1_711_000_000
            ),
            proposed(
                887,
                "v15",
                8_732_500,
                OSMOSIS_V15_INFO,
                "Osmosis v15 Sodium Upgrade",
                1_711_000_000
            ),
        ]
    );
}

#[test]
fn gov_v1beta1_proposals_hold_the_legacy_content() {
    let message = page(&[v1beta1_proposal(458, &osmosis_v15_content(), 2)], b"", 1);
    let page = decode_page(&message, Gov::V1beta1).unwrap();
    assert_eq!(
        page.proposed,
        [proposed(
            458,
            "v15",
            8_732_500,
            OSMOSIS_V15_INFO,
            "Osmosis v15 Sodium Upgrade",
            1_678_800_000
        )]
    );
}

#[test]
fn proposals_not_in_voting_and_empty_answers_are_no_upgrade() {
    // Passed (3) or in deposit (1): not what was asked, not proposed.
    let message = page(
        &[
            v1_proposal(
                9,
                &[msg_software_upgrade(GOV_AUTHORITY, &plan("v9", 5, ""))],
                3,
                "",
            ),
            v1beta1_proposal(10, &osmosis_v15_content(), 1),
        ],
        b"",
        2,
    );
    assert!(decode_page(&message, Gov::V1).unwrap().proposed.is_empty());
    // No proposals at all: an empty message, or an empty list with its pagination.
    for message in [vec![], page(&[], b"", 0)] {
        let page = decode_page(&message, Gov::V1).unwrap();
        assert!(page.proposed.is_empty() && page.next_key.is_empty());
    }
}

#[test]
fn a_plan_whose_info_is_not_json_is_read_as_its_text() {
    let upgrade = msg_software_upgrade(GOV_AUTHORITY, &plan("v3", 40, "see the forum {not json"));
    let message = page(&[v1_proposal(3, &[upgrade], 2, "t")], b"", 1);
    let page = decode_page(&message, Gov::V1).unwrap();
    assert_eq!(page.proposed[0].plan.info, "see the forum {not json");
}

#[test]
fn an_upgrade_that_does_not_decode_names_its_proposal() {
    let cut = {
        let mut value = Vec::new();
        bytes(&mut value, 1, GOV_AUTHORITY.as_bytes());
        value.extend_from_slice(&[0x12, 0x40, 0x0a]); // plan: 64 bytes announced, 1 there
        any("/cosmos.upgrade.v1beta1.MsgSoftwareUpgrade", &value)
    };
    let no_plan = {
        let mut value = Vec::new();
        bytes(&mut value, 1, GOV_AUTHORITY.as_bytes());
        any("/cosmos.upgrade.v1beta1.MsgSoftwareUpgrade", &value)
    };
    let no_height = msg_software_upgrade(GOV_AUTHORITY, &plan("v7", 0, ""));
    let legacy_cut = exec_legacy_content(
        &any(
            "/cosmos.upgrade.v1beta1.SoftwareUpgradeProposal",
            &[0x1a, 0x05],
        ),
        GOV_AUTHORITY,
    );
    for (message, expected) in [
        (
            cut,
            "proposal 7: its /cosmos.upgrade.v1beta1.MsgSoftwareUpgrade cannot be read: a field of 64 bytes where 1 are left (truncated message)",
        ),
        (
            no_plan,
            "proposal 7: its /cosmos.upgrade.v1beta1.MsgSoftwareUpgrade cannot be read: MsgSoftwareUpgrade has no plan",
        ),
        (
            no_height,
            "proposal 7: its /cosmos.upgrade.v1beta1.MsgSoftwareUpgrade cannot be read: the chain's plan has no name or height (name \"v7\", height 0)",
        ),
        (
            legacy_cut,
            "proposal 7: its /cosmos.gov.v1.MsgExecLegacyContent cannot be read: a field of 5 bytes where 0 are left (truncated message)",
        ),
    ] {
        let err =
            decode_page(&page(&[v1_proposal(7, &[message], 2, "")], b"", 1), Gov::V1).unwrap_err();
        assert!(
            matches!(err, ProposalError::Upgrade { id: 7, .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), expected);
    }
    // A message that is not even an Any: it could be an upgrade.
    let err = decode_page(
        &page(&[v1_proposal(8, &[vec![0x0a]], 2, "")], b"", 1),
        Gov::V1,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "proposal 8: a message cannot be read: truncated varint"
    );
}

#[test]
fn garbage_is_an_error_not_an_empty_list() {
    // Field 1 as a varint, pagination as a fixed64, a proposal whose id is a string, a title
    // that is not UTF-8, a timestamp of the wrong type, a proposal without an id.
    let mut bad_title = Vec::new();
    varint(&mut bad_title, 1, 5);
    varint(&mut bad_title, 3, 2);
    bytes(&mut bad_title, 11, &[0xff, 0xfe]);
    let mut bad_end = Vec::new();
    varint(&mut bad_end, 1, 5);
    varint(&mut bad_end, 3, 2);
    varint(&mut bad_end, 9, 12);
    let mut no_id = Vec::new();
    varint(&mut no_id, 3, 2);
    for (message, expected) in [
        (
            vec![0x08, 0x01],
            "the Proposals answer's field 1 (proposals) has the wrong wire type",
        ),
        (
            vec![0x11, 1, 2, 3, 4, 5, 6, 7, 8],
            "the Proposals answer's field 2 (pagination) has the wrong wire type",
        ),
        (
            page(&[vec![0x0a, 0x01, b'5']], b"", 0),
            "a proposal's field 1 (id) has the wrong wire type",
        ),
        (
            page(&[bad_title], b"", 0),
            "a proposal's title is not UTF-8",
        ),
        (
            page(&[bad_end], b"", 0),
            "a proposal's field 9 (voting_end_time) has the wrong wire type",
        ),
        (
            page(&[no_id], b"", 0),
            "a proposal in its voting period has no id",
        ),
        (
            vec![0x0a, 0x05, 0x01],
            "a field of 5 bytes where 1 are left (truncated message)",
        ),
        (
            b"<html>502 Bad Gateway</html>".to_vec(),
            "unknown protobuf wire type 4",
        ),
    ] {
        let err = decode_page(&message, Gov::V1).unwrap_err();
        assert_eq!(err.to_string(), expected, "{message:?}");
    }
}

#[test]
fn the_request_asks_for_the_voting_period_a_page_at_a_time() {
    // proposal_status = 2; pagination { limit = 100 }, then { key, limit = 100 }.
    assert_eq!(request(&[]), [0x08, 0x02, 0x22, 0x02, 0x18, 0x64]);
    assert_eq!(
        request(&[0, 0, 0, 7]),
        [0x08, 0x02, 0x22, 0x08, 0x0a, 0x04, 0, 0, 0, 7, 0x18, 0x64]
    );
}

#[test]
fn decode_errors_keep_their_source() {
    let err = decode_page(&[0x80], Gov::V1).unwrap_err();
    assert_eq!(err, ProposalError::Listing(DecodeError::VarintTruncated));
    assert_eq!(err.to_string(), "truncated varint");
}
