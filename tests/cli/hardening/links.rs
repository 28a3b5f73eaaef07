//! Links and special files: a lock file, the watch probe, downloads and the compile cache never
//! go through a link; fifos never block; what is staged must be a regular file.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::harness::serve::Server;
use crate::harness::*;

use super::{sha256, stderr};

/// A file outside the home that nothing may touch.
fn victim(home: &Home, name: &str) -> PathBuf {
    let outside = home.path.parent().unwrap().join(format!(
        "{}-{name}",
        home.path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&outside, "precious").unwrap();
    outside
}

fn assert_untouched(path: &Path) {
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        "precious",
        "{} was written through a link",
        path.display()
    );
    let _ = std::fs::remove_file(path);
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

#[test]
fn a_lock_file_that_is_a_link_is_refused_not_truncated() {
    let home = Home::new();
    let outside = victim(&home, "lock");
    symlink(&outside, home.root().join("wasmvisor.lock")).unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(20));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("wasmvisor.lock is a symlink"),
        "{}",
        done.stderr
    );
    assert!(home.events_of("start").is_empty());
    assert_untouched(&outside);
    // `status` reads the lock too: it must not follow the link either.
    let out = home.output(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_watch_probe_never_writes_through_a_link() {
    let mut home = Home::new();
    home.set("WASMVISOR_WATCH_MODE", "auto");
    let outside = victim(&home, "probe");
    symlink(&outside, home.data().join(".wasmvisor-watch-probe")).unwrap();
    let run = home.run(&[]);
    home.wait_height("genesis", 2);
    run.stop();
    assert_untouched(&outside);
}

#[test]
fn downloads_never_go_through_links_in_wasmvisor_folders() {
    let server = Server::start();
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let binary = std::fs::read(home.root().join("genesis/bin/simd")).unwrap();
    server.put("/simd", binary.clone());
    let url = server.url("/simd");
    let info = json!({"binaries": {"any": format!("{url}?checksum=sha256:{}", sha256(&binary))}});
    home.chain_with_info("v2", 3, &info.to_string());
    // The partial file's name is derived from the URL: plant a link there.
    let downloads = home.root().join(".wasmvisor-downloads/v2");
    std::fs::create_dir_all(&downloads).unwrap();
    let key = hex::encode(&Sha256::digest(url.as_bytes())[..8]);
    let outside = victim(&home, "partial");
    symlink(&outside, downloads.join(format!("{key}.part"))).unwrap();
    // And the unpack folder, with files that must survive.
    let keep = home.path.parent().unwrap().join(format!(
        "{}-keep",
        home.path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::write(keep.join("file"), "precious").unwrap();
    std::fs::create_dir_all(home.root().join("upgrades")).unwrap();
    symlink(&keep, home.root().join("upgrades/.v2.unpack")).unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_untouched(&outside);
    assert_untouched(&keep.join("file"));
    let _ = std::fs::remove_dir_all(&keep);
    // The link in the partial's place is refused: no download through it.
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert_eq!(home.current(), "genesis");

    // A downloads folder that is itself a link is refused, and what it points at kept.
    let home = Home::new();
    let elsewhere = home.path.join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("v2")).unwrap();
    std::fs::write(elsewhere.join("v2/file"), "precious").unwrap();
    symlink(&elsewhere, home.root().join(".wasmvisor-downloads")).unwrap();
    let mut home = home;
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    home.chain_with_info("v2", 3, &info.to_string());
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr
            .contains(".wasmvisor-downloads is a symlink; wasmvisor keeps its own folder there"),
        "{}",
        done.stderr
    );
    assert_untouched(&elsewhere.join("v2/file"));
}

#[test]
fn the_compile_cache_is_never_written_through_a_link() {
    let mut home = Home::new();
    home.unset("WASMVISOR_PLUGIN_CACHE");
    let elsewhere = home.path.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    symlink(&elsewhere, home.root().join(".wasmvisor-cache")).unwrap();
    let out = home.output(&["plugin", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot use the plugin compile cache"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn fifos_never_block_wasmvisor() {
    let home = Home::new();
    mkfifo(&home.data().join("upgrade-info.json"));
    let run = home.run(&[]);
    home.wait_height("genesis", 2);
    let started = Instant::now();
    let out = run.stop();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        out.stderr.contains("it is a FIFO, not a regular file"),
        "{}",
        out.stderr
    );
    let out = home.output(&["show-upgrade-info"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));

    // A FIFO as a plugin's component file.
    let fifo = home.path.join("plugin.wasm");
    mkfifo(&fifo);
    let file = home.path.join("p.toml");
    std::fs::write(
        &file,
        format!("[[resolver]]\npath = \"{}\"\n", fifo.display()),
    )
    .unwrap();
    let started = Instant::now();
    let out = home.output(&["plugin", "check", "--plugins", file.to_str().unwrap()]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));
}

#[test]
fn binaries_to_stage_must_be_regular_files() {
    let home = Home::new();
    let started = Instant::now();
    let out = home.output(&["add-upgrade", "v2", "/dev/zero"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("character device, not a regular file"),
        "{}",
        stderr(&out)
    );
    let out = home.output(&["add-upgrade", "v2", home.path.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("directory, not a regular file"),
        "{}",
        stderr(&out)
    );
    let out = home.output(&[
        "add-batch-upgrade",
        "--upgrade-list",
        &format!("v2:{}:10", home.path.display()),
    ]);
    assert!(
        stderr(&out).contains("directory, not a regular file")
            && stderr(&out).contains("nothing was staged"),
        "{}",
        stderr(&out)
    );
    assert!(!home.root().join("upgrades/v2").exists());
}
