//! The observability listener (`WASMVISOR_METRICS_ADDRESS`): `GET /metrics` (Prometheus text),
//! `GET /readyz` (200 when the node runs, no upgrade is under way and the last health verdict is
//! not unhealthy; 503 with the reason otherwise) and `GET /livez` (200 while the supervisor's
//! loop is alive). Plain HTTP/1.1, one request per connection, bounded reads and timeouts: a
//! scraper cannot hold the supervisor, and idle clients cannot starve the probes — when every
//! slot is taken, the oldest connection that has not yet sent its request head (of the client
//! that has most of them) is closed to make room for the new one: a kubelet or Prometheus sends
//! its head at once, a connection that sends nothing is the one to go.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::Observer;

/// The most a request head may take.
const MAX_HEAD: usize = 8192;
/// The time from accept to a complete request head: a client that has connected has its head
/// ready (a probe or a scraper writes it with the connection), so this is many round trips.
const HEAD_TIMEOUT: Duration = Duration::from_millis(500);
/// The most a connection may take in all, from accept to the last byte of the answer.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections served at once (a scraper and two probes need three). With all taken, a new one
/// evicts the oldest that is still waiting for its head (of the client with the most of
/// those), and is closed only if every one of them is being answered (which takes a moment,
/// never longer than `READ_TIMEOUT`).
const MAX_CONNECTIONS: usize = 16;

/// Serves the probes and metrics on `listener` until the runtime ends.
pub async fn serve(listener: TcpListener, observer: Observer) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    loop {
        let Ok((mut socket, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let accepted = Instant::now();
        let Some(id) = slots
            .lock()
            .ok()
            .and_then(|mut s| s.admit(peer.ip().to_canonical(), MAX_CONNECTIONS))
        else {
            drop(socket);
            continue;
        };
        let observer = observer.clone();
        let release = Release {
            slots: slots.clone(),
            id,
        };
        let task = tokio::spawn(async move {
            let heard = || release.answering();
            let _ = tokio::time::timeout_at(
                accepted + READ_TIMEOUT,
                answer(&mut socket, &observer, accepted + HEAD_TIMEOUT, heard),
            )
            .await;
            drop(release);
        });
        if let Ok(mut s) = slots.lock() {
            s.started(id, task.abort_handle());
        }
        // Let the connections accepted so far read what they were sent before the next accept
        // (which may evict one of them): a flood of connections cannot take the place of a
        // probe whose head is already there.
        tokio::task::yield_now().await;
    }
}

/// The connections being served, oldest first (ids only grow).
#[derive(Default)]
struct Slots {
    next: u64,
    open: BTreeMap<u64, Slot>,
}

struct Slot {
    peer: IpAddr,
    /// Its request head is complete: it is being answered, and is not evicted.
    answering: bool,
    /// Ends its task (and closes its socket); `None` until the task is spawned.
    abort: Option<AbortHandle>,
}

impl Slots {
    /// Makes room for a new connection from `peer`, at most `limit` open: its id, or `None`
    /// when every open connection is being answered. The oldest connection still waiting for its
    /// head is evicted, of the peer with the most of them: a client that opens many pushes out
    /// its own, not the kubelet's or the scraper's.
    fn admit(&mut self, peer: IpAddr, limit: usize) -> Option<u64> {
        if self.open.len() >= limit {
            let mut waiting: HashMap<IpAddr, usize> = HashMap::new();
            for slot in self.open.values().filter(|slot| !slot.answering) {
                let n = waiting.entry(slot.peer).or_default();
                *n = n.saturating_add(1);
            }
            let most = *waiting.values().max()?;
            let oldest = self
                .open
                .iter()
                .find(|(_, slot)| !slot.answering && waiting.get(&slot.peer) == Some(&most))
                .map(|(id, _)| *id)?;
            if let Some(Slot {
                abort: Some(abort), ..
            }) = self.open.remove(&oldest)
            {
                abort.abort();
            }
        }
        let id = self.next;
        // 2^64 connections: ids stay ordered for the life of any process.
        self.next = self.next.wrapping_add(1);
        self.open.insert(
            id,
            Slot {
                peer,
                answering: false,
                abort: None,
            },
        );
        Some(id)
    }

    /// `id`'s task runs: it can be evicted. Nothing when it has already ended.
    fn started(&mut self, id: u64, abort: AbortHandle) {
        if let Some(slot) = self.open.get_mut(&id) {
            slot.abort = Some(abort);
        }
    }

    fn answering(&mut self, id: u64) {
        if let Some(slot) = self.open.get_mut(&id) {
            slot.answering = true;
        }
    }
}

/// Frees a connection's slot when its task ends, however it ends (answered, timed out, evicted).
struct Release {
    slots: Arc<Mutex<Slots>>,
    id: u64,
}

impl Release {
    fn answering(&self) {
        if let Ok(mut s) = self.slots.lock() {
            s.answering(self.id);
        }
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if let Ok(mut s) = self.slots.lock() {
            s.open.remove(&self.id);
        }
    }
}

/// Reads a request head by `head_by`, tells `heard` and writes the answer. A head that is not
/// complete by then closes the connection unanswered.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut S,
    observer: &Observer,
    head_by: Instant,
    heard: impl FnOnce(),
) -> std::io::Result<()> {
    let head = tokio::time::timeout_at(head_by, read_head(socket))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    heard();
    socket.write_all(&respond(&head, observer)).await?;
    socket.shutdown().await
}

/// The bytes up to the blank line that ends a request head, at most `MAX_HEAD` of them (what
/// came by the end of the stream, if it ended first).
async fn read_head<S: AsyncRead + Unpin>(socket: &mut S) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let room = MAX_HEAD.saturating_sub(head.len()).min(chunk.len());
        if room == 0 {
            return Ok(head);
        }
        let n = socket.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Ok(head);
        }
        // The blank line may straddle two reads: look from three bytes before the new ones.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        if head
            .get(from..)
            .is_some_and(|new| new.windows(4).any(|w| w == b"\r\n\r\n"))
        {
            return Ok(head);
        }
    }
}

/// The whole answer to a request head, whatever its bytes: a status line, headers and a body of
/// the length they say.
fn respond(head: &[u8], observer: &Observer) -> Vec<u8> {
    let line = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or(&[]));
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
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
