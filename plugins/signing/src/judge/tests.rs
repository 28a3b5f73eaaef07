use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn settings(pairs: &[(&str, &str)]) -> Settings {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::read(&owned).unwrap()
}

/// An RPC answering `/status` with `status` at `height` and `/commit?height=h` with `commit`
/// (its height set to h) for the heights in `heights`; it counts the requests.
struct Rpc {
    answers: HashMap<String, Vec<u8>>,
    requests: RefCell<Vec<String>>,
}

impl Rpc {
    fn new(mut status: Value, height: u64) -> Rpc {
        status["result"]["sync_info"]["latest_block_height"] = json!(height.to_string());
        let mut answers = HashMap::new();
        answers.insert("/status".to_string(), status.to_string().into_bytes());
        Rpc {
            answers,
            requests: RefCell::new(Vec::new()),
        }
    }

    fn commits(mut self, heights: impl IntoIterator<Item = u64>, commit: &Value) -> Rpc {
        for h in heights {
            let mut c = commit.clone();
            c["result"]["signed_header"]["commit"]["height"] = json!(h.to_string());
            self.answers
                .insert(format!("/commit?height={h}"), c.to_string().into_bytes());
        }
        self
    }

    fn judge(&self, s: &Settings, upgrade: u64) -> Verdict {
        s.judge(upgrade, |path| {
            self.requests.borrow_mut().push(path.to_string());
            self.answers
                .get(path)
                .cloned()
                .ok_or_else(|| format!("{path}: HTTP 500 height is not available"))
        })
    }
}

fn healthy(v: &Verdict) -> bool {
    matches!(v, Verdict::Healthy(_))
}

#[test]
fn each_cometbft_version_s_own_validator_is_found_in_its_commits() {
    for version in ["v0_34", "v0_37", "v0_38"] {
        let status = fixture(&format!("{version}_status.json"));
        let commit = fixture(&format!("{version}_commit.json"));
        let rpc = Rpc::new(status, 104).commits(100..=103, &commit);
        let v = rpc.judge(&settings(&[]), 100);
        assert!(healthy(&v), "{version}: {v:?}");
        // One /status, then the newest final commits until three signatures: 103, 102, 101.
        assert_eq!(
            rpc.requests.borrow().as_slice(),
            [
                "/status",
                "/commit?height=103",
                "/commit?height=102",
                "/commit?height=101"
            ],
            "{version}"
        );
    }
}

#[test]
fn on_a_real_mainnet_commit_a_nil_vote_signs_and_an_absent_validator_does_not() {
    let commit = fixture("cosmoshub-4_commit_9399573.json");
    let mut status = fixture("v0_34_status.json");
    // A validator that voted nil in block 9,399,573 (x/slashing counts it as signed).
    status["result"]["validator_info"]["address"] =
        json!("AC2D56057CD84765E6FBE318979093E8E44AA18F");
    let rpc = Rpc::new(status.clone(), 9_399_581).commits(9_399_570..=9_399_580, &commit);
    assert!(healthy(&rpc.judge(&settings(&[]), 9_399_570)));
    // One whose vote is missing (the absent entry names no address): never signed.
    status["result"]["validator_info"]["address"] =
        json!("00000000000000000000000000000000000000AB");
    let rpc = Rpc::new(status, 9_399_581).commits(9_399_570..=9_399_580, &commit);
    let v = rpc.judge(&settings(&[("window", "10")]), 9_399_570);
    let Verdict::Unhealthy(why) = v else {
        panic!("{v:?}")
    };
    assert!(
        why.contains("signed none of the 10 commits 9399571..9399580"),
        "{why}"
    );
    assert!(
        why.contains("00000000000000000000000000000000000000AB"),
        "{why}"
    );
    // The neutron-1 commit (CometBFT 0.38), its first validator signed, configured as
    // lower-case hex.
    let neutron = fixture("neutron-1_commit_22488719.json");
    let rpc = Rpc::new(fixture("v0_38_status.json"), 41).commits(30..=40, &neutron);
    let s = settings(&[("address", "6dffc810758bc3ee69e154e6a6adb260adc79410")]);
    assert!(healthy(&rpc.judge(&s, 30)));
}

#[test]
fn pending_until_the_window_passes_without_a_signature_then_unhealthy() {
    let commit = fixture("cosmoshub-4_commit_9399573.json");
    let mut status = fixture("v0_34_status.json");
    status["result"]["validator_info"]["address"] =
        json!("00000000000000000000000000000000000000AB");
    let s = settings(&[("window", "5")]);
    // 4 final commits after the upgrade height (101..104): not yet a window.
    let rpc = Rpc::new(status.clone(), 105).commits(100..=104, &commit);
    let v = rpc.judge(&s, 100);
    assert!(
        matches!(&v, Verdict::Pending(t) if t.contains("0 of 3 signatures in the commits 101..104")),
        "{v:?}"
    );
    // 5: unhealthy, judged on the five after the upgrade height.
    let rpc = Rpc::new(status.clone(), 106).commits(100..=105, &commit);
    assert!(matches!(rpc.judge(&s, 100), Verdict::Unhealthy(_)));
    // Later calls look at the newest window only: at most 1 + window requests.
    let rpc = Rpc::new(status, 300).commits(100..=299, &commit);
    assert!(matches!(rpc.judge(&s, 100), Verdict::Unhealthy(_)));
    assert_eq!(rpc.requests.borrow().len(), 6);
}

#[test]
fn a_chain_that_does_not_advance_is_pending_never_unhealthy() {
    let status = fixture("v0_38_status.json");
    // Halted at the upgrade height: the node reports the height before it, the height itself
    // (decided before the halt), or the block after it whose commit is not final, for as long
    // as two thirds of the power is not back.
    for height in [99, 100, 101] {
        let rpc = Rpc::new(status.clone(), height);
        let v = rpc.judge(&settings(&[("window", "1"), ("blocks", "1")]), 100);
        assert!(
            matches!(&v, Verdict::Pending(t) if t.contains("two thirds")),
            "{v:?}"
        );
        assert_eq!(
            rpc.requests.borrow().len(),
            1,
            "nothing but /status is asked"
        );
    }
}

#[test]
fn a_commit_that_cannot_be_read_keeps_it_pending_rather_than_unhealthy() {
    let commit = fixture("cosmoshub-4_commit_9399573.json");
    let mut status = fixture("v0_34_status.json");
    status["result"]["validator_info"]["address"] =
        json!("00000000000000000000000000000000000000AB");
    // Height 102's commit is missing (pruned, or the RPC failed once).
    let rpc = Rpc::new(status, 107).commits([101, 103, 104, 105, 106], &commit);
    let v = rpc.judge(&settings(&[("window", "5")]), 100);
    assert!(
        matches!(&v, Verdict::Pending(t) if t.contains("could not be read")),
        "{v:?}"
    );
    // A commit that is not final yet, or of another height, is not read as one.
    let mut early = fixture("v0_38_commit.json");
    early["result"]["canonical"] = json!(false);
    assert!(
        signed_by(
            early.to_string().as_bytes(),
            10,
            "2DD9F44FD9067555C322243C3C913BA7B51D2BE0"
        )
        .is_err()
    );
    let other = fixture("v0_38_commit.json");
    assert!(
        signed_by(
            other.to_string().as_bytes(),
            11,
            "2DD9F44FD9067555C322243C3C913BA7B51D2BE0"
        )
        .is_err()
    );
}

#[test]
fn outside_the_active_set_it_is_healthy_unless_required_to_be_active() {
    let mut status = fixture("v0_37_status.json");
    status["result"]["validator_info"]["voting_power"] = json!("0");
    let rpc = Rpc::new(status.clone(), 90);
    let v = rpc.judge(&settings(&[]), 100);
    assert!(
        matches!(&v, Verdict::Healthy(t) if t.contains("not in the active set")),
        "{v:?}"
    );
    // Required active, it is judged by its signatures: none in the window, unhealthy.
    let mut commit = fixture("v0_37_commit.json");
    commit["result"]["signed_header"]["commit"]["signatures"] = json!([
        {"block_id_flag": 1, "validator_address": "", "timestamp": "0001-01-01T00:00:00Z", "signature": null}
    ]);
    let rpc = Rpc::new(status, 122).commits(101..=121, &commit);
    let v = rpc.judge(&settings(&[("require-active", "true")]), 100);
    assert!(matches!(v, Verdict::Unhealthy(_)), "{v:?}");
}

#[test]
fn the_sdk_gateway_s_flag_names_are_read_too() {
    let mut commit = fixture("v0_38_commit.json");
    let sig = &mut commit["result"]["signed_header"]["commit"]["signatures"][0];
    sig["block_id_flag"] = json!("BLOCK_ID_FLAG_COMMIT");
    let addr = "2DD9F44FD9067555C322243C3C913BA7B51D2BE0";
    assert_eq!(signed_by(commit.to_string().as_bytes(), 10, addr), Ok(true));
    commit["result"]["signed_header"]["commit"]["signatures"][0]["block_id_flag"] =
        json!("BLOCK_ID_FLAG_ABSENT");
    assert_eq!(
        signed_by(commit.to_string().as_bytes(), 10, addr),
        Ok(false)
    );
    // An absent vote is not a signature even where a writer kept the address.
    commit["result"]["signed_header"]["commit"]["signatures"][0]["block_id_flag"] = json!(1);
    assert_eq!(
        signed_by(commit.to_string().as_bytes(), 10, addr),
        Ok(false)
    );
}

#[test]
fn settings_are_checked_with_what_is_wrong() {
    let read = |pairs: &[(&str, &str)]| {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::read(&owned).unwrap_err()
    };
    assert!(read(&[("blocks", "0")]).contains("blocks"));
    assert!(read(&[("window", "twenty")]).contains("window"));
    assert!(read(&[("blocks", "30")]).contains("exceeds window"));
    assert!(read(&[("require-active", "yes")]).contains("require-active"));
    assert!(read(&[("address", "cosmosvaloper1xyz")]).contains("consensus address"));
}

#[test]
fn the_votes_for_the_upgrade_height_itself_were_cast_before_the_halt_and_do_not_count() {
    let status = fixture("v0_38_status.json");
    let signed = fixture("v0_38_commit.json");
    let mut absent = signed.clone();
    absent["result"]["signed_header"]["commit"]["signatures"][0] = json!(
        {"block_id_flag": 1, "validator_address": "", "timestamp": "0001-01-01T00:00:00Z", "signature": null}
    );
    // Signed at 100 (the old binary, before it failed to execute it), absent since.
    let rpc = Rpc::new(status, 104)
        .commits([100], &signed)
        .commits(101..=103, &absent);
    let v = rpc.judge(&settings(&[("blocks", "1"), ("window", "5")]), 100);
    assert!(
        matches!(&v, Verdict::Pending(t) if t.contains("0 of 1 signatures in the commits 101..103")),
        "{v:?}"
    );
    assert!(
        !rpc.requests
            .borrow()
            .contains(&"/commit?height=100".to_string())
    );
}
