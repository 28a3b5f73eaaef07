//! The resolver chain in a real upgrade: 0.1 beside 0.2 plugins, a fallback's binary and a
//! policy's veto, `not-before`, and who judges a plan no resolver gave a binary.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Home, now_unix, sim_archive};

use super::{entry, stderr, write_plugins};

#[test]
fn a_0_1_plugin_runs_beside_0_2_ones_in_a_real_upgrade() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}",
            entry(
                "legacy",
                "wasmvisor-fixture-legacy",
                "config = { deny = \"v9\" }"
            )
        ),
    );
    let out = home.output(&["plugin", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.lines()
            .any(|l| l.contains("cosmovisor") && l.contains("wasmvisor:plugin@0.2.0")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("legacy") && l.contains("wasmvisor:plugin@0.1.0")),
        "{text}"
    );

    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let done = run.stop();
    assert!(
        done.stderr.contains("legacy 0.1 policy asked about v2"),
        "{}",
        done.stderr
    );
    assert_eq!(home.history()[1].0, "v2");
}

#[test]
fn a_fallback_resolver_supplies_the_binary_and_a_policy_veto_stays_a_veto() {
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    // The plan carries no binaries map: the bundled resolver has nothing to offer.
    home.chain(&[("v2", 3)]);
    let archive = home.path.join("mirror-v2.tar.gz");
    std::fs::write(
        &archive,
        sim_archive(
            &home,
            json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
        ),
    )
    .unwrap();
    let fallback = entry(
        "mirror",
        "wasmvisor-fixture-probe",
        &format!(
            "config = {{ mode = \"fallback\", url = \"file://{}\" }}",
            archive.display()
        ),
    );
    write_plugins(
        &home,
        &format!("[[resolver]]\npath = \"bundled:cosmovisor\"\n{fallback}"),
    );
    let plan = home.plan_file("v2");
    let (code, answer, err) = home.plugin_call("resolver", "mirror", &plan);
    assert_eq!(code, Some(0), "{answer} {err}");
    assert_eq!(answer["decision"], "fetch", "{answer}");
    assert_eq!(answer["decided_by"], "mirror", "{answer}");
    assert_eq!(answer["answers"][0]["plugin"], "cosmovisor", "{answer}");
    assert_eq!(answer["answers"][0]["decision"], "unresolved", "{answer}");
    assert!(
        answer["answers"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("info is empty"),
        "{answer}"
    );

    // Asked alone, the bundled resolver's "no binary" is its own, and says no in the status.
    let (code, answer, _) = home.plugin_call("resolver", "cosmovisor", &plan);
    assert_eq!(code, Some(3), "{answer}");
    assert_eq!(answer["decided_by"], "cosmovisor", "{answer}");

    // The mirror supplies the binary in a real upgrade.
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();

    // A policy after the mirror vetoes: the refusal is the policy's, and nothing runs.
    let home = Home::new();
    home.chain(&[("v2", 3)]);
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{fallback}{}",
            entry(
                "policy",
                "wasmvisor-plugin-template",
                "config = { deny = \"v2\" }"
            )
        ),
    );
    let plan = home.plan_file("v2");
    let (code, answer, err) = home.plugin_call("resolver", "policy", &plan);
    assert_eq!(code, Some(3), "{answer} {err}");
    assert_eq!(answer["decision"], "refuse", "{answer}");
    assert_eq!(answer["decided_by"], "policy", "{answer}");
    assert_eq!(answer["answers"].as_array().unwrap().len(), 3, "{answer}");
}

#[test]
fn not_before_holds_the_switch_with_the_node_halted_until_the_time() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    // Far enough ahead that the node halts and the switch is plainly held back.
    let at = now_unix() + 6;
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}",
            entry(
                "window",
                "wasmvisor-fixture-probe",
                &format!(
                    "config = {{ mode = \"not-before\", at = {at}, reason = \"maintenance window\" }}"
                )
            )
        ),
    );
    let run = home.run(&[]);
    home.wait_for("the switch held back", Duration::from_secs(60), |h| {
        let out = h.output(&["status"]);
        String::from_utf8_lossy(&out.stdout).contains("stays halted until")
    });
    let status = String::from_utf8_lossy(&home.output(&["status"]).stdout).into_owned();
    assert!(
        status.contains("window") && status.contains("maintenance window"),
        "{status}"
    );
    let json: Value = serde_json::from_slice(&home.output(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        json["upgrade_in_progress"]["waiting"]["until_unix"], at,
        "{json}"
    );
    assert_eq!(home.current(), "genesis", "nothing switched while waiting");

    // Stopped while it waits: the wait is still what `status` shows, and a restart asks the
    // resolvers again, who defer again until the same time.
    let stopped = run.stop();
    // No node ran: a stop by SIGTERM ends supervision with 128 + 15.
    assert_eq!(stopped.code(), 143, "{}", stopped.stderr);
    let status = String::from_utf8_lossy(&home.output(&["status"]).stdout).into_owned();
    assert!(status.contains("stays halted until"), "{status}");
    assert_eq!(home.current(), "genesis");
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    assert!(
        now_unix() >= at,
        "the upgraded node ran before the time the resolver named"
    );
    let done = run.stop();
    assert!(done.stderr.contains("the switch waits"), "{}", done.stderr);
    let journal = home.journal();
    let phases: Vec<&str> = journal["last"]["phases"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["phase"].as_str()).collect())
        .unwrap_or_default();
    assert!(phases.contains(&"wait"), "{journal}");
}

#[test]
fn a_policy_given_no_binary_refuses_so_nothing_after_it_goes_unjudged() {
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let plan = home.plan_file("v2");
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}{}",
            entry(
                "allowlist",
                "wasmvisor-plugin-allowlist",
                &format!("config = {{ sha256 = \"{}\" }}", "a".repeat(64))
            ),
            entry(
                "late-mirror",
                "wasmvisor-fixture-probe",
                "config = { mode = \"fallback\", url = \"file:///nowhere\" }"
            ),
        ),
    );
    let (code, answer, err) = home.plugin_call("resolver", "late-mirror", &plan);
    assert_eq!(code, Some(3), "{answer} {err}");
    assert_eq!(answer["decided_by"], "allowlist", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("allowlist: no binary to judge"),
        "{answer}"
    );
    assert_eq!(
        answer["answers"].as_array().unwrap().len(),
        2,
        "the veto ends the chain: {answer}"
    );
}

#[test]
fn a_deferral_that_passed_while_the_upgrade_prepared_is_asked_again() {
    let mut home = Home::new();
    // The resolvers are asked when the halt is detected; the delay then outlasts the deferral.
    home.set("DAEMON_RESTART_DELAY", "6s");
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let at = now_unix() + 3;
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}",
            entry(
                "window",
                "wasmvisor-fixture-probe",
                &format!("config = {{ mode = \"not-before\", at = {at}, reason = \"soon\" }}")
            )
        ),
    );
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let done = run.stop();
    let answers: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.contains("resolver answered") && l.contains("plugin=window"))
        .collect();
    assert_eq!(
        answers.len(),
        2,
        "asked once more after the time passed: {answers:#?}"
    );
    assert!(answers[0].contains("not before"), "{}", answers[0]);
    assert!(
        answers[1].contains("use the staged binary"),
        "{}",
        answers[1]
    );
    // Nothing waited: the time had passed by then.
    assert!(!done.stderr.contains("the switch waits"), "{}", done.stderr);
}

/// A policy that lets the decision in force through did not choose the binary: `decided_by`
/// names the resolver that did.
#[test]
fn a_policy_that_passes_the_binary_on_is_not_the_one_that_chose_it() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}",
            entry(
                "policy",
                "wasmvisor-plugin-template",
                "config = { deny = \"v9\" }"
            )
        ),
    );
    let plan = home.plan_file("v2");
    let (code, answer, err) = home.plugin_call("resolver", "policy", &plan);
    assert_eq!(code, Some(0), "{answer} {err}");
    assert_eq!(answer["decision"], "use-staged", "{answer}");
    assert_eq!(answer["decided_by"], "cosmovisor", "{answer}");
    assert_eq!(answer["answers"][1]["plugin"], "policy", "{answer}");
    assert_eq!(answer["answers"][1]["decision"], "use-staged", "{answer}");
}

/// The bundled resolver gives the URL's checksum to the policies after it, whatever form the
/// plan wrote it in: a typed digest, a bare one, a checksum file. An allowlist policy that reads
/// `artifact.checksum` lets the listed binary through and refuses another.
#[test]
fn policies_see_the_checksum_the_plan_gave_in_any_form() {
    let server = crate::harness::serve::Server::start();
    let digest = "3a".repeat(32);
    server.put(
        "/SHA256SUMS",
        format!(
            "{digest}  simd-v2.tar.gz\n{}  other.tar.gz\n",
            "0b".repeat(32)
        )
        .into_bytes(),
    );
    let forms = [
        format!("https://example.invalid/simd-v2.tar.gz?checksum=sha256:{digest}"),
        format!("https://example.invalid/simd-v2.tar.gz?checksum={digest}"),
        format!(
            "https://example.invalid/simd-v2.tar.gz?checksum=file:{}",
            server.url("/SHA256SUMS")
        ),
    ];
    for url in forms {
        let mut home = Home::new();
        home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
        let info = json!({"binaries": {crate::harness::platform(): url}}).to_string();
        let plan = home.path.join("plan.json");
        std::fs::write(
            &plan,
            json!({"name": "v2", "height": 3, "info": info}).to_string(),
        )
        .unwrap();
        for (listed, code) in [(digest.clone(), 0), ("c4".repeat(32), 3)] {
            write_plugins(
                &home,
                &format!(
                    "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}",
                    entry(
                        "allowlist",
                        "wasmvisor-plugin-allowlist",
                        &format!("config = {{ sha256 = \"{listed}\" }}")
                    )
                ),
            );
            let (got, answer, err) = home.plugin_call("resolver", "allowlist", &plan);
            assert_eq!(got, Some(code), "{url}: {answer} {err}");
            assert_eq!(
                answer["answers"][0]["artifacts"][0]["checksum"],
                format!("sha256:{digest}"),
                "{url}: {answer}"
            );
        }
    }
}
