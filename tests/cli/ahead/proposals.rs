//! Proposals in their voting period: shown as proposed and not prepared unless asked; on a
//! chain without gov v1 (SDK v0.45), the legacy `SoftwareUpgradeProposal` is read instead. A
//! plan the chain replaces or cancels while the node runs is said.

use serde_json::{Value, json};

use crate::harness::*;

use super::{T, chain_home, said, status, wait_next};

fn proposal(id: u64, name: &str, height: u64, legacy: bool) -> Value {
    json!({"id": id, "name": name, "height": height, "info": "", "title": format!("Upgrade {name}"),
        "legacy": legacy, "voting_end": now_unix() + 86_400})
}

/// The `upcoming` list once it holds `n` plans.
fn upcoming(home: &Home, n: usize) -> Vec<Value> {
    home.wait_for(&format!("{n} upcoming upgrades"), T, |h| {
        status(h)["upcoming"]
            .as_array()
            .is_some_and(|l| l.len() == n)
    });
    status(home)["upcoming"].as_array().unwrap().clone()
}

#[test]
fn proposals_in_voting_are_shown_as_proposed_and_not_prepared() {
    for gov_v1 in [true, false] {
        let home = chain_home(json!({"gov_v1": gov_v1}));
        home.proposals(&[
            proposal(7, "v3", 90_000, false),
            proposal(8, "v4", 95_000, true),
        ]);
        let run = home.run(&[]);
        let list = upcoming(&home, 2);
        for (entry, (id, name)) in list.iter().zip([(7, "v3"), (8, "v4")]) {
            assert_eq!(entry["source"], "proposal", "{entry}");
            assert_eq!(entry["proposal"], id, "{entry}");
            assert_eq!(entry["name"], name, "{entry}");
            assert_eq!(entry["ready"], Value::Null, "{entry}");
            let reason = entry["reason"].as_str().unwrap();
            assert!(
                reason.contains("WASMVISOR_PREPARE_PROPOSED=true"),
                "{reason}"
            );
        }
        assert!(
            status(&home)["next_upgrade"].is_null(),
            "a proposal is no next upgrade"
        );
        assert_eq!(
            said(&home, "is proposed (proposal 7"),
            1,
            "{}",
            home.last_log()
        );
        assert!(
            !home.root().join("upgrades/v3").exists(),
            "nothing was prepared"
        );
        let text = String::from_utf8_lossy(&home.output(&["status"]).stdout).into_owned();
        assert!(
            text.contains("upcoming             v3 at height 90000 (proposal 7)"),
            "{text}"
        );
        run.stop();
    }
}

#[test]
fn asked_to_prepare_proposals_a_proposed_plan_is_prepared_and_checked() {
    let mut home = chain_home(json!({}));
    home.set("WASMVISOR_PREPARE_PROPOSED", "true");
    home.proposals(&[proposal(7, "v3", 90_000, false)]);
    let run = home.run(&[]);
    home.wait_for("v3 not ready", T, |h| {
        status(h)["upcoming"][0]["ready"] == false
    });
    let reason = status(&home)["upcoming"][0]["reason"].clone();
    assert!(
        reason
            .as_str()
            .unwrap()
            .contains("DAEMON_ALLOW_DOWNLOAD_BINARIES"),
        "{reason}"
    );
    home.upgrade("v3", 2, json!({}));
    home.wait_for("v3 ready", T, |h| status(h)["upcoming"][0]["ready"] == true);
    run.stop();
}

#[test]
fn a_chain_plan_replaced_then_cancelled_is_said_and_no_longer_upcoming() {
    let home = chain_home(json!({}));
    home.chain(&[("v2", 100_000)]);
    let run = home.run(&[]);
    wait_next(&home, "v2 known", |n| n["name"] == "v2");
    home.chain(&[("v2b", 100_500)]);
    let next = wait_next(&home, "v2b known", |n| n["name"] == "v2b");
    assert_eq!(next["height"], 100_500);
    assert_eq!(
        said(
            &home,
            "the chain's upgrade plan \"v2\" at height 100000 was replaced by \"v2b\" at height 100500"
        ),
        1,
        "{}",
        home.last_log()
    );
    home.chain(&[]);
    wait_next(&home, "no plan", |n| n.is_null());
    assert_eq!(
        said(
            &home,
            "the chain's upgrade plan \"v2b\" at height 100500 was cancelled"
        ),
        1,
        "{}",
        home.last_log()
    );
    assert!(status(&home)["upcoming"].as_array().unwrap().is_empty());
    // The chain still runs past where nothing halts it.
    let height = home.height();
    home.wait_height("genesis", height + 5);
    run.stop();
}
