//! Property tests of the plan files: whatever bytes the node (or anyone) leaves in
//! upgrade-info.json or the batch file, reading them never panics and a refusal says why.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

/// JSON values of every shape, a few levels deep.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field that is right, wrong in type or value, or missing.
fn field(right: BoxedStrategy<Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => right.prop_map(Some),
        1 => any_json().prop_map(Some),
        1 => Just(None),
    ]
}

/// Objects shaped like a plan, each field right, wrong or missing.
fn plan_like() -> impl Strategy<Value = Value> {
    let name = prop_oneof!["[a-z0-9_.-]{1,16}", "\\PC{0,16}"]
        .prop_map(Value::String)
        .boxed();
    let height = prop_oneof![
        any::<u64>().prop_map(|h| json!(h)),
        any::<u64>().prop_map(|h| json!(h.to_string())),
    ]
    .boxed();
    let time = prop_oneof![Just(json!("0001-01-01T00:00:00Z")), Just(Value::Null)].boxed();
    let info = prop_oneof![".{0,32}".prop_map(Value::String), any_json()].boxed();
    (field(name), field(height), field(time), field(info)).prop_map(|(n, h, t, i)| {
        let mut m = Map::new();
        for (k, v) in [("name", n), ("height", h), ("time", t), ("info", i)] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    })
}

fn valid_plan() -> impl Strategy<Value = Plan> {
    ("[a-zA-Z0-9_.-]{1,16}", 1..u64::MAX, ".{0,32}").prop_map(|(name, height, info)| Plan {
        name,
        height,
        info,
    })
}

proptest! {
    #[test]
    fn any_bytes_read_without_panicking_and_a_refusal_says_why(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        if let Read::Invalid(reason) = parse(&bytes) {
            prop_assert!(!reason.is_empty());
        }
        if let Err(reason) = parse_batch(&bytes) {
            prop_assert!(!reason.to_string().is_empty());
        }
    }

    #[test]
    fn a_plan_is_taken_only_with_a_name_and_a_height(value in plan_like()) {
        match parse(value.to_string().as_bytes()) {
            Read::Valid(plan) => {
                prop_assert!(!plan.name.trim().is_empty());
                prop_assert!(plan.height > 0);
                prop_assert_eq!(value["name"].as_str(), Some(plan.name.as_str()));
                // What wasmvisor writes back (the record in the upgrade folder) reads the same.
                prop_assert_eq!(parse(plan.to_json().as_bytes()), Read::Valid(plan.clone()));
            }
            // The reason names the field at fault (or the shape).
            Read::Invalid(reason) => prop_assert!(
                ["\"name\"", "\"height\"", "\"time\"", "\"info\""]
                    .iter()
                    .any(|f| reason.contains(f)),
                "{}", reason
            ),
            other => prop_assert!(false, "{:?} for {}", other, value),
        }
    }

    #[test]
    fn a_plan_cut_short_is_not_yet_written(plan in valid_plan(), cut in any::<prop::sample::Index>()) {
        // x/upgrade truncates, then writes: a reader may see any prefix.
        let full = plan.to_json();
        let at = cut.index(full.len());
        let prefix = &full.as_bytes()[..at];
        prop_assert_eq!(parse(prefix), Read::NotYet, "{:?}", String::from_utf8_lossy(prefix));
    }

    #[test]
    fn batches_read_back_sorted_by_height(plans in prop::collection::vec(valid_plan(), 0..6)) {
        let mut sorted = plans.clone();
        sorted.sort_by_key(|p| p.height);
        match parse_batch(batch_to_json(&plans).as_bytes()) {
            Ok(read) => prop_assert_eq!(read, sorted),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    #[test]
    fn a_batch_with_one_bad_entry_is_refused_naming_it(
        plans in prop::collection::vec(valid_plan(), 0..4),
        bad in any_json().prop_filter("not a plan", |v| plan_from_value(v).is_err()),
        at in any::<prop::sample::Index>(),
    ) {
        let mut items: Vec<Value> = plans
            .iter()
            .map(|p| serde_json::from_str(&p.to_json()).unwrap())
            .collect();
        let i = at.index(items.len() + 1);
        items.insert(i, bad);
        let err = parse_batch(Value::Array(items).to_string().as_bytes()).unwrap_err();
        prop_assert!(matches!(err, BatchParseError::Entry { index, .. } if index == i), "{:?}", err);
        prop_assert!(err.to_string().starts_with(&format!("entry {i}: ")), "{}", err);
    }
}
