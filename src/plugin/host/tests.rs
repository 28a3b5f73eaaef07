//! A host is a value: two in one process each keep their own cache and tell their own hook.

use std::sync::{Arc, Mutex};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::{Host, HostConfig};
use crate::plugin::{
    Call, Cancel, Decision, GuestPlan, PluginSpec, Request, Resolver, World, platform,
};

/// What a host's hook was told: (plugin, outcome) per call.
type Seen = Arc<Mutex<Vec<(String, &'static str)>>>;

/// A host caching into `cache`, whose hook records into the returned list.
fn host(cache: &tempfile::TempDir) -> (Host, Seen) {
    let seen: Seen = Arc::default();
    let told = seen.clone();
    let dir = Dir::open_ambient_dir(cache.path(), ambient_authority()).unwrap();
    let host = Host::new(HostConfig {
        cache: Some(dir),
        on_call: Some(Box::new(move |plugin, world, outcome, _took| {
            assert_eq!(world, World::Resolver);
            told.lock().unwrap().push((plugin.to_string(), outcome));
        })),
        on_compile_failure: None,
    })
    .unwrap();
    (host, seen)
}

/// The bundled Cosmovisor resolver, under a name of its own.
fn resolver(name: &str) -> PluginSpec {
    PluginSpec {
        name: name.into(),
        ..PluginSpec::bundled(World::Resolver, "cosmovisor")
    }
}

fn request() -> Request {
    Request {
        plan: GuestPlan {
            name: "v2".into(),
            height: 100,
            info: String::new(),
        },
        platform: platform(),
        daemon_name: "simd".into(),
        staged: None,
        downloads_allowed: true,
        checksum_required: false,
    }
}

/// The compiled plugins a cache folder holds.
fn cached(cache: &tempfile::TempDir) -> usize {
    std::fs::read_dir(cache.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("cwasm".as_ref()))
        .count()
}

#[test]
fn two_hosts_each_tell_their_own_hook_and_fill_their_own_cache() {
    let (cache_a, cache_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, seen_a) = host(&cache_a);
    let (b, seen_b) = host(&cache_b);
    let in_a: Resolver = a.load(&resolver("in-a")).unwrap();
    assert_eq!((cached(&cache_a), cached(&cache_b)), (1, 0));
    let in_b: Resolver = b.load(&resolver("in-b")).unwrap();
    assert_eq!((cached(&cache_a), cached(&cache_b)), (1, 1));
    assert!(!in_b.cached().unwrap(), "b compiled into its own cache");

    let call = Call::new(&Cancel::new());
    for _ in 0..2 {
        let d = a.resolve(&in_a, &request(), None, &call).unwrap();
        assert!(matches!(d, Decision::Unresolved(_)), "{d:?}");
    }
    b.resolve(&in_b, &request(), None, &call).unwrap();

    let ok = |name: &str| (name.to_string(), "ok");
    assert_eq!(*seen_a.lock().unwrap(), vec![ok("in-a"), ok("in-a")]);
    assert_eq!(*seen_b.lock().unwrap(), vec![ok("in-b")]);

    // Loaded again, each host finds its plugin in its own cache.
    let again: Resolver = b.load(&resolver("in-b")).unwrap();
    assert!(again.cached().unwrap());
}

#[test]
fn the_same_component_under_two_names_is_compiled_once() {
    let cache = tempfile::tempdir().unwrap();
    let (host, _) = host(&cache);
    let first: Resolver = host.load(&resolver("first")).unwrap();
    let compiled = host.compiling();
    let second: Resolver = host.load(&resolver("second")).unwrap();
    assert!(!first.cached().unwrap());
    assert!(
        second.cached().unwrap(),
        "the second entry takes the first's compilation"
    );
    assert_eq!(host.compiling(), compiled, "no time spent compiling again");
    assert_eq!(cached(&cache), 1);
}

#[test]
fn the_cache_drops_its_least_recently_used_entries_past_its_size() {
    let cache = tempfile::tempdir().unwrap();
    let dir = Dir::open_ambient_dir(cache.path(), ambient_authority()).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for (i, name) in ["a.cwasm", "b.cwasm", "c.cwasm", "d.cwasm"]
        .iter()
        .enumerate()
    {
        let path = cache.path().join(name);
        std::fs::write(&path, vec![0u8; 1000]).unwrap();
        let when = old + std::time::Duration::from_secs(i as u64 * 60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    // Not an entry: never removed, never counted.
    std::fs::write(cache.path().join("notes.txt"), vec![0u8; 5000]).unwrap();
    // 4000 bytes of entries, at most 2500 kept: the oldest go, except `a`, the one just
    // written (kept whatever its age): b and c.
    let (removed, freed) = super::super::cache::prune(&dir, "a.cwasm", 2500);
    assert_eq!((removed, freed), (2, 2000));
    let left: Vec<String> = {
        let mut l: Vec<String> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        l.sort();
        l
    };
    assert_eq!(left, ["a.cwasm", "d.cwasm", "notes.txt"]);
}
