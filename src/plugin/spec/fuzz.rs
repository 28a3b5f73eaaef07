//! Property tests of `plugins.toml`: any text, and any mix of known and unknown keys with values
//! of any type, is either a configuration within bounds or refused with every problem listed —
//! never a panic.

use proptest::prelude::*;
use toml::Value;

use super::*;

const KEYS: &[&str] = &[
    "name",
    "path",
    "sha256",
    "config",
    "allow-hosts",
    "dirs",
    "memory",
    "timeout",
    "idle-timeout",
    "interval",
    "deadline",
    "on-unhealthy",
    "no-such-key",
];

/// A value of the kind the key wants, or of any other kind.
fn value_for(key: &'static str) -> BoxedStrategy<Value> {
    let any = prop_oneof![
        ".{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(Value::Integer),
        any::<bool>().prop_map(Value::Boolean),
        prop::collection::vec(".{0,6}".prop_map(Value::String), 0..3).prop_map(Value::Array),
    ];
    let right: BoxedStrategy<Value> = match key {
        "name" => "[a-z-]{0,8}".prop_map(Value::String).boxed(),
        "path" => prop_oneof![
            Just("bundled:cosmovisor".to_string()),
            Just("bundled:http".to_string()),
            Just("bundled:nope".to_string()),
            "[a-z/]{0,12}\\.wasm",
        ]
        .prop_map(Value::String)
        .boxed(),
        "sha256" => "[0-9a-f]{62,66}".prop_map(Value::String).boxed(),
        "memory" => prop_oneof!["[0-9]{1,4}(MiB|KiB|GiB|B|)", ".{0,6}"]
            .prop_map(Value::String)
            .boxed(),
        "timeout" | "idle-timeout" | "interval" | "deadline" => {
            prop_oneof!["[0-9]{1,3}(ms|s|m|h|)", "-?[0-9]{1,3}s", ".{0,6}"]
                .prop_map(Value::String)
                .boxed()
        }
        "on-unhealthy" => prop_oneof![
            Just("warn".to_string()),
            Just("exit".to_string()),
            Just("rollback".to_string()),
            ".{0,8}",
        ]
        .prop_map(Value::String)
        .boxed(),
        "allow-hosts" => prop::collection::vec("[a-z0-9.*:]{0,12}".prop_map(Value::String), 0..3)
            .prop_map(Value::Array)
            .boxed(),
        "dirs" => prop::collection::vec(
            prop::collection::vec("[a-z/.]{0,8}".prop_map(Value::String), 0..3)
                .prop_map(Value::Array),
            0..2,
        )
        .prop_map(Value::Array)
        .boxed(),
        "config" => {
            prop::collection::btree_map("[a-z-]{1,6}", ".{0,8}".prop_map(Value::String), 0..3)
                .prop_map(|m| Value::Table(m.into_iter().collect()))
                .boxed()
        }
        _ => any.clone().boxed(),
    };
    prop_oneof![3 => right, 1 => any].boxed()
}

fn entry() -> impl Strategy<Value = Value> {
    prop::sample::subsequence(KEYS, 0..KEYS.len())
        .prop_flat_map(|keys| {
            keys.into_iter()
                .map(|k| value_for(k).prop_map(move |v| (k.to_string(), v)))
                .collect::<Vec<_>>()
        })
        .prop_map(|pairs| Value::Table(pairs.into_iter().collect()))
}

fn file() -> impl Strategy<Value = String> {
    let world = prop_oneof![
        Just("resolver"),
        Just("source"),
        Just("health"),
        Just("probe")
    ];
    prop::collection::vec((world, prop::collection::vec(entry(), 0..3)), 0..3).prop_map(|worlds| {
        let mut table = toml::map::Map::new();
        for (world, entries) in worlds {
            table.insert(world.to_string(), Value::Array(entries));
        }
        toml::to_string(&Value::Table(table)).expect("a table serializes")
    })
}

proptest! {
    #[test]
    fn any_text_is_a_configuration_or_every_problem_named(text in ".{0,200}") {
        if let Err(e) = Plugins::parse(&text, Path::new("/etc/wasmvisor/plugins.toml")) {
            prop_assert!(!e.problems.is_empty());
            prop_assert!(e.to_string().contains("/etc/wasmvisor/plugins.toml"));
        }
    }

    #[test]
    fn entries_of_any_keys_and_values_are_within_bounds_or_refused(text in file()) {
        match Plugins::parse(&text, Path::new("/etc/wasmvisor/plugins.toml")) {
            Ok(p) => {
                prop_assert!(!p.resolvers.is_empty() && !p.sources.is_empty());
                for spec in p.all() {
                    prop_assert!(!spec.name.is_empty());
                    prop_assert!(spec.memory >= 1 << 20);
                    prop_assert!(!spec.timeout.is_zero() && !spec.read_idle.is_zero());
                    prop_assert!(!spec.interval.is_zero() && !spec.deadline.is_zero());
                    prop_assert!(spec.world == World::Health || spec.on_unhealthy.is_none());
                }
            }
            Err(e) => {
                prop_assert!(!e.problems.is_empty());
                for problem in &e.problems {
                    prop_assert!(!problem.trim().is_empty(), "{}", e);
                }
            }
        }
    }
}

/// `allow-hosts` entries: near-misses of every accepted form, and any text.
fn allow_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        "(\\*|\\*\\.[a-z0-9]{1,4}|[a-z0-9.]{0,8}|\\[[0-9a-f:]{0,8}\\])(:[0-9]{0,6})?",
        "[a-z0-9.*:\\[\\] +x-]{0,14}",
        ".{0,16}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// An entry is refused, or parsed into a host and a port from 1 to 65535 that it writes
    /// back the same, and that lets no other port through.
    #[test]
    fn allow_hosts_entries_are_a_real_port_or_refused(entry in allow_entry(), other in 1u16..) {
        if let Ok(a) = AllowHost::parse(&entry) {
            prop_assert_eq!(AllowHost::parse(&a.to_string()), Ok(a.clone()));
            if let Some(port) = a.port {
                prop_assert!(port >= 1);
                let digits = entry.rsplit(':').next().unwrap_or("");
                prop_assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(digits.parse::<u32>().ok(), Some(u32::from(port)));
                let host = match &a.host {
                    HostPattern::V6(addr) => format!("[{addr}]"),
                    HostPattern::Name(n) => n.clone(),
                    HostPattern::Under(d) => format!("a.{d}"),
                    HostPattern::Any => "anything".into(),
                };
                prop_assert!(a.permits(&host, port));
                prop_assert_eq!(a.permits(&host, other), other == port);
            }
        }
    }
}
