//! The pace against `/status` and `/blockchain` answers shaped as CometBFT v0.38 writes them (the
//! `/status` of a v0.38.6 node in DariuszDepta/DiscoveringCosmos's COMET_BFT.md: `sync_info` with
//! `latest_block_time` "2024-06-11T14:07:57.12519517Z" — eight digits, Go drops trailing zeros —
//! and `earliest_block_*`; `/blockchain`'s `result.last_height` and `result.block_metas[]`, each
//! `block_id`, `block_size`, `header` (`version`, `chain_id`, `height`, `time`, …) and `num_txs`,
//! as `rpc/core/blocks.go` answers from v0.34 to v1, and its refusal of a height below the
//! store's base, `filterMinMax`'s "min height … can't be greater than max height …"), and the
//! time reader.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::super::{Rpc, RpcError};
use super::{Pace, rfc3339};
use crate::config::Endpoint;

#[test]
fn times_are_read_as_cometbft_writes_them() {
    for (text, expected) in [
        (
            "2024-06-11T14:07:57.12519517Z",
            (1_718_114_877, 125_195_170),
        ),
        (
            "2020-08-22T20:19:39.716401162Z",
            (1_598_127_579, 716_401_162),
        ),
        ("2024-06-11T14:07:57Z", (1_718_114_877, 0)),
        ("2024-06-11t14:07:57.5z", (1_718_114_877, 500_000_000)),
        ("2024-06-11T16:07:57+02:00", (1_718_114_877, 0)),
        ("2024-06-11T13:37:57-00:30", (1_718_114_877, 0)),
        ("2024-02-29T23:59:59Z", (1_709_251_199, 0)),
        ("2000-03-01T00:00:00Z", (951_868_800, 0)),
        ("1970-01-01T00:00:00Z", (0, 0)),
        ("0001-01-01T00:00:00Z", (-62_135_596_800, 0)),
    ] {
        assert_eq!(rfc3339(text), Some(expected), "{text}");
    }
    for bad in [
        "",
        "2024-06-11",
        "2024-06-11 14:07:57Z",
        "2024-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-06-11T24:00:00Z",
        "2024-06-11T14:07:57",
        "2024-06-11T14:07:57.Z",
        "2024-06-11T14:07:57.1234567891Z",
        "2024-06-11T14:07:57ZZ",
        "2024-06-11T14:07:57+0200",
        "2024-06-11T14:07:57+24:00",
        "+024-06-11T14:07:57Z",
        "2024-0a-11T14:07:57Z",
        "２024-06-11T14:07:57Z",
    ] {
        assert_eq!(rfc3339(bad), None, "{bad:?}");
    }
}

/// An RPC that answers `/status` and `/blockchain?…` with these bodies (any other path: 404),
/// recording the paths asked. A body with an `error` member is sent with HTTP 500, as CometBFT
/// sends its refusals.
fn node(status: serde_json::Value, block: serde_json::Value) -> (Rpc, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let paths = Arc::new(Mutex::new(Vec::new()));
    let record = paths.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(tcp);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap_or(0) > 0 && header != "\r\n" {
                header.clear();
            }
            let body = match path.split('?').next() {
                Some("/status") => status.to_string(),
                Some("/blockchain") => block.to_string(),
                _ => String::new(),
            };
            record.lock().unwrap().push(path);
            let mut tcp = reader.into_inner();
            let code = if body.is_empty() {
                "404 Not Found"
            } else if body.contains("\"error\"") {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                tcp,
                "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let endpoint = Endpoint::parse(&format!("127.0.0.1:{port}")).unwrap();
    (Rpc::new(&endpoint, Duration::from_secs(5)), paths)
}

fn status(height: &str, time: &str, earliest: &str) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": -1, "result": {
        "node_info": {"protocol_version": {"p2p": "8", "block": "11", "app": "0"},
            "id": "b77488f9fa23715979fe03cfc19fd4f3b3750347", "listen_addr": "tcp://0.0.0.0:26656",
            "network": "disco", "version": "0.38.6", "channels": "40202122233038606100",
            "moniker": "mynode", "other": {"tx_index": "on", "rpc_address": "tcp://0.0.0.0:26657"}},
        "sync_info": {
            "latest_block_hash": "2512729BF836B206CB443BF3329A4130984B2D60E6198064A59EF1396AE6C1FD",
            "latest_app_hash": "7F06A859358907CDBD21053951516E0495C05F15DC2E68DCDCBCC65FDC6A85B6",
            "latest_block_height": height,
            "latest_block_time": time,
            "earliest_block_hash": "30FDA47FCC55758A1C98615379811C6BC4F4DBB2AE962C5E6F837D8E86ACD665",
            "earliest_app_hash": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "earliest_block_height": earliest,
            "earliest_block_time": "2024-06-05T14:26:30.900531975Z",
            "catching_up": false},
        "validator_info": {"address": "5BA4A2A3FB1B2B1A1F3C7E0F6A1D2C3B4A5F6E7D",
            "pub_key": {"type": "tendermint/PubKeyEd25519", "value": "Zx5Y8sJ2c1bX0w=="},
            "voting_power": "0"}}})
}

/// `/blockchain?minHeight=h&maxHeight=h`'s answer: the one header asked for.
fn block(height: &str, time: &str) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": -1, "result": {"last_height": "26083", "block_metas": [{
        "block_id": {"hash": "72F582C0DF43C48353C4C9E61CE1C8254B7BBB58851F4D9DBD3BB39327332C21",
            "parts": {"total": 1, "hash": "E5927AA721470C69019AF883DD130BE6E0A917CFCF9BDCA8FBA55B1D05115A6F"}},
        "block_size": "1893",
        "header": {"version": {"block": "11", "app": "0"}, "chain_id": "disco",
            "height": height, "time": time,
            "last_block_id": {"hash": "0980836557E1FAAB5A98B823B8C2BF69CFE3EE61874BDDE3E9B4313BA097EDF9",
                "parts": {"total": 1, "hash": "D3AF12230F844A2D1C0034F487352B149D7E4C27E1868FB22B0CADE51CA19161"}},
            "last_commit_hash": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "data_hash": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "validators_hash": "9C4F2E4C3E6A0B4F2B7F8E6C3B5A1D0E9F8A7B6C5D4E3F2A1B0C9D8E7F6A5B4C",
            "app_hash": "7F06A859358907CDBD21053951516E0495C05F15DC2E68DCDCBCC65FDC6A85B6",
            "proposer_address": "5BA4A2A3FB1B2B1A1F3C7E0F6A1D2C3B4A5F6E7D"},
        "num_txs": "0"}]}})
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_mean_interval_is_over_the_blocks_asked() {
    // 100 blocks in 600.1 s.
    let (rpc, paths) = node(
        status("26083", "2024-06-11T14:07:57.12519517Z", "1"),
        block("25983", "2024-06-11T13:57:57.02519517Z"),
    );
    let pace = runtime().block_on(rpc.pace(100)).unwrap();
    assert_eq!(pace.height, 26_083);
    assert_eq!(pace.time_unix_ms, 1_718_114_877_125);
    let ms = pace.block_ms.unwrap();
    assert!((ms - 6001.0).abs() < 1e-6, "{ms}");
    assert_eq!(
        *paths.lock().unwrap(),
        ["/status", "/blockchain?minHeight=25983&maxHeight=25983"]
    );
}

#[test]
fn a_pruned_store_is_asked_from_its_first_block() {
    let (rpc, paths) = node(
        status("26083", "2024-06-11T14:07:57.12519517Z", "26081"),
        block("26081", "2024-06-11T14:07:45.12519517Z"),
    );
    let pace = runtime().block_on(rpc.pace(1000)).unwrap();
    assert_eq!(pace.block_ms, Some(6000.0));
    assert_eq!(
        paths.lock().unwrap()[1],
        "/blockchain?minHeight=26081&maxHeight=26081"
    );
}

#[test]
fn too_few_blocks_or_no_time_passing_give_no_interval() {
    for (height, earliest, over) in [("1", "1", 100), ("26083", "26083", 100), ("26083", "1", 0)] {
        let (rpc, paths) = node(
            status(height, "2024-06-11T14:07:57.12519517Z", earliest),
            json!(null),
        );
        let pace = runtime().block_on(rpc.pace(over)).unwrap();
        assert_eq!(pace.block_ms, None, "{height} {earliest} {over}");
        assert_eq!(paths.lock().unwrap().len(), 1, "/blockchain is not asked");
    }
    // The same time (a node whose clock stood still), or an earlier one: no interval.
    for then in ["2024-06-11T14:07:57.12519517Z", "2024-06-11T14:08:00Z"] {
        let (rpc, _) = node(
            status("26083", "2024-06-11T14:07:57.12519517Z", "1"),
            block("26073", then),
        );
        assert_eq!(runtime().block_on(rpc.pace(10)).unwrap().block_ms, None);
    }
    // An older node without earliest_block_height: from 1.
    let mut old = status("3", "2024-06-11T14:07:57Z", "1");
    old["result"]["sync_info"]
        .as_object_mut()
        .unwrap()
        .remove("earliest_block_height");
    let (rpc, paths) = node(old, block("1", "2024-06-11T14:07:45Z"));
    assert_eq!(
        runtime().block_on(rpc.pace(10)).unwrap(),
        Pace {
            height: 3,
            time_unix_ms: 1_718_114_877_000,
            block_ms: Some(6000.0)
        }
    );
    assert_eq!(
        paths.lock().unwrap()[1],
        "/blockchain?minHeight=1&maxHeight=1"
    );
}

#[test]
fn answers_without_a_time_are_errors_that_say_where() {
    let (rpc, _) = node(status("26083", "yesterday", "1"), json!(null));
    let err = runtime().block_on(rpc.pace(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/status: bad latest_block_time \"yesterday\""
    );
    let mut no_time = status("26083", "", "1");
    no_time["result"]["sync_info"]
        .as_object_mut()
        .unwrap()
        .remove("latest_block_time");
    let (rpc, _) = node(no_time, json!(null));
    let err = runtime().block_on(rpc.pace(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/status: no latest_block_time in the answer"
    );
    // A height below the store's base (pruned since `/status`), as CometBFT refuses it.
    let refused = json!({"jsonrpc": "2.0", "id": -1, "error": {"code": -32603,
        "message": "Internal error", "data": "min height 26080 can't be greater than max height 26073"}});
    let (rpc, _) = node(status("26083", "2024-06-11T14:07:57Z", "1"), refused);
    let err = runtime().block_on(rpc.pace(10)).unwrap_err();
    let path = "/blockchain?minHeight=26073&maxHeight=26073";
    assert!(
        matches!(&err, RpcError::Refused { path: p, .. } if p == path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{path}: the node answered an error: Internal error (-32603): min height 26080 can't be greater than max height 26073"
        )
    );
    let (rpc, _) = node(
        status("26083", "2024-06-11T14:07:57Z", "1"),
        block("26073", "12:00"),
    );
    let err = runtime().block_on(rpc.pace(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{path}: bad block_metas[].header.time \"12:00\"")
    );
    // Another block's header than the one asked for.
    let (rpc, _) = node(
        status("26083", "2024-06-11T14:07:57Z", "1"),
        block("26080", "2024-06-11T14:07:39Z"),
    );
    let err = runtime().block_on(rpc.pace(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{path}: no header of block 26073 in block_metas, which holds only block 26080's header"
        )
    );
    // An answer without the list.
    let (rpc, _) = node(status("26083", "2024-06-11T14:07:57Z", "1"), json!(null));
    let err = runtime().block_on(rpc.pace(10)).unwrap_err();
    assert!(err.to_string().starts_with(path), "{err}");
}
