//! `status --json` of the fixtures: the exact output, the order of its keys, and each record's
//! optional keys.

use serde_json::{Value, json};

use super::super::json::UpgradeInfoV1;
use super::super::{Status, StatusV1, UpgradeInfo};
use super::{T0, empty, full};
use crate::upgrade::journal::Refusal;

fn json_of(status: &Status) -> String {
    StatusV1::from(status).to_json().unwrap()
}

/// The files hold what `status --json` prints: the JSON and a newline.
#[test]
fn json_of_a_full_status_is_version_1_exactly() {
    let expected = include_str!("full.json");
    assert_eq!(json_of(&full()) + "\n", expected);
}

#[test]
fn json_of_an_empty_home_has_every_key_null_or_empty() {
    let expected = include_str!("empty.json");
    assert_eq!(json_of(&empty()) + "\n", expected);
}

/// `version` comes first, then every object's keys sorted — the order the output had when it
/// went through a sorted map — whatever the status holds.
#[test]
fn json_keys_are_version_first_then_sorted() {
    for status in [full(), empty()] {
        let mut sorted: Value = serde_json::to_value(StatusV1::from(&status)).unwrap();
        assert_eq!(sorted["version"], json!(1));
        sorted.as_object_mut().unwrap().remove("version");
        let sorted = serde_json::to_string_pretty(&sorted).unwrap();
        let expected = format!("{{\n  \"version\": 1,{}", &sorted[1..]);
        assert_eq!(json_of(&status), expected);
    }
}

#[test]
fn upgrade_info_has_a_state_and_what_it_found() {
    let of = |u: UpgradeInfo| serde_json::to_value(UpgradeInfoV1::from(&u)).unwrap();
    assert_eq!(of(UpgradeInfo::Incomplete), json!({"state": "incomplete"}));
    assert_eq!(
        of(UpgradeInfo::Invalid {
            reason: "not JSON".into()
        }),
        json!({"state": "invalid", "reason": "not JSON"})
    );
    assert_eq!(
        of(UpgradeInfo::Valid {
            name: "v2".into(),
            height: 7
        }),
        json!({"state": "valid", "name": "v2", "height": 7})
    );
}

/// The refusal and a rolled-back last upgrade, which the full fixture does not have.
#[test]
fn json_of_a_refusal_and_a_rollback() {
    let mut status = full();
    let active = status.upgrade_in_progress.as_mut().unwrap();
    active.waiting = None;
    active.refused = Some(Refusal {
        reason: "no binary".into(),
        at_unix_ms: T0 + 5,
        inputs: "ab12".into(),
    });
    let last = status.last_upgrade.as_mut().unwrap();
    last.finished.rolled_back = true;
    last.finished.probation = false;
    last.finished.health = None;
    last.finished.probation_until_unix_ms = None;
    let value = serde_json::to_value(StatusV1::from(&status)).unwrap();
    assert_eq!(
        value["upgrade_in_progress"]["refused"],
        json!({"reason": "no binary", "at_unix_ms": T0 + 5, "inputs": "ab12"})
    );
    assert_eq!(value["upgrade_in_progress"].get("waiting"), None);
    let last = value["last_upgrade"].as_object().unwrap();
    assert_eq!(last["rolled_back"], json!(true));
    assert_eq!(last["probation"], json!(false));
    assert_eq!(last.get("health"), None);
    assert_eq!(last.get("probation_until_unix_ms"), None);
}

#[test]
fn total_leaves_out_the_health_entry() {
    let last = full().last_upgrade.unwrap();
    assert_eq!(last.total_ms, 15.625);
}
