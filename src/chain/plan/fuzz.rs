//! Property tests of the CurrentPlan decoders: whatever a node, a proxy or something else on its
//! port answers — arbitrary protobuf bytes, a real-shaped answer with bytes flipped, cut or
//! inserted, any JSON for `abci_query`, any text for base64 — a plan, "no plan" or an error,
//! never a panic; and a plan read is always one with a name and a positive height. The same
//! for the gov `Proposals` pages, in their v1 and v1beta1 shapes: what is read is an upgrade of
//! a proposal with an id, its plan named and at a positive height.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::abci::{abci_value, base64_decode};
use super::proposals::decode::{Gov, decode_page};
use super::proposals::tests as gov;
use super::proto::decode_response;
use super::tests::response;
use crate::chain::edits;

/// A real-shaped page (v1: both kinds of upgrade message and a text proposal; v1beta1: the
/// legacy content) with bytes flipped, cut or inserted.
fn mutated_page() -> impl Strategy<Value = (Vec<u8>, Gov)> {
    (
        "[a-z0-9-]{0,12}",
        any::<i64>(),
        "\\PC{0,40}",
        any::<bool>(),
        prop::collection::vec(edits::edit(), 0..6),
    )
        .prop_map(|(name, height, info, v1, edits)| {
            let plan = gov::plan(&name, height, &info);
            let mut bytes = if v1 {
                let upgrade = gov::msg_software_upgrade(
                    "cosmos10d07y265gmmuvt4z0w9aw880jnsr700j6zn9kn",
                    &plan,
                );
                let legacy = gov::exec_legacy_content(
                    &gov::software_upgrade_proposal("t", "d", &plan),
                    "cosmos10d07y265gmmuvt4z0w9aw880jnsr700j6zn9kn",
                );
                let text = gov::any("/cosmos.gov.v1beta1.TextProposal", b"\x0a\x01t");
                gov::page(
                    &[
                        gov::v1_proposal(3, &[upgrade, legacy], 2, "t"),
                        gov::v1_proposal(4, &[text], 2, ""),
                    ],
                    b"\x00\x01",
                    2,
                )
            } else {
                let content = gov::software_upgrade_proposal("t", "d", &plan);
                gov::page(&[gov::v1beta1_proposal(3, &content, 2)], b"", 1)
            };
            edits::apply(&mut bytes, &edits);
            (bytes, if v1 { Gov::V1 } else { Gov::V1beta1 })
        })
}

fn check_page(message: &[u8], gov: Gov) -> Result<(), TestCaseError> {
    if let Ok(page) = decode_page(message, gov) {
        for proposed in &page.proposed {
            prop_assert!(proposed.id > 0);
            prop_assert!(!proposed.plan.name.is_empty());
            prop_assert!(proposed.plan.height > 0 && proposed.plan.height <= i64::MAX as u64);
        }
    }
    Ok(())
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        "[a-z0-9-]{0,12}",
        any::<i64>(),
        "\\PC{0,40}",
        prop::collection::vec(edits::edit(), 0..6),
    )
        .prop_map(|(name, height, info, edits)| {
            let mut bytes = response(&name, height, &info);
            edits::apply(&mut bytes, &edits);
            bytes
        })
}

fn check(message: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(Some(plan)) = decode_response(message) {
        prop_assert!(!plan.name.is_empty());
        prop_assert!(plan.height > 0 && plan.height <= i64::MAX as u64);
    }
    Ok(())
}

/// JSON of the shapes an RPC may answer: numbers, strings, nulls, arrays and objects where the
/// code and the value are expected.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[A-Za-z0-9+/=]{0,16}".prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_decode_or_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes)?;
    }

    #[test]
    fn a_mutated_answer_decodes_or_is_refused(bytes in mutated()) {
        check(&bytes)?;
    }

    #[test]
    fn any_abci_query_answer_is_a_message_or_an_error(
        code in prop::option::of(json_value()),
        value in prop::option::of(json_value()),
        log in json_value(),
    ) {
        let mut response = json!({"log": log});
        if let Some(code) = &code {
            response["code"] = code.clone();
        }
        if let Some(value) = &value {
            response["value"] = value.clone();
        }
        let answer = json!({"jsonrpc": "2.0", "id": -1, "result": {"response": response}});
        if abci_value(&answer).is_ok() {
            // Only code 0 (or none) and a string, null or no value are an answer.
            prop_assert!(code.as_ref().is_none_or(|c| c.as_u64() == Some(0)));
            prop_assert!(value.as_ref().is_none_or(|v| v.is_null() || v.is_string()));
        }
    }

    #[test]
    fn arbitrary_bytes_are_a_page_of_proposals_or_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        v1 in any::<bool>(),
    ) {
        check_page(&bytes, if v1 { Gov::V1 } else { Gov::V1beta1 })?;
    }

    #[test]
    fn a_mutated_page_of_proposals_decodes_or_is_refused((bytes, gov) in mutated_page()) {
        check_page(&bytes, gov)?;
    }

    #[test]
    fn any_text_is_base64_or_refused(text in "[A-Za-z0-9+/=]{0,24}|\\PC{0,24}") {
        if let Some(bytes) = base64_decode(&text) {
            prop_assert!(bytes.len() <= text.len() * 3 / 4);
        }
    }
}
