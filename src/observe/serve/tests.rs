use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use std::sync::Arc;
use std::sync::atomic::Ordering;

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
    assert!(respond(&head, &Observer::new(), None).starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn each_path_has_its_answer() {
    let observer = Observer::new();
    let answer = |head: &str| String::from_utf8(respond(head.as_bytes(), &observer, None)).unwrap();
    let livez = answer("GET /livez?verbose HTTP/1.1\r\n\r\n");
    assert!(livez.starts_with("HTTP/1.1 200 OK\r\n"), "{livez}");
    assert!(livez.contains("\r\nContent-Length: 6\r\n"), "{livez}");
    assert!(answer("GET /readyz HTTP/1.1\r\n\r\n").contains("503"));
    assert!(answer("GET /readyz HTTP/1.1\r\n\r\n").ends_with("not ready: starting\n"));
    let metrics = answer("GET /metrics HTTP/1.1\r\n\r\n");
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert!(metrics.contains("wasmvisor_node_up"), "{metrics}");
    assert!(answer("GET /nothing HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    assert!(
        answer("GET /nothing HTTP/1.1\r\n\r\n")
            .ends_with("not found: /metrics, /readyz, /livez, /status\n")
    );
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

/// The whole answer to a GET of `path` through the listener's own reading and writing.
async fn exchange(observer: &Observer, path: &str) -> String {
    let (mut client, mut server) = tokio::io::duplex(4 << 20);
    client
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let deadline = Instant::now() + HEAD_TIMEOUT;
    answer(&mut server, observer, deadline, || {})
        .await
        .unwrap();
    drop(server);
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    String::from_utf8(got).unwrap()
}

#[tokio::test]
async fn status_answers_the_document_of_its_source_as_json() {
    let observer = Observer::new();
    let without = exchange(&observer, "/status").await;
    assert!(
        without.starts_with("HTTP/1.1 503 Service Unavailable\r\n")
            && without.ends_with(
                "\r\n\r\nno status: no status document yet: the supervisor is starting\n"
            ),
        "{without}"
    );
    let document = r#"{"version":1,"next_upgrade":{"name":"v2","ready":true}}"#;
    observer.set_status_source(Box::new(move || Ok(document.to_string())));
    let with = exchange(&observer, "/status?pretty").await;
    assert_eq!(
        with,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{document}",
            document.len()
        )
    );
    // Like every other path, only GET.
    let head = respond(b"HEAD /status HTTP/1.1\r\n\r\n", &observer, None);
    assert!(head.starts_with(b"HTTP/1.1 405 "));
}

#[tokio::test]
async fn a_failing_or_oversized_status_document_is_a_503_with_a_bounded_reason() {
    let observer = Observer::new();
    observer.set_status_source(Box::new(|| {
        Err(format!(
            "cannot read upgrades/v2/upgrade-info.json: {}",
            "x".repeat(5000)
        ))
    }));
    let failed = exchange(&observer, "/status").await;
    assert!(failed.starts_with("HTTP/1.1 503 "), "{failed}");
    let body = failed.split_once("\r\n\r\n").unwrap().1;
    assert!(
        body.starts_with("no status: cannot read upgrades/v2/upgrade-info.json: xxx")
            && body.ends_with("x…\n")
            && body.chars().count() < MAX_STATUS_ERROR + 20,
        "{} characters",
        body.chars().count()
    );
    observer.set_status_source(Box::new(|| Ok("[".repeat(MAX_STATUS + 1))));
    let large = exchange(&observer, "/status").await;
    assert!(large.starts_with("HTTP/1.1 503 "), "{}", &large[..200]);
    assert!(large.contains("more than the 1048576 this listener answers with"));
    observer.set_status_source(Box::new(|| panic!("a bug in the status document")));
    let panicked = exchange(&observer, "/status").await;
    assert!(
        panicked.ends_with("no status: the status document could not be made\n"),
        "{panicked}"
    );
}

#[tokio::test]
async fn a_status_source_that_hangs_is_cut_at_its_deadline_and_cannot_take_more_threads() {
    let (port, observer) = start().await;
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let hold = std::sync::Mutex::new(hold);
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    observer.set_status_source(Box::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        // Hangs until the test lets it go (a stuck disk).
        let _ = hold.lock().unwrap().recv();
        Ok("{}".into())
    }));
    let began = Instant::now();
    let (code, text) = get(port, "/status").await.unwrap();
    assert_eq!(code, 503, "{text}");
    assert!(text.ends_with("no status: the status document took longer than 1 s to make\n"));
    let took = began.elapsed();
    assert!(
        took >= STATUS_DEADLINE && took < STATUS_DEADLINE + Duration::from_millis(500),
        "{took:?}"
    );
    // The probes are answered meanwhile; the hung call still holds its place. One more may be
    // made (it hangs on the same lock); past the bound, the answer is at once.
    assert!(matches!(get(port, "/livez").await, Ok((200, _))));
    let _ = get(port, "/status").await.unwrap();
    let began = Instant::now();
    let (code, text) = get(port, "/status").await.unwrap();
    assert_eq!(code, 503);
    assert!(text.contains("busy"), "{text}");
    assert!(
        began.elapsed() < Duration::from_millis(200),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), MAX_STATUS_CALLS);
    // Once the calls return, their places are free again.
    for _ in 0..MAX_STATUS_CALLS {
        release.send(()).unwrap();
    }
    drop(release);
    let mut code = 0;
    for _ in 0..50 {
        code = get(port, "/status").await.unwrap().0;
        if code == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(code, 200);
}
