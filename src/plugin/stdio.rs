//! A plugin's stdout and stderr: the last bytes kept in memory up to a bound per call, what came
//! before counted and dropped (a plugin that prints too much is never stopped for it; the end,
//! where a panic message or traceback is, is what stays), then logged under the plugin's name and
//! quoted in the error of a failed call. This is how a Rust panic, a
//! JavaScript `throw` or a Python traceback reaches the operator instead of "unreachable".

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// What is kept of each stream per call.
pub const KEPT: usize = 16 * 1024;
/// How much of the output an error quotes (its end: where a panic message or traceback is).
pub const QUOTED: usize = 2048;

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    dropped: usize,
}

/// One captured stream, shared by every handle the plugin opens on it.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Buffer>>);

impl Captured {
    fn append(&self, bytes: &[u8]) {
        let mut b = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = if bytes.len() > KEPT {
            b.dropped += bytes.len() - KEPT;
            &bytes[bytes.len() - KEPT..]
        } else {
            bytes
        };
        b.bytes.extend_from_slice(bytes);
        let over = b.bytes.len().saturating_sub(KEPT);
        if over > 0 {
            b.bytes.drain(..over);
            b.dropped += over;
        }
    }

    /// What was written (lossy UTF-8), and how many bytes were dropped over the bound.
    pub fn take(&self) -> (String, usize) {
        let mut b = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&b.bytes).into_owned();
        let dropped = b.dropped;
        *b = Buffer::default();
        (text, dropped)
    }
}

impl IsTerminal for Captured {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Captured {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    // Written synchronously: nothing is in flight when the call returns and the host reads it.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl OutputStream for Captured {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: what does not fit is counted and dropped, never blocks the plugin.
        Ok(64 * 1024)
    }
}

impl Pollable for Captured {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(std::future::ready(()))
    }
}

/// The end of `text`, at most `QUOTED` bytes, cut at a character boundary.
pub fn tail(text: &str) -> &str {
    let text = text.trim_end();
    if text.len() <= QUOTED {
        return text;
    }
    let mut start = text.len() - QUOTED;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_bytes_and_counts_what_came_before() {
        let c = Captured::default();
        c.append(&vec![b'a'; KEPT - 1]);
        c.append(b"bcd");
        let (text, dropped) = c.take();
        assert_eq!(text.len(), KEPT);
        assert!(text.starts_with("aa") && text.ends_with("abcd"));
        assert_eq!(dropped, 2);
        assert_eq!(c.take(), (String::new(), 0));
        // One write larger than the bound keeps its end.
        let mut big = vec![b'x'; KEPT * 2];
        big.extend_from_slice(b"Traceback: boom");
        c.append(&big);
        let (text, dropped) = c.take();
        assert!(text.ends_with("Traceback: boom") && text.len() == KEPT);
        assert_eq!(dropped, KEPT + "Traceback: boom".len());
    }

    #[test]
    fn the_quoted_tail_is_cut_on_a_character() {
        let long = format!("{}{}", "é".repeat(QUOTED), "end\n");
        let t = tail(&long);
        assert!(t.len() <= QUOTED && t.ends_with("end"));
        assert_eq!(tail("short\n"), "short");
    }
}
