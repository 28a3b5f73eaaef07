//! Property tests of the two parsers of untrusted bytes: `/etc/ld.so.cache` (arbitrary and
//! mutated real caches) and the ELF path (a real dynamically linked program, mutated and cut
//! short) — a reason or an answer, never a panic.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

/// A real dynamic ELF to mutate: `/bin/true` (small, and linked against libc like a node).
fn real_elf() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        std::fs::read("/bin/true")
            .or_else(|_| std::fs::read("/usr/bin/true"))
            .unwrap_or_default()
    })
}

fn real_cache() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(ldcache::PATH).unwrap_or_default())
}

/// Mutations: (position as a fraction of the length, byte), and a length to cut to. Positions
/// lean on the first 4 KiB, where the headers and the dynamic section of a small program are.
fn mutations() -> impl Strategy<Value = (Vec<(u32, bool, u8)>, Option<u32>)> {
    (
        prop::collection::vec((any::<u32>(), any::<bool>(), any::<u8>()), 1..12),
        prop::option::of(any::<u32>()),
    )
}

fn mutate(base: &[u8], (edits, cut): &(Vec<(u32, bool, u8)>, Option<u32>)) -> Vec<u8> {
    let mut bytes = base.to_vec();
    if bytes.is_empty() {
        return bytes;
    }
    for &(at, near, byte) in edits {
        let span = if near {
            bytes.len().min(4096)
        } else {
            bytes.len()
        };
        let i = at as usize % span;
        bytes[i] = byte;
    }
    if let Some(cut) = cut {
        bytes.truncate(*cut as usize % (bytes.len() + 1));
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_as_a_cache_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), magic in 0u8..3) {
        let mut input = match magic {
            0 => b"glibc-ld.so.cache1.1".to_vec(),
            1 => b"ld.so-1.7.0\0".to_vec(),
            _ => Vec::new(),
        };
        input.extend(bytes);
        let _ = ldcache::parse(&input);
    }

    #[test]
    fn a_mutated_real_cache_never_panics(m in mutations()) {
        let _ = ldcache::parse(&mutate(real_cache(), &m));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_real_elf_is_checked_without_a_panic(m in mutations()) {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap()).path();
        let bytes = mutate(real_elf(), &m);
        let binary: PathBuf = dir.join(format!("gaiad-{}", std::thread::current().name().unwrap_or("t").len()));
        std::fs::write(&binary, &bytes).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        let lib_dir = dir.join("lib");
        let target = Target { binary: &binary, lib_dir: &lib_dir, env_ld_library_path: None, display_root: Some(dir) };
        if let Err(reason) = dynamic_needs(&target) {
            prop_assert!(!reason.to_string().is_empty());
        }
    }
}

#[test]
fn the_unmutated_elf_passes() {
    let t = tempfile::tempdir().unwrap();
    let binary = t.path().join("true");
    std::fs::write(&binary, real_elf()).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = Target {
        binary: &binary,
        lib_dir: t.path(),
        env_ld_library_path: None,
        display_root: None,
    };
    let linkage = dynamic_needs(&target).unwrap();
    assert!(
        linkage
            .libraries
            .iter()
            .any(|(name, _)| name == "libc.so.6"),
        "{linkage:?}"
    );
}
