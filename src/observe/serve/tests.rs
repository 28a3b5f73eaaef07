use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use super::*;

/// A listener on a loopback port of its own, served on the test's runtime.
async fn start() -> (u16, Observer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let observer = Observer::new();
    tokio::spawn(serve(listener, observer.clone()));
    (port, observer)
}

/// The status of a GET, or why there was none (refused, closed unanswered).
async fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no answer: {text:?}"))?;
    Ok((status, text))
}

/// `n` connections that never complete a request head: half send nothing, half the start of
/// one (a slow client).
async fn idle(port: u16, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        held.push(s);
    }
    held
}

/// Waits for the peer to close `s`: how long it took, and whether it answered anything.
async fn closed(s: &mut TcpStream, within: Duration) -> Option<(Duration, usize)> {
    let began = Instant::now();
    let mut got = Vec::new();
    match timeout(within, s.read_to_end(&mut got)).await {
        Ok(_) => Some((began.elapsed(), got.len())),
        Err(_) => None,
    }
}

#[tokio::test]
async fn probes_are_answered_while_idle_connections_take_every_slot() {
    let (port, _observer) = start().await;
    for flood in [MAX_CONNECTIONS, 4 * MAX_CONNECTIONS] {
        let began = Instant::now();
        let mut held = idle(port, flood).await;
        for round in 0..20 {
            // A fresh flood before each probe, the previous one still held open.
            let batch = idle(port, flood).await;
            let answer = timeout(Duration::from_secs(1), get(port, "/livez")).await;
            assert!(
                matches!(answer, Ok(Ok((200, _)))),
                "probe {round} with {flood} idle connections held: {answer:?}"
            );
            held = batch;
        }
        // Well within the 2 s an idle connection could hold a slot before.
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "20 probes took {:?}",
            began.elapsed()
        );
        drop(held);
    }
}

#[tokio::test]
async fn the_oldest_idle_connection_makes_room_for_a_new_one() {
    let (port, _observer) = start().await;
    let mut oldest = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut others = idle(port, MAX_CONNECTIONS).await;
    // Closed as the last one came, long before its head was due.
    let (after, answered) = closed(&mut oldest, HEAD_TIMEOUT / 2)
        .await
        .expect("the oldest idle connection stays open with every slot taken");
    assert_eq!(answered, 0, "closed after {after:?}");
    // The newest are still served: the one that sent half a head finishes it and is answered.
    let newest = others.last_mut().unwrap();
    newest.write_all(b"\r\n").await.unwrap();
    let mut got = Vec::new();
    timeout(Duration::from_secs(1), newest.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nalive\n"), "{text}");
}

#[tokio::test]
async fn a_connection_without_a_whole_head_is_closed_at_the_head_timeout() {
    let (port, _observer) = start().await;
    let began = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    for s in [&mut silent, &mut slow] {
        let (_, answered) = closed(s, Duration::from_millis(1500))
            .await
            .expect("open 1.5 s after accept without a request head");
        assert_eq!(answered, 0);
        let after = began.elapsed();
        assert!(
            after >= HEAD_TIMEOUT - Duration::from_millis(100)
                && after < Duration::from_millis(1500),
            "closed {after:?} after connecting"
        );
    }
}

#[tokio::test]
async fn a_head_that_comes_in_pieces_within_the_timeout_is_answered() {
    let (port, _observer) = start().await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // The blank line straddles two writes.
    for piece in [&b"GET /li"[..], b"vez HTTP/1.1\r\nHost: x\r\n\r", b"\n"] {
        s.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut got = Vec::new();
    timeout(Duration::from_secs(1), s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "{got:?}");
}

#[tokio::test]
async fn a_head_longer_than_the_limit_is_read_up_to_it() {
    let (mut client, mut server) = tokio::io::duplex(64 * 1024);
    let mut request = b"GET /livez HTTP/1.1\r\nX: ".to_vec();
    request.resize(3 * MAX_HEAD, b'a');
    client.write_all(&request).await.unwrap();
    let head = read_head(&mut server).await.unwrap();
    assert_eq!(head.len(), MAX_HEAD);
    assert!(respond(&head, &Observer::new()).starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn each_path_has_its_answer() {
    let observer = Observer::new();
    let answer = |head: &str| String::from_utf8(respond(head.as_bytes(), &observer)).unwrap();
    let livez = answer("GET /livez?verbose HTTP/1.1\r\n\r\n");
    assert!(livez.starts_with("HTTP/1.1 200 OK\r\n"), "{livez}");
    assert!(livez.contains("\r\nContent-Length: 6\r\n"), "{livez}");
    assert!(answer("GET /readyz HTTP/1.1\r\n\r\n").contains("503"));
    assert!(answer("GET /readyz HTTP/1.1\r\n\r\n").ends_with("not ready: starting\n"));
    let metrics = answer("GET /metrics HTTP/1.1\r\n\r\n");
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert!(metrics.contains("wasmvisor_node_up"), "{metrics}");
    assert!(answer("GET /nothing HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    assert!(answer("POST /livez HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
    assert!(answer("").starts_with("HTTP/1.1 405 "));
    observer.finished();
    assert!(answer("GET /livez HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503 "));
}

const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[test]
fn eviction_takes_the_oldest_waiting_and_never_one_being_answered() {
    let mut slots = Slots::default();
    let ids: Vec<u64> = (0..3).map(|_| slots.admit(HERE, 3).unwrap()).collect();
    slots.answering(ids[0]);
    // Full: the oldest still waiting for its head (the second) goes.
    let fourth = slots.admit(HERE, 3).unwrap();
    assert_eq!(
        slots.open.keys().copied().collect::<Vec<_>>(),
        [ids[0], ids[2], fourth]
    );
    slots.answering(ids[2]);
    slots.answering(fourth);
    // Every one being answered: the new connection is the one refused.
    assert_eq!(slots.admit(HERE, 3), None);
    assert_eq!(slots.open.len(), 3);
    // One ends: room again.
    slots.open.remove(&ids[0]);
    assert!(slots.admit(HERE, 3).is_some());
}

#[test]
fn a_client_that_floods_evicts_its_own_connections() {
    let kubelet: IpAddr = "10.0.0.1".parse().unwrap();
    let flooder: IpAddr = "10.0.7.7".parse().unwrap();
    let mut slots = Slots::default();
    // The probe came first and has not been read yet; the flood takes every other slot.
    let probe = slots.admit(kubelet, 4).unwrap();
    let flood: Vec<u64> = (0..3).map(|_| slots.admit(flooder, 4).unwrap()).collect();
    for _ in 0..100 {
        slots.admit(flooder, 4).unwrap();
        assert!(slots.open.contains_key(&probe));
    }
    assert!(flood.iter().all(|id| !slots.open.contains_key(id)));
    // With as many of each waiting, the oldest goes.
    let mut slots = Slots::default();
    let first = slots.admit(flooder, 2).unwrap();
    let second = slots.admit(kubelet, 2).unwrap();
    slots.admit(kubelet, 2).unwrap();
    assert!(!slots.open.contains_key(&first) && slots.open.contains_key(&second));
}
