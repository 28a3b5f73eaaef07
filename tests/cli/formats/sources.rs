//! Where the binary and the plan come from: a `file://` URL on this host, the folder a refusal
//! names, the chain's plan over gRPC or ABCI query, and the chain registry's two layouts.

use serde_json::json;

use crate::harness::serve::Server;
use crate::harness::*;

use super::{T, err, home, installed, prepare, standalone};

#[test]
fn a_binary_already_on_this_host_is_read_from_a_file_url() {
    let home = home();
    let binary = standalone(&home, "v2");
    let local = home.path.join("downloads/gaiad v2");
    std::fs::create_dir_all(local.parent().unwrap()).unwrap();
    std::fs::write(&local, &binary).unwrap();
    let escaped = local.display().to_string().replace(' ', "%20");
    for url in [
        format!("file://{escaped}?checksum=sha256:{}", sha256(&binary)),
        format!("file://{escaped}"),
    ] {
        let out = prepare(&home, &url);
        assert!(out.status.success(), "{url}: {}", err(&out));
        assert_eq!(installed(&home), binary);
    }
    let out = prepare(
        &home,
        &format!("file://{escaped}?checksum=sha256:{}", "0".repeat(64)),
    );
    assert!(err(&out).contains("checksum mismatch"), "{}", err(&out));
    let out = prepare(&home, "file:///nonexistent/gaiad");
    assert!(err(&out).contains("/nonexistent/gaiad"), "{}", err(&out));
}

#[test]
fn a_refusal_names_the_folder_wasmvisor_really_looks_in() {
    let home = Home::new();
    let plan = home.path.join("plan.json");
    std::fs::write(
        &plan,
        json!({"name": "V2-Upgrade", "height": 3}).to_string(),
    )
    .unwrap();
    let out = home.output(&["prepare-upgrade", "--plan", plan.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        err(&out).contains("upgrades/v2-upgrade/bin/simd"),
        "{}",
        err(&out)
    );
}

#[test]
fn prepare_upgrade_asks_the_chain_for_its_plan_over_grpc_or_abci_query() {
    let server = Server::start();
    let mut home = home();
    let (grpc, rpc) = (free_port(), free_port());
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": rpc, "grpc_port": grpc}),
    );
    let binary = standalone(&home, "v2");
    server.put("/gaiad", binary.clone());
    // Governance passed v2 for a height far ahead: the node runs, the plan is on the chain.
    plan_with_binary(
        &home,
        "v2",
        100_000,
        &format!(
            "{}?checksum=sha256:{}",
            server.url("/gaiad"),
            sha256(&binary)
        ),
    );
    let run = home.run(&[]);
    home.wait_for("the node's gRPC server", T, |h| {
        !h.events_of("grpc").is_empty()
    });
    home.wait_height("genesis", 2);

    // Over gRPC, as Cosmovisor asks (the RPC address leads nowhere).
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{grpc}"))
        .set(
            "WASMVISOR_RPC_ADDRESS",
            &format!("http://127.0.0.1:{}", free_port()),
        );
    let out = home.output(&["prepare-upgrade"]);
    assert!(out.status.success(), "{}", err(&out));
    assert!(
        err(&out).contains(&format!("gRPC at 127.0.0.1:{grpc}")),
        "{}",
        err(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("downloaded, verified and staged"));
    assert_eq!(installed(&home), binary);
    assert_eq!(home.events_of("grpc-query").len(), 1);

    // Through the RPC's abci_query, for a node whose gRPC server is off.
    std::fs::remove_dir_all(home.root().join("upgrades/v2")).unwrap();
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{}", free_port()))
        .set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{rpc}"));
    let out = home.output(&["prepare-upgrade"]);
    assert!(out.status.success(), "{}", err(&out));
    assert!(err(&out).contains("abci_query at"), "{}", err(&out));
    assert_eq!(installed(&home), binary);
    run.stop();
}

#[test]
fn a_grpc_error_falls_back_to_abci_query_and_both_failing_are_named() {
    let server = Server::start();
    let mut home = home();
    let (grpc, rpc) = (free_port(), free_port());
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "rpc_port": rpc, "grpc_port": grpc, "grpc_error": 14}),
    );
    let binary = standalone(&home, "v2");
    server.put("/gaiad", binary.clone());
    plan_with_binary(
        &home,
        "v2",
        100_000,
        &format!("{}?checksum={}", server.url("/gaiad"), sha256(&binary)),
    );
    let run = home.run(&[]);
    home.wait_for("the node's gRPC server", T, |h| {
        !h.events_of("grpc").is_empty()
    });
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{grpc}"))
        .set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{rpc}"));
    let out = home.output(&["prepare-upgrade"]);
    assert!(out.status.success(), "{}", err(&out));
    assert!(err(&out).contains("abci_query at"), "{}", err(&out));
    assert_eq!(installed(&home), binary);
    // Neither: the error names both, and what each said.
    home.set(
        "WASMVISOR_RPC_ADDRESS",
        &format!("http://127.0.0.1:{}", free_port()),
    );
    let out = home.output(&["prepare-upgrade"]);
    assert!(!out.status.success());
    assert!(
        err(&out).contains("gRPC status \"14\" query service unavailable"),
        "{}",
        err(&out)
    );
    run.stop();
}

#[test]
fn prepare_upgrade_with_no_plan_on_the_chain_has_nothing_to_do() {
    let mut home = home();
    let grpc = free_port();
    home.install(
        "genesis",
        json!({"version": "genesis", "ordinal": 1, "grpc_port": grpc}),
    );
    let run = home.run(&[]);
    home.wait_for("the node's gRPC server", T, |h| {
        !h.events_of("grpc").is_empty()
    });
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{grpc}"));
    let out = home.output(&["prepare-upgrade"]);
    assert!(out.status.success(), "{}", err(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no upgrade is scheduled"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    run.stop();
}

// Over 80 lines: the registry's two layouts, each with its fixtures, read in turn by the same
// resolver from the same server, so the two answers are compared on equal terms.
#[test]
fn the_chain_registry_resolver_reads_both_layouts_locally_and_over_http() {
    let server = Server::start();
    let home = home();
    let binary = standalone(&home, "v2");
    server.put("/releases/v31/osmosisd-linux", binary.clone());
    let url = format!(
        "{}?checksum={}",
        server.url("/releases/v31/osmosisd-linux"),
        sha256(&binary)
    );
    // Today's layout, versions.json, as the registry's raw files are served: behind a redirect.
    let versions = json!({
        "$schema": "../versions.schema.json",
        "chain_name": "osmosis",
        "versions": [
            {"name": "v30", "height": 40000000, "binaries": {platform(): "https://example.invalid/v30"}},
            {"name": "v31", "tag": "v31.0.0", "height": 3, "recommended_version": "31.0.0", "binaries": {platform(): url}}
        ]
    });
    server.put(
        "/raw/osmosis/versions.json",
        versions.to_string().into_bytes(),
    );
    server.redirect(
        "/cosmos/chain-registry/master/osmosis/versions.json",
        "/raw/osmosis/versions.json",
    );
    let plugins = |config: &str, dirs: &str| {
        std::fs::write(
            home.root().join("plugins.toml"),
            format!(
                "[[resolver]]\nname = \"registry\"\npath = \"{}\"\nconfig = {{ {config} }}\nallow-hosts = [\"127.0.0.1:{}\"]\n{dirs}",
                wasm("wasmvisor-plugin-chain-registry").display(),
                server.port
            ),
        )
        .unwrap();
    };
    let plan = |name: &str| {
        let file = home.path.join("plan.json");
        std::fs::write(&file, json!({"name": name, "height": 3}).to_string()).unwrap();
        let _ = std::fs::remove_dir_all(home.root().join("upgrades").join(name.to_lowercase()));
        home.output(&["prepare-upgrade", "--plan", file.to_str().unwrap()])
    };
    plugins(
        &format!(
            "registry = \"{}\", chain = \"osmosis\"",
            server.url("/cosmos/chain-registry/master")
        ),
        "",
    );
    // The plan's name in another case than the registry's.
    let out = plan("V31");
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(
        std::fs::read(home.root().join("upgrades/v31/bin/simd")).unwrap(),
        binary
    );

    // The older layout, chain.json's codebase.versions, from a granted local checkout.
    let checkout = home.path.join("chain-registry/juno");
    std::fs::create_dir_all(&checkout).unwrap();
    std::fs::write(
        checkout.join("chain.json"),
        json!({"chain_name": "juno", "codebase": {"versions": [
            {"name": "v31", "height": 3, "binaries": {platform(): url}}
        ]}})
        .to_string(),
    )
    .unwrap();
    plugins(
        "registry = \"/registry\", chain = \"juno\"",
        &format!(
            "dirs = [[\"{}\", \"/registry\"]]\n",
            home.path.join("chain-registry").display()
        ),
    );
    let out = plan("v31");
    assert!(out.status.success(), "{}", err(&out));
    // The existing setting naming one file takes either layout.
    plugins(
        "chain-json = \"/registry/juno/chain.json\"",
        &format!(
            "dirs = [[\"{}\", \"/registry\"]]\n",
            home.path.join("chain-registry").display()
        ),
    );
    let out = plan("v31");
    assert!(out.status.success(), "{}", err(&out));
    let out = plan("v99");
    assert!(
        err(&out).contains("no version named \"v99\""),
        "{}",
        err(&out)
    );
}
