//! What wasmvisor prints, and how: output that can never take the supervisor down and text from
//! outside (plan names, plugin messages) that can never write its own lines or drive a terminal.

use std::borrow::Cow;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Escapes control characters (newlines, carriage returns, terminal escapes, …) as Rust escapes
/// them in strings, so a name shown on one line stays one line and plain text.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape_except(text, &[])
}

/// The same, keeping the listed characters (a multi-line message of wasmvisor's own keeps `\n`).
pub fn escape_except<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !text.chars().any(|c| c.is_control() && !keep.contains(&c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && !keep.contains(&c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// At most `max` characters of `text`, with `…` when it was cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Prints a line on stdout. A reader that went away (`| head`) ends the output quietly; any other
/// failure (a full disk) is an error for the command to report. (A `String` error: only the
/// commands print, and what they do with it is show it.)
pub fn line(text: impl Display) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

/// Prints text on stdout as it is (no newline added), like [`line`].
pub fn text(text: impl Display) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match write!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

/// Prints a message of wasmvisor's on stderr. Never fails: a node must run even when nobody can
/// read wasmvisor's messages (stderr on a full disk, a closed pipe, /dev/full).
pub fn error(text: impl Display) {
    let text = text.to_string();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", escape_except(&text, &['\n', '\t']));
}

/// Progress of a long transfer or copy: a bar on a terminal, a log line every few seconds
/// otherwise. Decoration only: a terminal that cannot take it is no error.
pub struct Progress {
    label: String,
    /// What is being done, and what was done (`downloading`, `downloaded`).
    doing: &'static str,
    done: &'static str,
    /// Bytes in all (0: not known).
    total: u64,
    /// Bytes dealt with so far, and of those the ones moved (copied, received).
    reached: u64,
    moved: u64,
    started: Instant,
    last: Instant,
    terminal: bool,
}

impl Progress {
    pub fn new(label: &str, total: u64, doing: &'static str, done: &'static str) -> Progress {
        Progress {
            label: label.to_string(),
            doing,
            done,
            total,
            reached: 0,
            moved: 0,
            started: Instant::now(),
            last: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// `n` more bytes moved.
    pub fn advance(&mut self, n: u64) {
        self.moved += n;
        self.reached += n;
        self.show();
    }

    /// `n` more bytes dealt with without moving them (linked, already there).
    pub fn skip(&mut self, n: u64) {
        self.reached += n;
        self.show();
    }

    fn show(&mut self) {
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.moved as f64 / secs / (1 << 20) as f64;
        let mib = self.reached as f64 / (1 << 20) as f64;
        if self.terminal {
            let filled = (self.reached.min(self.total) * 30)
                .checked_div(self.total)
                .map_or((mib as usize % 30) + 1, |f| f as usize);
            let of = if self.total > 0 {
                format!(" of {:.1}", self.total as f64 / (1 << 20) as f64)
            } else {
                String::new()
            };
            let _ = write!(
                std::io::stderr(),
                "\r{} [{:<30}] {mib:.1}{of} MiB {rate:.1} MiB/s",
                self.label,
                "#".repeat(filled)
            );
        } else {
            tracing::info!(
                what = %self.label,
                bytes = self.reached,
                total = self.total,
                rate_mib_s = format!("{rate:.1}"),
                "{}",
                self.doing
            );
        }
    }

    pub fn finish(&self) {
        if self.terminal && self.last != self.started {
            let _ = writeln!(std::io::stderr());
        }
        tracing::info!(what = %self.label, bytes = self.reached, took = ?self.started.elapsed(), "{}", self.done);
    }
}

/// Makes sure descriptors 0, 1 and 2 are open (on /dev/null if not), so no file wasmvisor opens
/// later can take their numbers and receive its output.
pub fn ensure_standard_fds() {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    for fd in 0..=2 {
        // SAFETY: only checks whether the descriptor number is in use.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        if fcntl(borrowed, FcntlArg::F_GETFD).is_err() {
            let mode = if fd == 0 {
                OFlag::O_RDONLY
            } else {
                OFlag::O_WRONLY
            };
            // The lowest free number is `fd` itself: every lower one is open by now.
            if let Ok(null) = nix::fcntl::open(
                "/dev/null",
                mode | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            ) {
                // Keep it open for the life of the process, without close-on-exec so the node
                // inherits a valid descriptor too.
                let _ = fcntl(&null, FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()));
                std::mem::forget(null);
            }
        }
    }
}

/// A value as TOML writes it (the `toml` crate's own writer is left out of the build: this is
/// all of it wasmvisor uses): pinned keys, and the numbers, booleans and lists of a plugin's
/// `config`.
pub fn toml_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => {
            let mut out = String::with_capacity(s.len() + 2);
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_nan() => "nan".into(),
        toml::Value::Float(f) if f.is_infinite() => (if *f > 0.0 { "inf" } else { "-inf" }).into(),
        // The shortest form that reads back the same (ryu, through serde_json, which links
        // it anyway): `2.0`, `1.5`, `1e300`, all TOML floats.
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or_else(String::new, |n| n.to_string())
        }
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(t) => {
            let pairs: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_value(v)))
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }
    }
}

/// A key, bare when TOML allows it.
fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match bare {
        true => k.to_string(),
        false => toml_value(&toml::Value::String(k.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("v2"), "v2");
        assert_eq!(escape_controls("v2\nINF forged"), "v2\\nINF forged");
        assert_eq!(escape_controls("\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape_except("a\nb\x07", &['\n']), "a\nb\\u{7}");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
    }
}
