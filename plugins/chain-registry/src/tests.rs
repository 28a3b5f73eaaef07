//! Registry files in both layouts, excerpts of real ones (osmosis/versions.json; juno/chain.json
//! before the versions moved out of it).

use serde_json::Value;

use super::find;

fn fixture(name: &str) -> Value {
    let text = match name {
        "osmosis" => include_str!("../fixtures/osmosis-versions.json"),
        _ => include_str!("../fixtures/juno-chain.json"),
    };
    serde_json::from_str(text).unwrap()
}

#[test]
fn versions_json_as_the_registry_keeps_it_now() {
    let doc = fixture("osmosis");
    assert_eq!(
        find(&doc, "v31", 47626000, "linux", "amd64").unwrap(),
        "https://github.com/osmosis-labs/osmosis/releases/download/v31.0.0/osmosisd-31.0.0-linux-amd64?checksum=d435408b845e79a2594594a315d9d22797fdbb7871a5936df68f51f0df557957"
    );
    // The plan's name in another case (upgrade names are often capitalised on chain).
    assert!(
        find(&doc, "V29", 37245000, "linux", "arm64")
            .unwrap()
            .contains("29.0.0-linux-arm64")
    );
    assert!(
        find(&doc, "v32", 1, "linux", "amd64")
            .unwrap_err()
            .contains("no version named")
    );
    assert!(
        find(&doc, "v31", 1, "darwin", "arm64")
            .unwrap_err()
            .contains("darwin/arm64")
    );
}

#[test]
fn chain_json_as_the_registry_kept_it_before() {
    let doc = fixture("juno");
    assert_eq!(
        find(&doc, "v24", 19022500, "linux", "amd64").unwrap(),
        "https://github.com/CosmosContracts/juno/releases/download/v24.0.0/junod"
    );
    assert!(
        find(
            &serde_json::json!({"chain_name": "x"}),
            "v1",
            1,
            "linux",
            "amd64"
        )
        .unwrap_err()
        .contains("versions")
    );
}

#[test]
fn the_entry_at_the_plans_height_wins_among_namesakes() {
    let doc = serde_json::json!({"versions": [
        {"name": "v2", "height": 100, "binaries": {"linux/amd64": "https://a/old"}},
        {"name": "v2", "height": 200, "binaries": {"linux/amd64": "https://a/new"}},
    ]});
    assert_eq!(
        find(&doc, "v2", 200, "linux", "amd64").unwrap(),
        "https://a/new"
    );
    assert_eq!(
        find(&doc, "v2", 7, "linux", "amd64").unwrap(),
        "https://a/old"
    );
}
