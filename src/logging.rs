//! The supervisor's own log lines: Cosmovisor's console look (`3:04PM INF message key=value`),
//! honouring `COSMOVISOR_DISABLE_LOGS`, `COSMOVISOR_COLOR_LOGS` and `COSMOVISOR_TIMEFORMAT_LOGS`,
//! or one JSON object per line with `--log-format json`. Logs go to stderr; the node's output is
//! inherited and never passes through here.

use std::fmt::{self, Write as _};

use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl LogFormat {
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        }
    }
}

/// Go's named time layouts, as Cosmovisor accepts them. Timestamps are printed in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    Layout,
    Ansic,
    UnixDate,
    RubyDate,
    Rfc822,
    Rfc822z,
    Rfc850,
    Rfc1123,
    Rfc1123z,
    Rfc3339,
    Rfc3339Nano,
    Kitchen,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl TimeFormat {
    pub const ALL: [TimeFormat; 12] = [
        TimeFormat::Layout,
        TimeFormat::Ansic,
        TimeFormat::UnixDate,
        TimeFormat::RubyDate,
        TimeFormat::Rfc822,
        TimeFormat::Rfc822z,
        TimeFormat::Rfc850,
        TimeFormat::Rfc1123,
        TimeFormat::Rfc1123z,
        TimeFormat::Rfc3339,
        TimeFormat::Rfc3339Nano,
        TimeFormat::Kitchen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TimeFormat::Layout => "layout",
            TimeFormat::Ansic => "ansic",
            TimeFormat::UnixDate => "unixdate",
            TimeFormat::RubyDate => "rubydate",
            TimeFormat::Rfc822 => "rfc822",
            TimeFormat::Rfc822z => "rfc822z",
            TimeFormat::Rfc850 => "rfc850",
            TimeFormat::Rfc1123 => "rfc1123",
            TimeFormat::Rfc1123z => "rfc1123z",
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::Rfc3339Nano => "rfc3339nano",
            TimeFormat::Kitchen => "kitchen",
        }
    }

    pub fn from_name(name: &str) -> Option<TimeFormat> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    pub fn render(self, t: OffsetDateTime) -> String {
        let (y, mo, d) = (t.year(), t.month() as usize, t.day());
        let (h, mi, s) = (t.hour(), t.minute(), t.second());
        let mon = MONTHS[mo - 1];
        let wd = t.weekday();
        let wd_short = &wd.to_string()[..3];
        let y2 = y.rem_euclid(100);
        let h12 = match h % 12 {
            0 => 12,
            x => x,
        };
        let ampm = if h < 12 { "AM" } else { "PM" };
        match self {
            TimeFormat::Layout => {
                format!("{mo:02}/{d:02} {h12:02}:{mi:02}:{s:02}{ampm} '{y2:02} +0000")
            }
            TimeFormat::Ansic => format!("{wd_short} {mon} {d:>2} {h:02}:{mi:02}:{s:02} {y}"),
            TimeFormat::UnixDate => {
                format!("{wd_short} {mon} {d:>2} {h:02}:{mi:02}:{s:02} UTC {y}")
            }
            TimeFormat::RubyDate => {
                format!("{wd_short} {mon} {d:02} {h:02}:{mi:02}:{s:02} +0000 {y}")
            }
            TimeFormat::Rfc822 => format!("{d:02} {mon} {y2:02} {h:02}:{mi:02} UTC"),
            TimeFormat::Rfc822z => format!("{d:02} {mon} {y2:02} {h:02}:{mi:02} +0000"),
            TimeFormat::Rfc850 => format!("{wd}, {d:02}-{mon}-{y2:02} {h:02}:{mi:02}:{s:02} UTC"),
            TimeFormat::Rfc1123 => {
                format!("{wd_short}, {d:02} {mon} {y} {h:02}:{mi:02}:{s:02} UTC")
            }
            TimeFormat::Rfc1123z => {
                format!("{wd_short}, {d:02} {mon} {y} {h:02}:{mi:02}:{s:02} +0000")
            }
            TimeFormat::Rfc3339 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
            TimeFormat::Rfc3339Nano => {
                let nanos = format!("{:09}", t.nanosecond());
                let nanos = nanos.trim_end_matches('0');
                let dot = if nanos.is_empty() { "" } else { "." };
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{dot}{nanos}Z")
            }
            TimeFormat::Kitchen => format!("{h12}:{mi:02}{ampm}"),
        }
    }
}

/// A time in seconds since the Unix epoch as RFC 3339 (UTC), for operators.
pub fn rfc3339(unix_seconds: u64) -> String {
    i64::try_from(unix_seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map_or_else(
            || format!("{unix_seconds} s after 1970"),
            |t| TimeFormat::Rfc3339.render(t),
        )
}

/// Logging settings, taken from the configuration when it loads (and defaults before that).
#[derive(Debug, Clone, Copy)]
pub struct LogSettings {
    pub disabled: bool,
    pub color: bool,
    pub time_format: Option<TimeFormat>,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            disabled: false,
            color: true,
            time_format: Some(TimeFormat::Kitchen),
            format: LogFormat::Human,
        }
    }
}

/// Installs the global subscriber. Colour is used only when asked for and stderr is a terminal.
pub fn init(settings: LogSettings) {
    use std::io::IsTerminal;
    if settings.disabled {
        return;
    }
    // A log line that cannot be written is dropped: the default would report that on stderr
    // with a panicking print, and logging must never take the supervisor down.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .with_max_level(Level::DEBUG);
    let result = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_max_level(Level::INFO)
            .try_init(),
        LogFormat::Human => builder
            .with_max_level(Level::INFO)
            .event_format(Console {
                color: settings.color && std::io::stderr().is_terminal(),
                time_format: settings.time_format,
            })
            .try_init(),
    };
    // A second init (tests calling into the library twice) keeps the first subscriber.
    let _ = result;
}

struct Console {
    color: bool,
    time_format: Option<TimeFormat>,
}

impl<S, N> FormatEvent<S, N> for Console
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Some(tf) = self.time_format {
            let now = OffsetDateTime::now_utc();
            if self.color {
                write!(w, "\x1b[90m{}\x1b[0m ", tf.render(now))?;
            } else {
                write!(w, "{} ", tf.render(now))?;
            }
        }
        let (tag, color) = match *event.metadata().level() {
            Level::ERROR => ("ERR", "\x1b[31m"),
            Level::WARN => ("WRN", "\x1b[33m"),
            Level::INFO => ("INF", "\x1b[32m"),
            Level::DEBUG => ("DBG", "\x1b[35m"),
            Level::TRACE => ("TRC", "\x1b[35m"),
        };
        if self.color {
            write!(w, "{color}{tag}\x1b[0m ")?;
        } else {
            write!(w, "{tag} ")?;
        }
        let mut fields = Fields {
            message: String::new(),
            rest: String::new(),
            color: self.color,
        };
        event.record(&mut fields);
        // One event, one line: names and plugin texts cannot add lines or drive a terminal.
        writeln!(
            w,
            "{}{} module=wasmvisor",
            crate::output::escape_controls(&fields.message),
            fields.rest
        )
    }
}

struct Fields {
    message: String,
    rest: String,
    color: bool,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.push(field.name(), &quote(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.push(field.name(), &quote(&format!("{value:?}")));
        }
    }
}

impl Fields {
    fn push(&mut self, name: &str, value: &str) {
        if self.color {
            let _ = write!(self.rest, " \x1b[36m{name}=\x1b[0m{value}");
        } else {
            let _ = write!(self.rest, " {name}={value}");
        }
    }
}

fn quote(value: &str) -> String {
    if value.is_empty()
        || value.contains(|c: char| c.is_whitespace() || c.is_control() || c == '"' || c == '=')
    {
        // Debug quoting escapes every control character.
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn renders_go_layouts() {
        let t = datetime!(2006-01-02 15:04:05.123 UTC);
        assert_eq!(TimeFormat::Kitchen.render(t), "3:04PM");
        assert_eq!(TimeFormat::Ansic.render(t), "Mon Jan  2 15:04:05 2006");
        assert_eq!(TimeFormat::Rfc3339.render(t), "2006-01-02T15:04:05Z");
        assert_eq!(
            TimeFormat::Rfc3339Nano.render(t),
            "2006-01-02T15:04:05.123Z"
        );
        assert_eq!(
            TimeFormat::Rfc1123.render(t),
            "Mon, 02 Jan 2006 15:04:05 UTC"
        );
        assert_eq!(
            TimeFormat::Rfc850.render(t),
            "Monday, 02-Jan-06 15:04:05 UTC"
        );
        assert_eq!(TimeFormat::Layout.render(t), "01/02 03:04:05PM '06 +0000");
        assert_eq!(
            TimeFormat::Kitchen.render(datetime!(2006-01-02 00:07:00 UTC)),
            "12:07AM"
        );
    }

    #[test]
    fn names_round_trip() {
        for f in TimeFormat::ALL {
            assert_eq!(TimeFormat::from_name(f.name()), Some(f));
        }
        assert_eq!(TimeFormat::from_name("RFC3339"), Some(TimeFormat::Rfc3339));
    }
}
