use super::raw::parse_size;
use super::*;

#[test]
fn empty_file_means_the_bundled_defaults() {
    let p = Plugins::parse("", Path::new("/x/plugins.toml")).unwrap();
    assert_eq!(p.resolvers[0].origin, Origin::Bundled("cosmovisor"));
    assert_eq!(p.sources[0].origin, Origin::Bundled("http"));
    assert!(p.health.is_empty());
}

#[test]
fn entries_are_read_with_relative_paths_and_settings() {
    let p = Plugins::parse(
        r#"
        [[resolver]]
        path = "reg.wasm"
        config = { chain-json = "/r/chain.json", sha256 = ["a", "b"], n = 3 }
        allow-hosts = ["127.0.0.1:9"]
        memory = "32MiB"
        timeout = "2s"
        [[health]]
        name = "h"
        path = "bundled:http"
        on-unhealthy = "exit"
        "#,
        Path::new("/etc/wv/plugins.toml"),
    )
    .unwrap();
    let r = &p.resolvers[0];
    assert_eq!(r.name, "reg");
    assert_eq!(r.origin, Origin::File("/etc/wv/reg.wasm".into()));
    assert_eq!(r.memory, 32 << 20);
    assert_eq!(r.timeout, Duration::from_secs(2));
    assert!(r.settings.contains(&("sha256".into(), "b".into())));
    assert!(r.settings.contains(&("n".into(), "3".into())));
    assert_eq!(p.health[0].on_unhealthy, Some(OnUnhealthy::Exit));
    assert_eq!(p.sources[0].origin, Origin::Bundled("http"));
}

#[test]
fn every_problem_is_reported() {
    let err = Plugins::parse(
        r#"
        [[resolver]]
        path = "bundled:nope"
        sha256 = "xyz"
        memory = "lots"
        timeout = "soon"
        on-unhealthy = "exit"
        "#,
        Path::new("/p.toml"),
    )
    .unwrap_err();
    let text = err.to_string();
    for needle in [
        "bundled:nope",
        "sha256",
        "memory",
        "timeout",
        "on-unhealthy",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    let err = Plugins::parse("[[resolvr]]\npath='x'", Path::new("/p.toml")).unwrap_err();
    assert!(err.to_string().contains("resolvr"));
}

#[test]
fn sizes() {
    assert_eq!(parse_size("64MiB"), Some(64 << 20));
    assert_eq!(parse_size("100"), Some(100));
    assert_eq!(parse_size("1TB"), None);
}

fn one_resolver(path: &str, allow: &str) -> Result<Plugins, PluginsConfigError> {
    Plugins::parse(
        &format!("[[resolver]]\nname = \"reg\"\npath = \"{path}\"\n{allow}\n"),
        Path::new("/etc/wv/plugins.toml"),
    )
}

#[test]
fn allow_hosts_entries_whose_port_does_not_parse_are_refused_when_read() {
    for entry in [
        "127.0.0.1:99999",
        "127.0.0.1:",
        ":http",
        ":8O80",
        ": 80",
        ":-1",
        ":0x6c69",
        "127.0.0.1:0",
        "[::1]:99999",
    ] {
        for path in ["reg.wasm", "bundled:http"] {
            let err = one_resolver(path, &format!("allow-hosts = [\"github.com\", {entry:?}]"))
                .expect_err(entry);
            let text = err.to_string();
            assert!(text.contains("/etc/wv/plugins.toml"), "{text}");
            assert!(text.contains("plugin \"reg\""), "{text}");
            assert!(
                text.contains(&format!("allow-hosts entry {entry:?}")),
                "{text}"
            );
            assert!(text.contains("host:port"), "names what is accepted: {text}");
            assert_eq!(err.problems.len(), 1, "github.com is fine: {text}");
        }
    }
}

#[test]
fn allow_hosts_entries_are_read_into_hosts_and_ports() {
    let p = one_resolver(
        "reg.wasm",
        r#"allow-hosts = ["host", "host:443", "[::1]:8080", "*.example.com", "*.example.com:8443", "*:443", "*"]"#,
    )
    .unwrap();
    let written: Vec<String> = p.resolvers[0]
        .allow_hosts
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        written,
        [
            "host",
            "host:443",
            "[::1]:8080",
            "*.example.com",
            "*.example.com:8443",
            "*:443",
            "*"
        ]
    );
    assert_eq!(
        p.resolvers[0].allow_hosts[1],
        AllowHost {
            host: HostPattern::Name("host".into()),
            port: Some(443)
        }
    );
}

#[test]
fn an_empty_allow_hosts_allows_nothing_even_for_a_bundled_plugin() {
    for path in ["bundled:http", "bundled:cosmovisor", "reg.wasm"] {
        let p = one_resolver(path, "allow-hosts = []").unwrap();
        let spec = &p.resolvers[0];
        assert!(
            spec.allow_hosts.is_empty(),
            "{path}: {:?}",
            spec.allow_hosts
        );
        let allow = crate::plugin::http::Allow::new(&spec.allow_hosts);
        assert!(!allow.permits("github.com", 443), "{path}");
        assert!(!allow.permits("127.0.0.1", 26657), "{path}");
    }
    // Without the key, a bundled plugin reaches any host (Cosmovisor downloads from anywhere),
    // one of the operator's none.
    let bundled = one_resolver("bundled:http", "").unwrap();
    assert_eq!(bundled.resolvers[0].allow_hosts, [AllowHost::ANY]);
    let own = one_resolver("reg.wasm", "").unwrap();
    assert!(own.resolvers[0].allow_hosts.is_empty());
}
