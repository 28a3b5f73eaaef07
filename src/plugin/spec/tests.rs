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
