//! The parsed forms of the settings that are more than a boolean, a duration or a path.

use std::fmt;

/// How changes of `data/upgrade-info.json` are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// inotify, falling back to polling when a probe shows inotify is silent on this filesystem.
    Auto,
    Inotify,
    Poll,
}

impl WatchMode {
    pub const CHOICES: &[(&str, WatchMode)] = &[
        ("auto", WatchMode::Auto),
        ("inotify", WatchMode::Inotify),
        ("poll", WatchMode::Poll),
    ];

    pub fn name(self) -> &'static str {
        match self {
            WatchMode::Auto => "auto",
            WatchMode::Inotify => "inotify",
            WatchMode::Poll => "poll",
        }
    }
}

/// How the node treats `--halt-height X`, which decides the X wasmvisor passes for a manual
/// upgrade at H so that the old binary's last block is H - 1 and the new binary executes H.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltHeight {
    /// The node stops before executing block X (Cosmos SDK v0.50.10 and later): X = H.
    Before,
    /// The node executes block X, then stops (Cosmos SDK v0.47 and earlier exit, v0.50.0 to
    /// v0.50.9 stay up): X = H - 1.
    At,
}

impl HaltHeight {
    pub const CHOICES: &[(&str, HaltHeight)] =
        &[("before", HaltHeight::Before), ("at", HaltHeight::At)];

    pub fn name(self) -> &'static str {
        match self {
            HaltHeight::Before => "before",
            HaltHeight::At => "at",
        }
    }

    /// The `--halt-height` to pass for a manual upgrade whose new binary executes `height`.
    pub fn flag_for(self, height: u64) -> u64 {
        match self {
            HaltHeight::Before => height,
            HaltHeight::At => height.saturating_sub(1).max(1),
        }
    }
}

/// What happens to an upgrade whose new binary fails (cannot start, dies before it proved
/// healthy, or the health checks judge it unhealthy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailedUpgrade {
    /// Stop, restore data/ from the pre-upgrade backup, point `current` back, exit 4.
    Rollback,
    /// Stop and exit (3 when unhealthy, else the node's status), as without a safety net.
    Exit,
}

impl OnFailedUpgrade {
    pub const CHOICES: &[(&str, OnFailedUpgrade)] = &[
        ("rollback", OnFailedUpgrade::Rollback),
        ("exit", OnFailedUpgrade::Exit),
    ];

    pub fn name(self) -> &'static str {
        match self {
            OnFailedUpgrade::Rollback => "rollback",
            OnFailedUpgrade::Exit => "exit",
        }
    }
}

/// The node's CometBFT RPC: `http://host:port`, `tcp://host:port` (CometBFT's laddr form) or
/// `host:port`, plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// As configured, for display.
    pub address: String,
}

/// Why an address is not one wasmvisor can use; each message quotes it and shows the form to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error(
        "{address:?}: https is not supported; use the node's plain RPC address (http://127.0.0.1:26657)"
    )]
    Https { address: String },
    #[error("{address:?}: unknown scheme; {example}")]
    UnknownScheme {
        address: String,
        example: &'static str,
    },
    #[error("{address:?} is not a host:port address; {example}")]
    NotHostPort {
        address: String,
        example: &'static str,
    },
    #[error("{address:?} has no valid port (1-65535); {example}")]
    BadPort {
        address: String,
        example: &'static str,
    },
}

/// Splits what follows the scheme into a host and a port, or says which part is wrong.
fn host_and_port<'a>(
    address: &str,
    rest: &'a str,
    example: &'static str,
) -> Result<(&'a str, u16), AddressError> {
    let address = || address.to_string();
    let (host, port) = host_port(rest.strip_suffix('/').unwrap_or(rest)).ok_or_else(|| {
        AddressError::NotHostPort {
            address: address(),
            example,
        }
    })?;
    let port = port_number(port).ok_or_else(|| AddressError::BadPort {
        address: address(),
        example,
    })?;
    Ok((host, port))
}

impl Endpoint {
    pub fn parse(address: &str) -> Result<Endpoint, AddressError> {
        let example = "write it like http://127.0.0.1:26657";
        if address.starts_with("https://") {
            return Err(AddressError::Https {
                address: address.to_string(),
            });
        }
        let rest = address
            .strip_prefix("http://")
            .or_else(|| address.strip_prefix("tcp://"))
            .unwrap_or(address);
        if rest.contains("://") {
            return Err(AddressError::UnknownScheme {
                address: address.to_string(),
                example,
            });
        }
        let (host, port) = host_and_port(address, rest, example)?;
        Ok(Endpoint {
            host: host.to_string(),
            port,
            address: address.to_string(),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// `DAEMON_GRPC_ADDRESS`: `host:port`, optionally after `http://` or `https://` (the forms
/// Cosmovisor passes to its gRPC client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcAddress {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// As configured, for display.
    pub address: String,
}

impl GrpcAddress {
    pub fn parse(address: &str) -> Result<GrpcAddress, AddressError> {
        let (tls, rest) = match address.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, address.strip_prefix("http://").unwrap_or(address)),
        };
        let (host, port) = host_and_port(address, rest, "write it like localhost:9090")?;
        Ok(GrpcAddress {
            tls,
            host: host.to_string(),
            port,
            address: address.to_string(),
        })
    }
}

impl fmt::Display for GrpcAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// Splits `host:port`, where the host is a name, an IPv4 address or `[IPv6]` (returned without
/// its brackets).
fn host_port(text: &str) -> Option<(&str, &str)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        (inside, after.strip_prefix(':')?)
    } else {
        let (host, port) = text.rsplit_once(':')?;
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        if !valid {
            return None;
        }
        (host, port)
    };
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some((host, port))
}

fn port_number(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_addresses() {
        let e = Endpoint::parse("http://127.0.0.1:26657").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 26657));
        assert_eq!(e.to_string(), "http://127.0.0.1:26657");
        assert_eq!(Endpoint::parse("tcp://localhost:1234/").unwrap().port, 1234);
        assert_eq!(Endpoint::parse("[::1]:5").unwrap().host, "::1");
        assert_eq!(Endpoint::parse("http://[::1]:26657").unwrap().host, "::1");
        for bad in [
            "https://x:1",
            "localhost",
            "http://x:notaport",
            "http://[::1",
            "http://[::1]",
            "[not-ip]:80",
            "http://:26657",
            "http://a b:1",
            "grpc://h:1",
            "h:0",
            "h:70000",
            "http://host:1/path",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grpc_addresses() {
        for good in [
            "localhost:9090",
            "https://grpc.example.com:443",
            "[::1]:9090",
        ] {
            assert!(GrpcAddress::parse(good).is_ok(), "{good}");
        }
        assert!(GrpcAddress::parse("https://g.io:443").unwrap().tls);
        for bad in ["not an address", "localhost", "localhost:99999"] {
            assert!(GrpcAddress::parse(bad).is_err(), "{bad}");
        }
    }

    /// The words an operator reads, exactly as they were when the errors were strings.
    #[test]
    fn refusals_quote_the_address_and_show_the_form() {
        let rpc = |a: &str| Endpoint::parse(a).unwrap_err().to_string();
        let grpc = |a: &str| GrpcAddress::parse(a).unwrap_err().to_string();
        for (got, want) in [
            (
                rpc("https://x:1"),
                "\"https://x:1\": https is not supported; use the node's plain RPC address (http://127.0.0.1:26657)",
            ),
            (
                rpc("grpc://h:1"),
                "\"grpc://h:1\": unknown scheme; write it like http://127.0.0.1:26657",
            ),
            (
                rpc("localhost"),
                "\"localhost\" is not a host:port address; write it like http://127.0.0.1:26657",
            ),
            (
                rpc("h:0"),
                "\"h:0\" has no valid port (1-65535); write it like http://127.0.0.1:26657",
            ),
            (
                grpc("localhost"),
                "\"localhost\" is not a host:port address; write it like localhost:9090",
            ),
            (
                grpc("localhost:99999"),
                "\"localhost:99999\" has no valid port (1-65535); write it like localhost:9090",
            ),
        ] {
            assert_eq!(got, want);
        }
    }
}
