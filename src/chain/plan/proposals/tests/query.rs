//! The whole `Proposals` query against servers that answer page by page, refuse gov v1 as a
//! v0.45 chain does, or answer garbage.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::super::decode::request;
use super::super::{ProposalError, proposed_plans};
use super::fixtures::*;
use crate::chain::plan::PlanError;
use crate::config::{Endpoint, GrpcAddress};

/// What a test gRPC server answers one call: a message, or a gRPC status (headers only).
enum Reply {
    Message(Vec<u8>),
    Status(&'static str),
}

/// The calls a test server took: (method, request message).
type Calls = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A gRPC server that answers the i-th connection with `replies[i]` (the last again after
/// that), recording each call's method and request message.
fn grpc_server(replies: Vec<Reply>) -> (GrpcAddress, Calls) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let record = calls.clone();
    std::thread::spawn(move || {
        for i in 0.. {
            let Ok((mut tcp, _)) = listener.accept() else {
                return;
            };
            let Some(call) = read_call(&mut tcp) else {
                continue;
            };
            record.lock().unwrap().push(call);
            tcp.write_all(&reply_frames(&replies[i.min(replies.len() - 1)]))
                .unwrap();
            let _ = tcp.read_to_end(&mut Vec::new());
        }
    });
    let address = GrpcAddress::parse(&format!("127.0.0.1:{port}")).unwrap();
    (address, calls)
}

/// The method and the request message of one call: the preface, then frames until the
/// request's DATA ends the stream.
fn read_call(tcp: &mut std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use std::io::Read;
    let mut preface = [0u8; 24];
    tcp.read_exact(&mut preface).ok()?;
    let (mut method, mut body) = (String::new(), Vec::new());
    loop {
        let mut head = [0u8; 9];
        tcp.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).ok()?;
        match head[3] {
            // HEADERS: `:method`, `:scheme`, then `:path` as a plain literal.
            1 => {
                let n = payload[3] as usize;
                method = String::from_utf8(payload[4..4 + n].to_vec()).ok()?;
            }
            0 => {
                body.extend_from_slice(&payload);
                if head[4] & 1 == 1 {
                    return Some((method, body.get(5..)?.to_vec()));
                }
            }
            _ => {}
        }
    }
}

/// The server's SETTINGS and its answer to one call.
fn reply_frames(reply: &Reply) -> Vec<u8> {
    let frame = |kind: u8, flags: u8, payload: &[u8]| {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, flags, 0, 0, 0, 1]);
        f.extend_from_slice(payload);
        f
    };
    let mut out = vec![0, 0, 0, 4, 0, 0, 0, 0, 0];
    match reply {
        Reply::Message(message) => {
            let mut data = vec![0];
            data.extend_from_slice(&(message.len() as u32).to_be_bytes());
            data.extend_from_slice(message);
            out.extend(frame(1, 4, &[0x88]));
            out.extend(frame(0, 0, &data));
            out.extend(frame(
                1,
                5,
                &[&[0x00, 11][..], b"grpc-status", &[1, b'0']].concat(),
            ));
        }
        // Headers only ("Trailers-Only"), as grpc-go refuses an unknown service.
        Reply::Status(code) => {
            let mut block = vec![0x88, 0x00, 11];
            block.extend_from_slice(b"grpc-status");
            block.push(code.len() as u8);
            block.extend_from_slice(code.as_bytes());
            block.extend_from_slice(&[0x00, 12]);
            block.extend_from_slice(b"grpc-message");
            let text = b"unknown%20service%20cosmos.gov.v1.Query";
            block.push(text.len() as u8);
            block.extend_from_slice(text);
            out.extend(frame(1, 5, &block));
        }
    }
    out
}

/// An RPC server that answers the i-th request with `replies[i]` (the last again after that),
/// recording each request's path.
fn rpc_server(replies: Vec<String>) -> (Endpoint, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let paths = Arc::new(Mutex::new(Vec::new()));
    let record = paths.clone();
    std::thread::spawn(move || {
        for i in 0.. {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let json = &replies[i.min(replies.len() - 1)];
            let mut reader = std::io::BufReader::new(tcp);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            record.lock().unwrap().push(path);
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap_or(0) > 0 && header != "\r\n" {
                header.clear();
            }
            let mut tcp = reader.into_inner();
            let _ = write!(
                tcp,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
        }
    });
    (
        Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        paths,
    )
}

/// CometBFT v0.38's `abci_query` answer carrying `message`.
fn abci_answer(message: &[u8]) -> String {
    let value = match message.is_empty() {
        true => "null".to_string(),
        false => format!("\"{}\"", crate::chain::plan::tests::encode(message)),
    };
    format!(
        r#"{{"jsonrpc":"2.0","id":-1,"result":{{"response":{{"code":0,"log":"","info":"","index":"0","key":null,"value":{value},"proofOps":null,"height":"8732101","codespace":""}}}}}}"#
    )
}

/// The SDK's answer to a query path it has no route for, as CometBFT v0.34 writes it.
const UNKNOWN_PATH: &str = r#"{"jsonrpc":"2.0","id":-1,"result":{"response":{"code":6,"log":"unknown query path: unknown request","info":"","index":"0","key":null,"value":null,"proofOps":null,"height":"8732101","codespace":"sdk"}}}"#;

/// An address where nothing listens.
fn closed() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn pages_are_followed_by_their_next_key() {
    let (grpc, calls) = grpc_server(vec![
        Reply::Message(page(&[gaia_v15(885)], &[0, 0, 0, 0, 0, 0, 3, 0x7a], 2)),
        Reply::Message(page(
            &[v1_proposal(
                890,
                &[msg_software_upgrade(
                    GOV_AUTHORITY,
                    &plan("v16", 20_739_800, ""),
                )],
                2,
                "Gaia v16 Software Upgrade",
            )],
            b"",
            2,
        )),
    ]);
    let rpc = Endpoint::parse(&format!("127.0.0.1:{}", closed())).unwrap();
    let answer = proposed_plans(&grpc, &rpc, WAIT).await.unwrap();
    assert_eq!(answer.from, format!("gRPC at {grpc}"));
    let names: Vec<_> = answer
        .list
        .iter()
        .map(|p| (p.id, p.plan.name.as_str()))
        .collect();
    assert_eq!(names, [(885, "v15"), (890, "v16")]);
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(
        calls
            .iter()
            .all(|(m, _)| m == "/cosmos.gov.v1.Query/Proposals")
    );
    assert_eq!(calls[0].1, request(&[]));
    assert_eq!(calls[1].1, request(&[0, 0, 0, 0, 0, 0, 3, 0x7a]));
}

#[tokio::test]
async fn a_chain_without_gov_v1_is_asked_gov_v1beta1() {
    // gRPC: UNIMPLEMENTED for v1, as grpc-go answers an unknown service.
    let (grpc, calls) = grpc_server(vec![
        Reply::Status("12"),
        Reply::Message(page(
            &[v1beta1_proposal(458, &osmosis_v15_content(), 2)],
            b"",
            1,
        )),
    ]);
    let rpc = Endpoint::parse(&format!("127.0.0.1:{}", closed())).unwrap();
    let answer = proposed_plans(&grpc, &rpc, WAIT).await.unwrap();
    assert_eq!(answer.list.len(), 1);
    assert_eq!(answer.list[0].title, "Osmosis v15 Sodium Upgrade");
    let methods: Vec<_> = calls.lock().unwrap().iter().map(|c| c.0.clone()).collect();
    assert_eq!(
        methods,
        [
            "/cosmos.gov.v1.Query/Proposals",
            "/cosmos.gov.v1beta1.Query/Proposals"
        ]
    );

    // abci_query, gRPC closed: the SDK's "unknown query path" for v1.
    let grpc = GrpcAddress::parse(&format!("127.0.0.1:{}", closed())).unwrap();
    let (rpc, paths) = rpc_server(vec![
        UNKNOWN_PATH.to_string(),
        abci_answer(&page(
            &[v1beta1_proposal(458, &osmosis_v15_content(), 2)],
            b"",
            1,
        )),
    ]);
    let answer = proposed_plans(&grpc, &rpc, WAIT).await.unwrap();
    assert_eq!(answer.from, format!("abci_query at {}", rpc.address));
    assert_eq!(answer.list[0].plan.height, 8_732_500);
    assert_eq!(
        *paths.lock().unwrap(),
        [
            "/abci_query?path=%22/cosmos.gov.v1.Query/Proposals%22&data=0x080222021864",
            "/abci_query?path=%22/cosmos.gov.v1beta1.Query/Proposals%22&data=0x080222021864",
        ]
    );
}

#[tokio::test]
async fn no_proposals_in_voting_is_an_empty_list() {
    let grpc = GrpcAddress::parse(&format!("127.0.0.1:{}", closed())).unwrap();
    let (rpc, _) = rpc_server(vec![abci_answer(&page(&[], b"", 0))]);
    assert!(
        proposed_plans(&grpc, &rpc, WAIT)
            .await
            .unwrap()
            .list
            .is_empty()
    );
    let (rpc, _) = rpc_server(vec![abci_answer(&[])]);
    assert!(
        proposed_plans(&grpc, &rpc, WAIT)
            .await
            .unwrap()
            .list
            .is_empty()
    );
}

#[tokio::test]
async fn an_answer_that_does_not_decode_names_where_it_came_from() {
    let grpc = GrpcAddress::parse(&format!("127.0.0.1:{}", closed())).unwrap();
    let broken = msg_software_upgrade(GOV_AUTHORITY, &[0x0a, 0x09, b'v']);
    let (rpc, _) = rpc_server(vec![abci_answer(&page(
        &[v1_proposal(12, &[broken], 2, "")],
        b"",
        1,
    ))]);
    let err = proposed_plans(&grpc, &rpc, WAIT).await.unwrap_err();
    assert!(
        matches!(
            &err,
            PlanError::ProposalsUnreadable { source, .. }
                if matches!(**source, ProposalError::Upgrade { id: 12, .. })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the gov Proposals answer of abci_query at {} (WASMVISOR_RPC_ADDRESS) cannot be read: proposal 12: its /cosmos.upgrade.v1beta1.MsgSoftwareUpgrade cannot be read: a field of 9 bytes where 1 are left (truncated message); is WASMVISOR_RPC_ADDRESS the node's own address?",
            rpc.address
        )
    );
    // A next_key that never ends: refused after the bound, not followed forever.
    let (grpc, calls) = grpc_server(vec![Reply::Message(page(&[], b"again", 0))]);
    let err = proposed_plans(&grpc, &rpc, WAIT).await.unwrap_err();
    assert!(
        matches!(
            &err,
            PlanError::ProposalsUnreadable { source, .. }
                if *source.as_ref() == ProposalError::TooManyPages(10)
        ),
        "{err:?}"
    );
    assert_eq!(calls.lock().unwrap().len(), 10);
}

#[tokio::test]
async fn neither_answering_names_both_addresses() {
    let grpc = GrpcAddress::parse(&format!("127.0.0.1:{}", closed())).unwrap();
    let (rpc, _) = rpc_server(vec!["<html>not json</html>".to_string()]);
    let err = proposed_plans(&grpc, &rpc, WAIT).await.unwrap_err();
    assert!(matches!(err, PlanError::Unanswered { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "the node answers neither on gRPC at {grpc} (DAEMON_GRPC_ADDRESS: "
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "nor on its RPC at {} (WASMVISOR_RPC_ADDRESS: ",
            rpc.address
        )),
        "{text}"
    );
}
