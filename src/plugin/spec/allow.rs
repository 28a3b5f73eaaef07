//! `allow-hosts` entries: which hosts a plugin may reach, and on which port. Each entry is parsed
//! once, when `plugins.toml` is read, into a typed pattern: a port is a number from 1 to 65535 or
//! absent ("any port") — never "whatever did not parse", which would let a mistyped
//! `127.0.0.1:26657` reach every port of the host (the node's RPC, gRPC, a remote signer).
//! The `http` import and wasi:http match every request against these patterns alone.

use std::fmt;
use std::net::Ipv6Addr;

/// What `allow-hosts` accepts, for the error of an entry that is none of it.
pub const ACCEPTED: &str = "host, host:port, [IPv6], [IPv6]:port, *.domain, *.domain:port, * or \
                            *:port, a port being a decimal number from 1 to 65535";

/// One `allow-hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowHost {
    pub host: HostPattern,
    /// `None`: any port of the host.
    pub port: Option<u16>,
}

/// The host part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// `*.domain`: any name under `domain`, not `domain` itself (lowercase).
    Under(String),
    /// A host name or IPv4 address (lowercase).
    Name(String),
    /// `[IPv6]`, compared as an address (`[::1]` is `[0:0::1]`).
    V6(Ipv6Addr),
}

/// What is wrong with an `allow-hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowHostError {
    #[error("the [ of an IPv6 address is not closed by ]")]
    Unclosed,
    #[error("{0:?} is not an IPv6 address")]
    NotV6(String),
    #[error("{0:?} after the ]: only :port may follow")]
    AfterBracket(String),
    #[error("an IPv6 address is written in brackets: [::1] or [::1]:8080")]
    V6Unbracketed,
    #[error("no host before the port (any host on port {0} is *:{0})")]
    NoHost(u16),
    #[error("it is empty")]
    Empty,
    #[error("the port after : is missing")]
    NoPort,
    #[error("port {0:?} is not a decimal number")]
    PortNotDecimal(String),
    #[error("port {0} is not from 1 to 65535")]
    PortRange(String),
    #[error("{0:?} is not a host name or IPv4 address")]
    NotName(String),
}

impl AllowHost {
    /// Any host, any port: the bundled plugins' default.
    pub const ANY: AllowHost = AllowHost {
        host: HostPattern::Any,
        port: None,
    };

    /// Parses one entry; the error says what is wrong with it.
    pub fn parse(entry: &str) -> Result<AllowHost, AllowHostError> {
        if let Some(rest) = entry.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or(AllowHostError::Unclosed)?;
            let addr: Ipv6Addr = inside
                .parse()
                .map_err(|_| AllowHostError::NotV6(inside.into()))?;
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(parse_port(port)?),
                    None => return Err(AllowHostError::AfterBracket(after.into())),
                },
            };
            return Ok(AllowHost {
                host: HostPattern::V6(addr),
                port,
            });
        }
        let (host, port) = match entry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err(AllowHostError::V6Unbracketed);
        }
        let port = port.map(parse_port).transpose()?;
        let host = if host == "*" {
            HostPattern::Any
        } else if host.is_empty() {
            return Err(match port {
                Some(p) => AllowHostError::NoHost(p),
                None => AllowHostError::Empty,
            });
        } else if let Some(domain) = host.strip_prefix("*.") {
            check_name(domain)?;
            HostPattern::Under(domain.to_ascii_lowercase())
        } else {
            check_name(host)?;
            HostPattern::Name(host.to_ascii_lowercase())
        };
        Ok(AllowHost { host, port })
    }

    /// Whether a request to `host` (as a URI writes it: an IPv6 address in brackets) on `port`
    /// is allowed by this entry.
    pub fn permits(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let v6 = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        match &self.host {
            HostPattern::Any => true,
            HostPattern::V6(addr) => v6.and_then(|h| h.parse::<Ipv6Addr>().ok()) == Some(*addr),
            HostPattern::Name(name) => v6.is_none() && host.eq_ignore_ascii_case(name),
            HostPattern::Under(domain) => {
                let host = host.to_ascii_lowercase();
                v6.is_none()
                    && host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
            }
        }
    }
}

/// A port: decimal digits only (no sign, space, hex or name), from 1 to 65535.
fn parse_port(port: &str) -> Result<u16, AllowHostError> {
    if port.is_empty() {
        return Err(AllowHostError::NoPort);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AllowHostError::PortNotDecimal(port.into()));
    }
    match port.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(AllowHostError::PortRange(port.into())),
    }
}

/// A host name or IPv4 address: dot-separated labels of letters, digits, `-` and `_`.
fn check_name(name: &str) -> Result<(), AllowHostError> {
    let valid = name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        Err(AllowHostError::NotName(name.into()))
    }
}

impl fmt::Display for AllowHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Under(domain) => write!(f, "*.{domain}")?,
            HostPattern::Name(name) => f.write_str(name)?,
            HostPattern::V6(addr) => write!(f, "[{addr}]")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// As written (normalized), for `plugin list --json`.
impl serde::Serialize for AllowHost {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(entry: &str) -> AllowHost {
        AllowHost::parse(entry).unwrap_or_else(|e| panic!("{entry:?} refused: {e}"))
    }

    #[test]
    fn ports_that_do_not_parse_are_refused() {
        for entry in [
            "127.0.0.1:99999",
            "127.0.0.1:65536",
            "127.0.0.1:0",
            "127.0.0.1:",
            ":http",
            ":8O80",
            ": 80",
            ":-1",
            ":+80",
            ":0x6c69",
            "127.0.0.1:80 ",
            "127.0.0.1:８０",
            "[::1]:",
            "[::1]:99999",
            "[::1]:http",
        ] {
            assert!(AllowHost::parse(entry).is_err(), "{entry:?} was accepted");
        }
    }

    #[test]
    fn hosts_that_are_not_names_are_refused() {
        for entry in [
            "",
            ":80",
            " ",
            "host name",
            "evil.com/path",
            "user@evil.com",
            "a..b",
            ".com",
            "example.com.",
            "*.",
            "*.*.com",
            "a*.com",
            "*com",
            "::1",
            "fe80::1:8080",
            "[::1",
            "[not-v6]",
            "[::1]8080",
            "-bad.com",
            "%65vil.com",
        ] {
            assert!(AllowHost::parse(entry).is_err(), "{entry:?} was accepted");
        }
    }

    #[test]
    fn the_error_says_what_is_wrong() {
        let said = |entry: &str| {
            let e = AllowHost::parse(entry).unwrap_err();
            (e.clone(), e.to_string())
        };
        assert_eq!(
            said("127.0.0.1:99999"),
            (
                AllowHostError::PortRange("99999".into()),
                "port 99999 is not from 1 to 65535".into()
            )
        );
        assert_eq!(
            said(":8O80"),
            (
                AllowHostError::PortNotDecimal("8O80".into()),
                "port \"8O80\" is not a decimal number".into()
            )
        );
        assert_eq!(
            said(":443"),
            (
                AllowHostError::NoHost(443),
                "no host before the port (any host on port 443 is *:443)".into()
            )
        );
        assert_eq!(
            said("fe80::1"),
            (
                AllowHostError::V6Unbracketed,
                "an IPv6 address is written in brackets: [::1] or [::1]:8080".into()
            )
        );
    }

    #[test]
    fn good_entries_parse_to_a_host_and_port() {
        let cases: &[(&str, HostPattern, Option<u16>)] = &[
            ("Example.COM", HostPattern::Name("example.com".into()), None),
            ("host:443", HostPattern::Name("host".into()), Some(443)),
            (
                "127.0.0.1:26657",
                HostPattern::Name("127.0.0.1".into()),
                Some(26657),
            ),
            (
                "localhost:65535",
                HostPattern::Name("localhost".into()),
                Some(65535),
            ),
            ("h:1", HostPattern::Name("h".into()), Some(1)),
            (
                "[::1]:8080",
                HostPattern::V6(Ipv6Addr::LOCALHOST),
                Some(8080),
            ),
            ("[0:0::1]", HostPattern::V6(Ipv6Addr::LOCALHOST), None),
            (
                "*.githubusercontent.com",
                HostPattern::Under("githubusercontent.com".into()),
                None,
            ),
            (
                "*.example.com:8443",
                HostPattern::Under("example.com".into()),
                Some(8443),
            ),
            ("*", HostPattern::Any, None),
            ("*:443", HostPattern::Any, Some(443)),
            (
                "my_host.internal",
                HostPattern::Name("my_host.internal".into()),
                None,
            ),
        ];
        for (entry, host, port) in cases {
            let a = parsed(entry);
            assert_eq!((&a.host, a.port), (host, *port), "{entry}");
            assert_eq!(
                AllowHost::parse(&a.to_string()),
                Ok(a),
                "{entry} round-trips"
            );
        }
    }

    #[test]
    fn a_port_matches_that_port_only() {
        let a = parsed("127.0.0.1:26657");
        assert!(a.permits("127.0.0.1", 26657));
        for port in [1, 80, 443, 9090, 26656, 26658, 65535] {
            assert!(!a.permits("127.0.0.1", port), "port {port}");
        }
        assert!(!a.permits("127.0.0.2", 26657));
        let any_port = parsed("127.0.0.1");
        assert!(any_port.permits("127.0.0.1", 1) && any_port.permits("127.0.0.1", 65535));
    }

    #[test]
    fn names_wildcards_and_v6_match_as_written() {
        let under = parsed("*.githubusercontent.com");
        assert!(under.permits("objects.githubusercontent.com", 443));
        assert!(under.permits("A.B.GitHubUserContent.com", 80));
        assert!(!under.permits("githubusercontent.com", 443));
        assert!(!under.permits("evilgithubusercontent.com", 443));
        assert!(!under.permits("githubusercontent.com.evil.com", 443));
        assert!(!under.permits(".githubusercontent.com", 443));
        let name = parsed("github.com");
        assert!(name.permits("GitHub.com", 443));
        assert!(!name.permits("github.com.evil.com", 443));
        assert!(!name.permits("[github.com]", 443));
        let v6 = parsed("[::1]:9");
        assert!(v6.permits("[::1]", 9));
        assert!(v6.permits("[0:0:0:0:0:0:0:1]", 9));
        assert!(!v6.permits("[::1]", 10));
        assert!(!v6.permits("::1", 9));
        assert!(!v6.permits("[::2]", 9));
        let any_443 = parsed("*:443");
        assert!(any_443.permits("anything", 443) && !any_443.permits("anything", 80));
        assert!(AllowHost::ANY.permits("anything", 1));
    }
}
