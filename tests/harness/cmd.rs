//! One run of `wasmvisor` whose output is its contract: the exact stdout, the exact stderr and
//! the exit status, all three compared, with a line diff of each that differs.
//!
//! ```ignore
//! Cmd::new(&home)
//!     .args(["add-upgrade", "v2", "/no/such/file"])
//!     .stderr("wasmvisor: /no/such/file: No such file or directory (os error 2)\n")
//!     .status(1)
//!     .run();
//! ```
//!
//! What is not said is expected empty (a stream) or 0 (the status), so a test that names only
//! stdout also asserts that nothing was written to stderr. What legitimately differs between
//! runs is written as a placeholder in the expected text, each standing for one thing:
//!
//! - `{home}`: the test's folder (`Home::path`), `{version}`: wasmvisor's version, and any
//!   `var("{name}", value)` the test declares: replaced by that exact text before comparing;
//! - `{duration}`: one duration as wasmvisor prints them (`1.5s`, `300ms`, `1m30s`), the only
//!   placeholder that matches more than one text.
//!
//! Any other `{` is literal (JSON compares as it is).

use std::io::Write;
use std::process::Stdio;

use super::Home;

/// Units of a printed duration, the longer one first where one is a prefix of another.
const UNITS: [&str; 8] = ["ns", "µs", "us", "ms", "s", "m", "h", "d"];

/// A command to run against a [`Home`] and the output it must give.
#[must_use = "a Cmd asserts nothing until .run()"]
pub struct Cmd<'h> {
    home: &'h Home,
    args: Vec<String>,
    env: Vec<(String, Option<String>)>,
    stdin: Option<Vec<u8>>,
    stdout: String,
    stderr: String,
    status: i32,
    vars: Vec<(String, String)>,
}

impl<'h> Cmd<'h> {
    /// `wasmvisor` with `home`'s environment, no arguments, stdin empty; expects nothing printed
    /// and status 0 until told otherwise.
    pub fn new(home: &'h Home) -> Cmd<'h> {
        Cmd {
            home,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            stdout: String::new(),
            stderr: String::new(),
            status: 0,
            vars: vec![
                ("{home}".into(), home.path.display().to_string()),
                ("{version}".into(), env!("CARGO_PKG_VERSION").into()),
            ],
        }
    }

    pub fn arg(mut self, arg: impl AsRef<str>) -> Self {
        self.args.push(arg.as_ref().into());
        self
    }

    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Sets one variable for this run only (over `home`'s).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Removes one of `home`'s variables for this run only.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.into(), None));
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// The exact stdout (with placeholders).
    pub fn stdout(mut self, text: impl Into<String>) -> Self {
        self.stdout = text.into();
        self
    }

    /// The exact stderr (with placeholders).
    pub fn stderr(mut self, text: impl Into<String>) -> Self {
        self.stderr = text.into();
        self
    }

    /// The exit status (a death by signal matches none).
    pub fn status(mut self, code: i32) -> Self {
        self.status = code;
        self
    }

    /// Declares a placeholder: `name` (written with its braces, `{bin}`) stands for `value`.
    pub fn var(mut self, name: &str, value: impl AsRef<str>) -> Self {
        assert!(
            name.starts_with('{') && name.ends_with('}') && name != "{duration}",
            "a placeholder is written {{name}} and {{duration}} is taken: {name}"
        );
        self.vars.push((name.into(), value.as_ref().into()));
        self
    }

    /// Runs the command; panics with a diff of every part that is not as expected.
    #[track_caller]
    pub fn run(self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut cmd = self.home.cmd(&args);
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("wasmvisor starts");
        // Written from a thread: a command that prints before it reads would block on a full pipe.
        let writer = self.stdin.clone().map(|bytes| {
            let mut pipe = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            })
        });
        let out = child.wait_with_output().expect("wasmvisor runs");
        if let Some(writer) = writer {
            writer.join().unwrap();
        }
        let stdout = utf8("stdout", out.stdout);
        let stderr = utf8("stderr", out.stderr);
        let mut report = String::new();
        if out.status.code() != Some(self.status) {
            let got = out
                .status
                .code()
                .map_or(out.status.to_string(), |c| c.to_string());
            report.push_str(&format!("status: expected {}, got {got}\n", self.status));
        }
        for (name, expected, actual) in [
            ("stdout", &self.stdout, &stdout),
            ("stderr", &self.stderr, &stderr),
        ] {
            let expected = template(expected, &self.vars);
            if !matches_all(&expected, actual) {
                report.push_str(&format!("{name} (- expected, + actual):\n"));
                report.push_str(&diff(&expected, actual));
            }
        }
        if !report.is_empty() {
            panic!(
                "`wasmvisor {}` did not give what was expected (placeholders expanded; {{home}} is {})\n{report}",
                self.args.join(" "),
                self.home.path.display()
            );
        }
    }
}

fn utf8(name: &str, bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{name} is not UTF-8: {:?}", e.into_bytes()))
}

/// A piece of one expected line.
#[derive(Debug)]
enum Seg {
    Text(String),
    Duration,
}

/// The expected text as lines (each with its `\n`, the last maybe without), the declared
/// placeholders replaced by their values.
fn template(text: &str, vars: &[(String, String)]) -> Vec<Vec<Seg>> {
    let mut segs = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{duration}") {
            segs.push(Seg::Text(std::mem::take(&mut literal)));
            segs.push(Seg::Duration);
            rest = &rest["{duration}".len()..];
        } else if let Some((name, value)) = vars.iter().find(|(n, _)| rest.starts_with(n.as_str()))
        {
            literal.push_str(value);
            rest = &rest[name.len()..];
        } else {
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    segs.push(Seg::Text(literal));
    let mut lines = vec![Vec::new()];
    for seg in segs {
        match seg {
            Seg::Duration => lines.last_mut().unwrap().push(Seg::Duration),
            Seg::Text(text) => {
                for piece in text.split_inclusive('\n') {
                    lines.last_mut().unwrap().push(Seg::Text(piece.into()));
                    if piece.ends_with('\n') {
                        lines.push(Vec::new());
                    }
                }
            }
        }
    }
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
}

fn matches_all(expected: &[Vec<Seg>], actual: &str) -> bool {
    let actual: Vec<&str> = actual.split_inclusive('\n').collect();
    expected.len() == actual.len() && expected.iter().zip(&actual).all(|(e, a)| matches(e, a))
}

/// Whether `line` is exactly `segs`, each `{duration}` matching one printed duration.
fn matches(segs: &[Seg], mut line: &str) -> bool {
    for seg in segs {
        match seg {
            Seg::Text(text) => match line.strip_prefix(text.as_str()) {
                Some(rest) => line = rest,
                None => return false,
            },
            Seg::Duration => match duration_len(line) {
                0 => return false,
                n => line = &line[n..],
            },
        }
    }
    line.is_empty()
}

/// The length of the duration `text` starts with (`1m30s`, `1.5s`, `300ms`), 0 when none.
fn duration_len(text: &str) -> usize {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let mut len = 0;
    loop {
        let rest = &text[len..];
        let mut n = digits(rest);
        if n == 0 {
            return len;
        }
        if rest[n..].starts_with('.') && digits(&rest[n + 1..]) > 0 {
            n += 1 + digits(&rest[n + 1..]);
        }
        match UNITS.iter().find(|u| rest[n..].starts_with(*u)) {
            Some(unit) => len += n + unit.len(),
            None => return len,
        }
    }
}

/// A line diff (longest common subsequence) of the expected lines and the actual text.
fn diff(expected: &[Vec<Seg>], actual: &str) -> String {
    let actual: Vec<&str> = actual.split_inclusive('\n').collect();
    let (n, m) = (expected.len(), actual.len());
    // common[i][j]: the longest common subsequence of expected[i..] and actual[j..].
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if matches(&expected[i], actual[j]) {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && matches(&expected[i], actual[j]) {
            out.push_str(&format!("  {}\n", show(actual[j])));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            out.push_str(&format!("- {}\n", show(&shown(&expected[i]))));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", show(actual[j])));
            j += 1;
        }
    }
    if n == 0 && m == 0 {
        out.push_str("  (empty)\n");
    }
    out
}

/// An expected line as text, `{duration}` kept.
fn shown(segs: &[Seg]) -> String {
    segs.iter()
        .map(|s| match s {
            Seg::Text(t) => t.as_str(),
            Seg::Duration => "{duration}",
        })
        .collect()
}

/// One line for the diff: as it is when plain, quoted when a difference could be invisible
/// (no newline at the end, trailing spaces, control characters).
fn show(line: &str) -> String {
    match line.strip_suffix('\n') {
        Some(body) if !body.ends_with([' ', '\t']) && !body.chars().any(char::is_control) => {
            body.into()
        }
        Some(body) => format!("{body:?}"),
        None => format!("{line:?} (no newline at the end)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![("{home}".into(), "/tmp/h".into())]
    }

    fn same(expected: &str, actual: &str) -> bool {
        matches_all(&template(expected, &vars()), actual)
    }

    #[test]
    fn a_placeholder_is_its_one_value_and_every_byte_counts() {
        assert!(same("at {home}/data\n", "at /tmp/h/data\n"));
        assert!(!same("at {home}/data\n", "at /tmp/x/data\n"));
        assert!(!same("at {home}/data\n", "at /tmp/h/data"));
        assert!(!same("at {home}/data\n", "at /tmp/h/data\n\n"));
        assert!(!same("at {home}/data\n", "at  /tmp/h/data\n"));
        assert!(same("", ""));
        assert!(!same("", "\n"));
        // Braces that name no placeholder are text.
        assert!(same("{\"a\":1} {other}\n", "{\"a\":1} {other}\n"));
    }

    #[test]
    fn a_duration_matches_a_printed_duration_only() {
        for ok in ["1.5s", "300ms", "1m30s", "1m0s", "2h", "12µs", "40ns"] {
            assert!(same("took {duration}.\n", &format!("took {ok}.\n")), "{ok}");
        }
        for bad in ["", "s", "1.5", "1.s", "fast", "1.5 s", "-1s"] {
            assert!(
                !same("took {duration}.\n", &format!("took {bad}.\n")),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_diff_marks_the_lines_that_differ() {
        let expected = template("a\nb {home}\nc\n", &vars());
        assert_eq!(
            diff(&expected, "a\nb /tmp/x\nc"),
            "  a\n- b /tmp/h\n- c\n+ b /tmp/x\n+ \"c\" (no newline at the end)\n"
        );
    }
}
