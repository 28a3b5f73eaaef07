//! What systemd, Prometheus and Kubernetes see: the notify protocol on a real datagram socket,
//! the metrics scraped during a real upgrade and parsed by a Prometheus text parser, the probes,
//! completions, and wasmvisor as PID 1 of a PID namespace; the exposition checked by Prometheus'
//! own `promtool`.

mod ahead;
pub(crate) mod metrics;
pub(crate) mod system;

use std::io::{Read, Write};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A `/livez` as a kubelet sends it: its status, or why there was none (refused, reset, closed
/// unanswered, too slow).
fn probe(port: u16) -> Result<u16, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.33\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    s.read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no answer: {response:?}"))
}
