//! The observability listener (`WASMVISOR_METRICS_ADDRESS`): `GET /metrics` (Prometheus text),
//! `GET /readyz` (200 when the node runs, no upgrade is under way and the last health verdict is
//! not unhealthy; 503 with the reason otherwise) and `GET /livez` (200 while the supervisor's
//! loop is alive). Plain HTTP/1.1, one request per connection, bounded reads and a timeout: a
//! scraper cannot hold the supervisor.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Observer;

/// The most a request head may take.
const MAX_HEAD: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections answered at once; more are closed at once (a scraper and two probes need three).
const MAX_CONNECTIONS: usize = 16;

/// Serves the probes and metrics on `listener` until the runtime ends.
pub async fn serve(listener: TcpListener, observer: Observer) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(socket);
            continue;
        };
        let observer = observer.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT, answer(socket, &observer)).await;
            drop(slot);
        });
    }
}

async fn answer(mut socket: TcpStream, observer: &Observer) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let line =
        String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or(&[])).into_owned();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            observer.metrics(),
        ),
        ("GET", "/readyz") => match observer.readiness() {
            Ok(what) => (
                "200 OK",
                "text/plain; charset=utf-8",
                format!("ready: {what}\n"),
            ),
            Err(why) => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("not ready: {why}\n"),
            ),
        },
        ("GET", "/livez") if observer.alive() => {
            ("200 OK", "text/plain; charset=utf-8", "alive\n".into())
        }
        ("GET", "/livez") => (
            "503 Service Unavailable",
            "text/plain; charset=utf-8",
            "the supervisor's loop has ended\n".into(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: /metrics, /readyz, /livez\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".into(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}
