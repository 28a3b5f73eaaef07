//! Ready before the halt: the upcoming upgrades learnt while the node runs (the chain's plan,
//! proposals, the files), prepared and preflighted ahead, and said in `status`, the log and
//! the metrics.

mod chain;
mod observe;
mod preflight;
mod proposals;

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::serve::Server;
use crate::harness::*;

const T: Duration = Duration::from_secs(60);

/// A home whose node serves its RPC and gRPC on ports of its own, asked every 200 ms.
fn chain_home(extra: Value) -> Home {
    let mut home = Home::new();
    let (rpc, grpc) = (free_port(), free_port());
    let mut config =
        json!({"version": "genesis", "ordinal": 1, "rpc_port": rpc, "grpc_port": grpc});
    for (k, v) in extra.as_object().into_iter().flatten() {
        config[k] = v.clone();
    }
    home.install("genesis", config);
    home.set("DAEMON_GRPC_ADDRESS", &format!("127.0.0.1:{grpc}"))
        .set("WASMVISOR_RPC_ADDRESS", &format!("http://127.0.0.1:{rpc}"))
        .set("WASMVISOR_PLAN_POLL", "200ms");
    home
}

/// The URL of `bytes`, served by `server` at `path`, with its checksum.
fn served(server: &Server, path: &str, bytes: Vec<u8>) -> String {
    let url = format!("{}?checksum=sha256:{}", server.url(path), sha256(&bytes));
    server.put(path, bytes);
    url
}

/// A [`chain_home`] that may download, and v2's archive served by `server` at `/v2.tar.gz`:
/// the home and the archive's URL.
fn downloading_v2(server: &Server) -> (Home, String) {
    let mut home = chain_home(json!({}));
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
    );
    let url = served(server, "/v2.tar.gz", archive);
    (home, url)
}

/// `status --json`.
fn status(home: &Home) -> Value {
    let out = home.output(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until `status --json`'s `next_upgrade` satisfies `cond`; returns it.
fn wait_next(home: &Home, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    home.wait_for(what, T, |h| cond(&status(h)["next_upgrade"]));
    status(home)["next_upgrade"].clone()
}

/// The lines of the last run's log that contain `text`.
fn said(home: &Home, text: &str) -> usize {
    home.last_log().lines().filter(|l| l.contains(text)).count()
}
