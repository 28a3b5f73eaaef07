//! Whose RPC is it? Tells whether the TCP port the supervisor reads the chain's height on is
//! listened on by the supervised node (its process group), from `/proc/net/tcp{,6}` (the
//! listening sockets' inodes) and `/proc/<pid>/fd` (the sockets each process holds).
//!
//! A height read on the RPC decides when a manual upgrade stops the node; an answer from another
//! node on the same host (the default `127.0.0.1:26657` is everyone's), a proxy or a stale
//! process must never be taken for the supervised node's.

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;

use nix::unistd::Pid;

/// Who listens on the RPC's port, as far as this host can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Every socket that can accept the connection belongs to the node's process group.
    Node,
    /// A socket that can accept it belongs to another process (described: pid and name, or
    /// what is known).
    Other(String),
    /// Cannot be told: the address is not this host's by name or number, nothing listens on it
    /// in this network namespace, or `/proc` cannot be read. Says why.
    Unknown(String),
}

/// Who holds the listening socket(s) for `host:port` that a connection would reach.
pub fn holder(host: &str, port: u16, node: Pid) -> Holder {
    let addresses: Vec<IpAddr> = match host {
        "localhost" => vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()],
        h => match h.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => vec![ip],
            Err(_) => return Holder::Unknown(format!("{host} is a name, not an address")),
        },
    };
    let listeners = match listening() {
        Ok(l) => l,
        Err(e) => return Holder::Unknown(format!("cannot read /proc/net/tcp: {e}")),
    };
    let inodes = reaching(&listeners, &addresses, port);
    if inodes.is_empty() {
        return Holder::Unknown(format!("no socket of this host listens on {host}:{port}"));
    }
    let (held, hidden) = match group_sockets(node) {
        Ok(h) => h,
        Err(e) => return Holder::Unknown(format!("cannot read the node's descriptors: {e}")),
    };
    match inodes.iter().find(|i| !held.contains(i)) {
        None => Holder::Node,
        // The socket may be in the descriptors that could not be read (a node that is not
        // dumpable, say): that is not another process's.
        Some(_) if !hidden.is_empty() => Holder::Unknown(format!(
            "cannot read the descriptors of pid {} of the node's group",
            hidden[0]
        )),
        Some(&inode) => Holder::Other(describe_holder(inode)),
    }
}

/// A listening TCP socket: its local address, port and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listener {
    ip: IpAddr,
    port: u16,
    inode: u64,
}

fn listening() -> std::io::Result<Vec<Listener>> {
    let mut all = parse_table(&fs::read_to_string("/proc/net/tcp")?);
    // A kernel without IPv6 has no tcp6 table.
    if let Ok(v6) = fs::read_to_string("/proc/net/tcp6") {
        all.extend(parse_table(&v6));
    }
    Ok(all)
}

/// The listening sockets of a `/proc/net/tcp` or `/proc/net/tcp6` table.
fn parse_table(table: &str) -> Vec<Listener> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() < 10 || fields[3] != "0A" {
                return None;
            }
            let (ip, port) = fields[1].split_once(':')?;
            Some(Listener {
                ip: parse_ip(ip)?,
                port: u16::from_str_radix(port, 16).ok()?,
                inode: fields[9].parse().ok()?,
            })
        })
        .collect()
}

/// The kernel prints each 32-bit word of the address as the native-endian integer it is in
/// memory.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let text = hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(text, 16).ok()?.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::from(bytes))
        }
        _ => None,
    }
}

/// The inodes of the listeners a connection to one of `addresses`:`port` can reach: those bound
/// to the address itself if any (the kernel prefers them), else those bound to the wildcard
/// (`::` accepts IPv4 too, unless it is v6-only, which cannot be told here: counted).
fn reaching(listeners: &[Listener], addresses: &[IpAddr], port: u16) -> BTreeSet<u64> {
    let canonical = |ip: &IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*ip, IpAddr::V4),
        v4 => *v4,
    };
    let on_port = || listeners.iter().filter(move |l| l.port == port);
    let exact: BTreeSet<u64> = on_port()
        .filter(|l| addresses.iter().any(|a| canonical(a) == canonical(&l.ip)))
        .map(|l| l.inode)
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    on_port()
        .filter(|l| {
            l.ip.is_unspecified()
                && addresses
                    .iter()
                    .any(|a| a.is_ipv4() == l.ip.is_ipv4() || l.ip.is_ipv6())
        })
        .map(|l| l.inode)
        .collect()
}

/// The socket inodes held by the node and the processes of its group, and the pids of the
/// group whose descriptors could not be read.
fn group_sockets(node: Pid) -> std::io::Result<(BTreeSet<u64>, Vec<i32>)> {
    let mut held = BTreeSet::new();
    let mut hidden = Vec::new();
    for pid in processes()? {
        if pid == node.as_raw() || process_group(pid) == Some(node.as_raw()) {
            match sockets_of(pid) {
                Some(sockets) => held.extend(sockets),
                None => hidden.push(pid),
            }
        }
    }
    Ok((held, hidden))
}

fn processes() -> std::io::Result<Vec<i32>> {
    Ok(fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect())
}

/// The process group in `/proc/<pid>/stat` (the field after the state and the parent's pid;
/// the name before them is in parentheses and may hold anything).
fn process_group(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The socket inodes of `pid`'s descriptors, or `None` if they cannot be read. A process that
/// exited meanwhile holds none.
fn sockets_of(pid: i32) -> Option<Vec<u64>> {
    let fds = match fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(fds) => fds,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Vec::new()),
        Err(_) => return None,
    };
    let sockets = fds
        .flatten()
        .filter_map(|fd| {
            let target = fs::read_link(fd.path()).ok()?;
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    Some(sockets)
}

/// Which process holds `inode`, for the operator.
fn describe_holder(inode: u64) -> String {
    let holder = processes().ok().and_then(|pids| {
        pids.into_iter()
            .find(|&pid| sockets_of(pid).is_some_and(|s| s.contains(&inode)))
    });
    match holder {
        Some(pid) => {
            let name = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            format!("held by pid {pid} ({})", name.trim())
        }
        None => "held by a process this user cannot see".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:6989 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000:6A4D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
   2: 0100007F:6989 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:6A4E 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:6A4F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5252 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn reads_the_listening_sockets_of_both_tables() {
        let mut all = parse_table(TCP);
        all.extend(parse_table(TCP6));
        let seen: Vec<(String, u16, u64)> = all
            .iter()
            .map(|l| (l.ip.to_string(), l.port, l.inode))
            .collect();
        assert_eq!(
            seen,
            [
                ("127.0.0.1".to_string(), 27_017, 4242),
                ("0.0.0.0".to_string(), 27_213, 4343),
                ("::".to_string(), 27_214, 5151),
                ("::1".to_string(), 27_215, 5252),
            ],
            "established sockets (st 01) are not listeners"
        );
    }

    #[test]
    fn a_connection_reaches_the_exact_address_first_then_the_wildcard() {
        let mut all = parse_table(TCP);
        all.extend(parse_table(TCP6));
        let lo: IpAddr = [127, 0, 0, 1].into();
        assert_eq!(reaching(&all, &[lo], 27_017), BTreeSet::from([4242]));
        assert_eq!(reaching(&all, &[lo], 27_213), BTreeSet::from([4343]));
        // `::` accepts IPv4 connections too.
        assert_eq!(reaching(&all, &[lo], 27_214), BTreeSet::from([5151]));
        assert_eq!(
            reaching(&all, &["::1".parse().unwrap()], 27_215),
            BTreeSet::from([5252])
        );
        assert!(reaching(&all, &[lo], 1).is_empty());
    }

    #[test]
    fn a_port_this_process_listens_on_is_not_another_process_groups() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = nix::unistd::getpid();
        assert_eq!(holder("127.0.0.1", port, me), Holder::Node);
        assert_eq!(holder("localhost", port, me), Holder::Node);
        // No process has this pid (above any pid_max) or is in its group.
        match holder("127.0.0.1", port, Pid::from_raw(i32::MAX)) {
            Holder::Other(who) => assert!(who.contains(&me.as_raw().to_string()), "{who}"),
            other => panic!("{other:?}"),
        }
        drop(listener);
        assert!(matches!(holder("127.0.0.1", port, me), Holder::Unknown(_)));
        assert!(matches!(
            holder("node.internal", port, me),
            Holder::Unknown(_)
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Whatever the tables hold (another kernel's columns, a truncated read), reading them
        /// never panics, and finds only listeners.
        #[test]
        fn any_table_is_read_without_a_panic(
            lines in proptest::collection::vec("[0-9A-Fa-f: ]{0,60}|.{0,80}", 0..8)
        ) {
            let table = format!("header\n{}", lines.join("\n"));
            let _ = parse_table(&table);
        }

        #[test]
        fn any_address_text_is_read_without_a_panic(hex in ".{0,40}") {
            let _ = parse_ip(&hex);
        }
    }
}
