//! The observability listener (`WASMVISOR_METRICS_ADDRESS`): `GET /metrics` (Prometheus text),
//! `GET /readyz` (200 when the node runs, no upgrade is under way and the last health verdict is
//! not unhealthy; 503 with the reason otherwise), `GET /livez` (200 while the supervisor's
//! loop is alive) and `GET /status` (the `status --json` document; 503 while there is none).
//! Plain HTTP/1.1, one request per connection, bounded reads and timeouts: a
//! scraper cannot hold the supervisor, and idle clients cannot starve the probes — when every
//! slot is taken, the oldest connection that has not yet sent its request head (of the client
//! that has most of them) is closed to make room for the new one: a kubelet or Prometheus sends
//! its head at once, a connection that sends nothing is the one to go.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
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
/// The most the status document may take to make (it reads the home's files, off the runtime):
/// the answer is due within `READ_TIMEOUT` of the accept, the head within `HEAD_TIMEOUT`.
const STATUS_DEADLINE: Duration = Duration::from_secs(1);
/// Status documents being made at once: one that hangs (a stuck disk) holds a blocking thread
/// until it returns, so at most this many threads can be held; more requests are told to wait.
const MAX_STATUS_CALLS: usize = 2;
/// The most bytes a status document may have, and the most characters of an error shown.
const MAX_STATUS: usize = 1 << 20;
const MAX_STATUS_ERROR: usize = 1000;

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
    let (method, path) = request_line(&head);
    let document = match (method.as_str(), path.as_str()) {
        ("GET", "/status") => Some(status_document(observer).await),
        _ => None,
    };
    socket
        .write_all(&respond(&head, observer, document))
        .await?;
    socket.shutdown().await
}

/// A place among the `MAX_STATUS_CALLS` status documents being made; freed when the call it was
/// taken for returns (which may be long after its request was answered).
struct StatusCall(Observer);

impl StatusCall {
    fn take(observer: &Observer) -> Option<StatusCall> {
        observer
            .0
            .status_calls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_STATUS_CALLS).then_some(n + 1)
            })
            .ok()
            .map(|_| StatusCall(observer.clone()))
    }
}

impl Drop for StatusCall {
    fn drop(&mut self) {
        self.0.0.status_calls.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The status document from the observer's source, called on a blocking thread within
/// `STATUS_DEADLINE`, or why there is none.
async fn status_document(observer: &Observer) -> Result<String, String> {
    let source = observer
        .status_source()
        .ok_or("no status document yet: the supervisor is starting")?;
    let call = StatusCall::take(observer)
        .ok_or("busy: the status documents asked for before have not been made yet")?;
    let made = tokio::task::spawn_blocking(move || {
        let _call = call;
        source()
    });
    let document = match tokio::time::timeout(STATUS_DEADLINE, made).await {
        Err(_) => Err(format!(
            "the status document took longer than {} s to make",
            STATUS_DEADLINE.as_secs()
        )),
        Ok(Err(_)) => Err("the status document could not be made".to_string()),
        Ok(Ok(document)) => document,
    }?;
    if document.len() > MAX_STATUS {
        return Err(format!(
            "the status document has {} bytes, more than the {MAX_STATUS} this listener answers with",
            document.len()
        ));
    }
    Ok(document)
}

/// The method and path (without its query) of a request head, empty when it has none.
fn request_line(head: &[u8]) -> (String, String) {
    let line = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or(&[]));
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    (
        method.to_string(),
        target.split('?').next().unwrap_or("").to_string(),
    )
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
/// the length they say. `status`: the status document, when the head asks for it.
fn respond(head: &[u8], observer: &Observer, document: Option<Result<String, String>>) -> Vec<u8> {
    let (method, path) = request_line(head);
    let (status, content_type, body) = match (method.as_str(), path.as_str()) {
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
        ("GET", "/status") => match document {
            Some(Ok(document)) => ("200 OK", "application/json", document),
            Some(Err(why)) => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("no status: {}\n", shorten(&why, MAX_STATUS_ERROR)),
            ),
            None => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                "no status: it was not asked for\n".into(),
            ),
        },
        ("GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: /metrics, /readyz, /livez, /status\n".into(),
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

/// At most `max` characters of `text`, with `…` when it was cut.
fn shorten(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
