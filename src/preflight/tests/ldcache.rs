//! `/etc/ld.so.cache`: the host's real one, and the layouts of glibc's dl-cache.h built by hand.

use super::super::ldcache::{Entry, parse};

#[test]
fn the_hosts_cache_names_libc() {
    let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
        eprintln!("skipped: no /etc/ld.so.cache here");
        return;
    };
    let entries = parse(&bytes).unwrap();
    let (machine, class64, _) = super::super::this_machine();
    let libc = entries
        .iter()
        .find(|e| e.key == "libc.so.6" && super::super::ldcache::accepts(e, machine, class64))
        .expect("libc.so.6 in the cache");
    assert!(std::path::Path::new(&libc.value).is_file(), "{libc:?}");
    assert!(entries.len() > 10);
}

/// The strings of a table: each NUL-terminated, at its offset.
fn strings(names: &[&str]) -> (Vec<u8>, Vec<u32>) {
    let mut bytes = Vec::new();
    let mut offsets = Vec::new();
    for name in names {
        offsets.push(bytes.len() as u32);
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
    }
    (bytes, offsets)
}

/// A new-format table of (flags, key, value, hwcap), its strings after its entries.
fn new_table(entries: &[(i32, &str, &str, u64)]) -> Vec<u8> {
    let names: Vec<&str> = entries.iter().flat_map(|e| [e.1, e.2]).collect();
    let (text, offsets) = strings(&names);
    let strings_at = 48 + 24 * entries.len() as u32;
    let mut t = b"glibc-ld.so.cache1.1".to_vec();
    t.extend((entries.len() as u32).to_le_bytes());
    t.extend((text.len() as u32).to_le_bytes());
    t.push(2); // little-endian
    t.extend([0u8; 3 + 4 + 12]);
    for (i, (flags, _, _, hwcap)) in entries.iter().enumerate() {
        t.extend(flags.to_le_bytes());
        t.extend((strings_at + offsets[2 * i]).to_le_bytes());
        t.extend((strings_at + offsets[2 * i + 1]).to_le_bytes());
        t.extend(0u32.to_le_bytes());
        t.extend(hwcap.to_le_bytes());
    }
    t.extend(text);
    t
}

#[test]
fn a_new_table_after_the_old_one_is_read_and_the_old_alone_too() {
    let new = new_table(&[(
        0x0303,
        "libwasmvm.x86_64.so",
        "/usr/lib/libwasmvm.x86_64.so",
        0,
    )]);
    // The old table: magic, nlibs, one 12-byte entry, padding to 8; its strings follow it.
    let mut old = b"ld.so-1.7.0\0".to_vec();
    old.extend(1u32.to_le_bytes());
    old.extend(1i32.to_le_bytes());
    old.extend(0u32.to_le_bytes());
    old.extend(0u32.to_le_bytes());
    let end = old.len();
    old.resize(end.next_multiple_of(8), 0);
    let mut both = old.clone();
    both.extend(&new);
    let expected = Entry {
        flags: 0x0303,
        key: "libwasmvm.x86_64.so".into(),
        value: "/usr/lib/libwasmvm.x86_64.so".into(),
        hwcap: 0,
    };
    assert_eq!(parse(&both).unwrap(), vec![expected.clone()]);
    assert_eq!(parse(&new).unwrap(), vec![expected]);

    // Old only: entry strings relative to the end of its entries.
    let (text, offsets) = strings(&["libold.so.1", "/lib/libold.so.1"]);
    let mut only = b"ld.so-1.7.0\0".to_vec();
    only.extend(1u32.to_le_bytes());
    only.extend(1i32.to_le_bytes());
    only.extend(offsets[0].to_le_bytes());
    only.extend(offsets[1].to_le_bytes());
    only.extend(text);
    let entries = parse(&only).unwrap();
    assert_eq!(
        (entries[0].key.as_str(), entries[0].value.as_str()),
        ("libold.so.1", "/lib/libold.so.1")
    );
}

#[test]
fn a_cut_short_or_foreign_cache_is_refused() {
    let new = new_table(&[(0x0303, "libc.so.6", "/lib/libc.so.6", 0)]);
    for n in [0, 10, 47, 60, new.len() - 3] {
        assert!(parse(&new[..n]).is_err(), "{n} bytes");
    }
    let mut big = new.clone();
    big[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(parse(&big).is_err());
    let mut other_order = new;
    other_order[28] = 3;
    assert!(parse(&other_order).is_err());
}
