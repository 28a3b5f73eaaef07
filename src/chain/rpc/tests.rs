//! The RPC client against one-connection servers, and the readers of its answers.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::json;

use super::*;

/// Serves each of `answers` (raw HTTP responses) to one connection, in turn.
fn serve(answers: Vec<Vec<u8>>) -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for answer in answers {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = stream.write_all(&answer);
        }
    });
    Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_chunked_answer_is_decoded() {
    let body = br#"{"result":{"response":{"last_block_height":"42"}}}"#;
    let (a, b) = body.split_at(10);
    let mut answer =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    answer.extend(format!("{:x}\r\n", a.len()).as_bytes());
    answer.extend(a);
    answer.extend(format!("\r\n{:x}\r\n", b.len()).as_bytes());
    answer.extend(b);
    answer.extend(b"\r\n0\r\n\r\n");
    let rpc = Rpc::new(&serve(vec![answer]), Duration::from_secs(5));
    assert_eq!(runtime().block_on(rpc.app_height()), Ok(42));
}

#[test]
fn a_chunk_size_that_would_wrap_is_an_error_not_a_panic() {
    let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nffffffffffffffff\r\nab\r\n0\r\n\r\n".to_vec();
    let rpc = Rpc::new(&serve(vec![answer]), Duration::from_secs(5));
    assert!(runtime().block_on(rpc.app_height()).is_err());
}

#[test]
fn the_words_transfer_encoding_chunked_in_another_header_do_not_dechunk() {
    let body = br#"{"result":{"response":{"last_block_height":"7"}}}"#;
    let answer = [
        format!(
            "HTTP/1.1 200 OK\r\nX-Note: transfer-encoding: chunked\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        body.to_vec(),
    ]
    .concat();
    let rpc = Rpc::new(&serve(vec![answer]), Duration::from_secs(5));
    assert_eq!(runtime().block_on(rpc.app_height()), Ok(7));
}

#[test]
fn an_unanswered_abci_info_falls_back_to_status_minus_one() {
    let status = br#"{"result":{"sync_info":{"latest_block_height":"10"}}}"#;
    let answers = vec![
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        [
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                status.len()
            )
            .into_bytes(),
            status.to_vec(),
        ]
        .concat(),
    ];
    let rpc = Rpc::new(&serve(answers), Duration::from_secs(5));
    assert_eq!(runtime().block_on(rpc.app_height()), Ok(9));
}

#[test]
fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint = Endpoint::parse(&format!("127.0.0.1:{port}")).unwrap();
    let rpc = Rpc::new(&endpoint, Duration::from_millis(200));
    assert_eq!(runtime().block_on(rpc.app_height()), Err(RpcError::Timeout));
    drop(listener);
}

#[test]
fn heights_are_plain_decimals() {
    let at = |h: serde_json::Value| {
        abci_info_height(&json!({"result": {"response": {"last_block_height": h}}}))
    };
    assert_eq!(at(json!("59")), Ok(59));
    assert_eq!(at(json!(59)), Ok(59));
    assert_eq!(
        abci_info_height(&json!({"result": {"response": {}}})),
        Ok(0)
    );
    for bad in [
        json!("+59"),
        json!(" 59"),
        json!("0x3b"),
        json!(""),
        json!(-1),
        json!(5.5),
        json!([]),
    ] {
        assert!(at(bad.clone()).is_err(), "{bad} was taken as a height");
    }
}

#[test]
fn node_info_needs_an_id_and_a_network() {
    let status = json!({"result": {"node_info": {"id": "ab12", "network": "sim-1"}}});
    assert_eq!(
        node_info(&status),
        Ok(NodeInfo {
            id: "ab12".into(),
            network: "sim-1".into()
        })
    );
    assert!(node_info(&json!({"result": {"node_info": {"id": ""}}})).is_err());
}
