//! The chain's plan, known days ahead: prepared with the configured plugins, preflighted, shown
//! in `status`; a plan the chain moves, replaces or cancels; a node whose RPC and gRPC are off.

use serde_json::json;

use crate::harness::serve::Server;
use crate::harness::*;

use super::{T, chain_home, downloading_v2, said, served, status, wait_next};

/// The chain's plan for v2 at `height`, its binary at `url` (a binaries map, as proposals
/// publish it).
fn chain_plan(home: &Home, height: u64, url: &str) {
    plan_with_binary(home, "v2", height, url);
}

#[test]
fn a_chain_plan_is_prepared_and_preflighted_ahead_so_its_halt_fetches_nothing() {
    let server = Server::start();
    let (home, url) = downloading_v2(&server);
    // Governance passed v2 for a height far ahead.
    chain_plan(&home, 100_000, &url);
    let run = home.run(&[]);
    let next = wait_next(&home, "v2 ready", |n| n["ready"] == true);
    assert_eq!(next["name"], "v2");
    assert_eq!(next["source"], "chain");
    assert_eq!(next["height"], 100_000);
    assert_eq!(next["binary"], "upgrades/v2/bin/simd");
    assert_eq!(next["preflight"], "v2\n", "what `simd version` printed");
    assert_eq!(next["reason"], serde_json::Value::Null);
    let staged = std::fs::read(home.root().join("upgrades/v2/bin/simd")).unwrap();
    assert_eq!(next["sha256"], sha256(&staged));
    assert_eq!(
        home.current(),
        "genesis",
        "preparing never touches `current`"
    );
    let text = String::from_utf8_lossy(&home.output(&["status"]).stdout).into_owned();
    assert!(
        text.contains("next upgrade         v2 at height 100000 (chain)")
            && text.contains(": ready"),
        "{text}"
    );
    assert!(text.contains("next preflight       v2"), "{text}");

    // The chain moves the plan near: the halt comes, and the upgrade only switches.
    let near = home.height() + 30;
    chain_plan(&home, near, &url);
    home.wait_height("v2", near + 2);
    let phases: Vec<String> = status(&home)["last_upgrade"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap().to_string())
        .collect();
    assert!(!phases.iter().any(|p| p == "fetch"), "{phases:?}");
    assert_eq!(
        said(
            &home,
            "prepared ahead of the halt: upgrades/v2/bin/simd downloaded, verified and staged"
        ),
        1,
        "{}",
        home.last_log()
    );
    assert_eq!(
        said(
            &home,
            &format!("upgrade \"v2\" moved from height 100000 to {near}")
        ),
        1
    );
    assert_eq!(
        said(&home, "the binary passed its preflight ahead of the halt"),
        1
    );
    let downloads = server
        .log()
        .iter()
        .filter(|l| l.contains("/v2.tar.gz"))
        .count();
    assert_eq!(downloads, 1, "downloaded once, ahead: {:?}", server.log());
    run.stop();
}

#[test]
fn with_downloads_off_an_unstaged_plan_is_not_ready_until_a_binary_is_staged_by_hand() {
    let home = chain_home(json!({}));
    home.chain(&[("v2", 100_000)]);
    let run = home.run(&[]);
    let next = wait_next(&home, "v2 not ready", |n| n["ready"] == false);
    let reason = next["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("DAEMON_ALLOW_DOWNLOAD_BINARIES"),
        "{reason}"
    );
    // Said once, not at every poll (the poll runs every 200 ms).
    home.wait_for("more polls", T, |h| h.events_of("grpc-query").len() >= 10);
    assert_eq!(said(&home, "is NOT READY"), 1, "{}", home.last_log());

    // The operator stages it by hand: noticed, preflighted, ready.
    home.upgrade("v2", 2, json!({}));
    let next = wait_next(&home, "v2 ready", |n| n["ready"] == true);
    assert_eq!(next["preflight"], "v2\n");
    assert_eq!(said(&home, ") is ready"), 1, "{}", home.last_log());
    assert_eq!(home.current(), "genesis");
    run.stop();
}

#[test]
fn a_node_whose_rpc_and_grpc_are_off_is_said_once_and_nothing_else_changes() {
    let mut home = Home::new();
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{}", free_port()))
        .set(
            "WASMVISOR_RPC_ADDRESS",
            &format!("http://127.0.0.1:{}", free_port()),
        )
        .set("WASMVISOR_PLAN_POLL", "100ms");
    let run = home.run(&[]);
    home.wait_for("the warning", T, |h| {
        said(h, "cannot learn the next upgrades from the chain") == 1
    });
    // Many more polls fail; the log does not say it again, and the node runs on.
    let height = home.height();
    home.wait_height("genesis", height + 40);
    assert_eq!(
        said(&home, "cannot learn the next upgrades from the chain"),
        1,
        "{}",
        home.last_log()
    );
    assert!(
        home.last_log().contains("WASMVISOR_PLAN_POLL=off"),
        "{}",
        home.last_log()
    );
    let next = &status(&home)["next_upgrade"];
    assert!(next.is_null(), "{next}");
    run.stop();
}

#[test]
fn with_the_poll_off_the_chain_is_never_asked_and_manual_plans_are_still_checked() {
    let mut home = chain_home(json!({}));
    home.set("WASMVISOR_PLAN_POLL", "off");
    home.chain(&[("v2", 100_000)]);
    home.upgrade("v3", 2, json!({}));
    let out = home.output(&[
        "add-upgrade",
        "v3",
        &home
            .root()
            .join("upgrades/v3/bin/simd")
            .display()
            .to_string(),
        "--upgrade-height",
        "90000",
        "--force",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = home.run(&[]);
    let next = wait_next(&home, "v3 ready", |n| n["ready"] == true);
    assert_eq!(
        (next["name"].as_str(), next["source"].as_str()),
        (Some("v3"), Some("manual"))
    );
    assert!(
        home.events_of("grpc-query").is_empty(),
        "the chain was asked"
    );
    assert_eq!(status(&home)["upcoming"].as_array().unwrap().len(), 1);
    run.stop();
}

#[test]
fn a_plan_passed_again_with_other_binaries_is_staged_again_its_old_binary_set_aside() {
    let server = Server::start();
    let mut home = chain_home(json!({}));
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let release = |version: &str| {
        sim_archive(
            &home,
            json!({"version": version, "ordinal": 2, "handles": "v2"}),
        )
    };
    let first = served(&server, "/v2.0.0.tar.gz", release("v2.0.0"));
    let patched = served(&server, "/v2.0.1.tar.gz", release("v2.0.1"));
    chain_plan(&home, 100_000, &first);
    let run = home.run(&[]);
    wait_next(&home, "v2.0.0 staged and ready", |n| {
        n["ready"] == true && n["preflight"] == "v2.0.0\n"
    });
    // Governance passes v2 again, same name and height, with the patched release.
    chain_plan(&home, 100_000, &patched);
    wait_next(&home, "v2.0.1 staged and ready", |n| {
        n["ready"] == true && n["preflight"] == "v2.0.1\n"
    });
    let aside = home.root().join("upgrades/v2/.wasmvisor-replaced");
    assert_eq!(
        std::fs::read_to_string(aside.join("bin/sim.json"))
            .map(|c| c.contains("v2.0.0"))
            .ok(),
        Some(true),
        "what came with the old binary went aside with it"
    );
    assert!(aside.join("simd").exists());
    let log = home.last_log();
    assert_eq!(said(&home, "has new info (chain)"), 1, "{log}");
    assert_eq!(
        said(
            &home,
            "was for other plan info; moved to upgrades/v2/.wasmvisor-replaced/simd"
        ),
        1,
        "{log}"
    );
    run.stop();

    // A binary the operator puts there is theirs: the plan changing again leaves it.
    home.upgrade("v2", 2, json!({"version": "mine"}));
    chain_plan(&home, 100_000, &first);
    let run = home.run(&[]);
    wait_next(&home, "the operator's binary ready", |n| {
        n["ready"] == true && n["preflight"] == "mine\n"
    });
    assert!(said(&home, "was replaced by hand since wasmvisor staged it") == 1);
    run.stop();
    let downloads = server
        .log()
        .iter()
        .filter(|l| l.contains(".tar.gz"))
        .count();
    assert_eq!(downloads, 2, "{:?}", server.log());
}

#[test]
fn a_plan_at_a_skipped_height_is_left_out_and_never_prepared() {
    let server = Server::start();
    let (home, url) = downloading_v2(&server);
    chain_plan(&home, 100_000, &url);
    let run = home.run(&["--unsafe-skip-upgrades", "100000"]);
    home.wait_for("more polls", T, |h| h.events_of("grpc-query").len() >= 10);
    assert_eq!(
        said(
            &home,
            "upgrade \"v2\" at height 100000 (chain) is left out: its height is in --unsafe-skip-upgrades"
        ),
        1,
        "{}",
        home.last_log()
    );
    let now = status(&home);
    assert!(now["next_upgrade"].is_null(), "{now}");
    assert!(!home.root().join("upgrades/v2").exists());
    assert!(server.log().is_empty(), "{:?}", server.log());
    run.stop();
}
