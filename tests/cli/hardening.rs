//! What a hostile review and an unlucky operator tried: links out of the home, files that block,
//! stalls, forged records, unwritable logs, forged names, unbounded inputs, nonsense settings.
//! Each test names the hole it keeps closed.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::harness::serve::Server;
use crate::harness::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

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
fn a_refused_upgrade_is_redecided_on_restart_instead_of_wedging() {
    let home = Home::new();
    home.chain(&[("v2", 3)]);
    // No binary, no downloads: refused.
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(home.journal()["active"]["refused"].is_object());

    // Nothing changed: refused again at once, without running anything.
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1);
    assert!(
        done.stderr.contains("nothing it depends on has changed"),
        "{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("resolver answered"),
        "{}",
        done.stderr
    );
    assert_eq!(home.events_of("start").len(), 1);

    // The documented way out: skip the height. The node runs on, no journal surgery needed.
    let run = home.run(&["--unsafe-skip-upgrades", "3"]);
    home.wait_height("genesis", 4);
    let out = run.stop();
    assert!(out.stderr.contains("no longer due"), "{}", out.stderr);
    assert!(home.journal()["active"].is_null());

    // Another refusal, then the plan file removed by the operator: the node runs on.
    let home2 = Home::new();
    std::fs::write(
        home2.data().join("upgrade-info.json"),
        r#"{"name":"plausible","height":1}"#,
    )
    .unwrap();
    assert_eq!(home2.run(&[]).finish(Duration::from_secs(30)).code(), 1);
    std::fs::remove_file(home2.data().join("upgrade-info.json")).unwrap();
    let run = home2.run(&[]);
    home2.wait_height("genesis", 2);
    run.stop();

    // A binary staged after the refusal: the restart retries and upgrades.
    let home3 = Home::new();
    home3.chain(&[("v2", 3)]);
    assert_eq!(home3.run(&[]).finish(Duration::from_secs(30)).code(), 1);
    home3.upgrade("v2", 2, json!({}));
    let run = home3.run(&[]);
    home3.wait_height("v2", 4);
    run.stop();
    assert_eq!(home3.current(), "upgrades/v2");
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

/// A home whose plan downloads `bytes` from `server` at `path`.
fn download_plan(home: &mut Home, server: &Server, path: &str, bytes: &[u8]) {
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    server.put(path, bytes.to_vec());
    let url = format!("{}?checksum=sha256:{}", server.url(path), sha256(bytes));
    let info = json!({"binaries": {"any": url}});
    home.chain_with_info("v2", 3, &info.to_string());
}

/// A payload of `len` bytes that gzip cannot shrink.

#[test]
fn a_stop_request_cancels_a_stalled_download_at_once() {
    let server = Server::start();
    let mut home = Home::new();
    download_plan(&mut home, &server, "/simd", &noise(64 * 1024));
    server.stall("/simd", 1024, usize::MAX);
    let run = home.run(&[]);
    // The download is under way and stalled: its first kilobyte is written.
    let partials = home.root().join(".wasmvisor-downloads/v2");
    home.wait_for("the download to stall", Duration::from_secs(30), |_| {
        std::fs::read_dir(&partials).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.len() >= 1024))
        })
    });
    let asked = Instant::now();
    let out = run.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the stop took {:?}: {}",
        asked.elapsed(),
        out.stderr
    );
    assert_eq!(out.code(), 143, "{}", out.stderr);
    assert_eq!(home.current(), "genesis");
    assert_eq!(home.events_of("start").len(), 1, "nothing relaunched");
    assert!(
        home.journal()["active"].is_object(),
        "resumed at next start"
    );
}

#[test]
fn a_stalled_body_is_retried_after_the_idle_timeout_and_resumed() {
    let server = Server::start();
    let mut home = Home::new();
    let archive = noise(200 * 1024);
    download_plan(&mut home, &server, "/simd", &archive);
    server.stall("/simd", 4096, 1);
    std::fs::write(
        home.root().join("plugins.toml"),
        "[[source]]\npath = \"bundled:http\"\nidle-timeout = \"1s\"\n",
    )
    .unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(60));
    // The payload is not a node binary: what matters here is that it arrived whole.
    let log = server.log();
    assert!(log.len() >= 2, "{log:?}\n{}", done.stderr);
    assert!(
        log[1].contains("range=Some(4096)"),
        "resumed at the stall: {log:?}\n{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("sent nothing for too long"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_source_timeout_bounds_every_retry() {
    let server = Server::start();
    let mut home = Home::new();
    download_plan(&mut home, &server, "/simd", &noise(64 * 1024));
    server.stall("/simd", 1024, usize::MAX);
    std::fs::write(
        home.root().join("plugins.toml"),
        "[[source]]\npath = \"bundled:http\"\ntimeout = \"3s\"\nidle-timeout = \"1s\"\n",
    )
    .unwrap();
    let started = Instant::now();
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "5 tries of a 3 s timeout took {:?}",
        started.elapsed()
    );
    assert!(done.stderr.contains("timeout of 3s"), "{}", done.stderr);
}

#[test]
fn a_forged_node_record_is_verified_and_never_kills_a_stranger() {
    let home = Home::new();
    // A live process that is not a group leader (it is in the test's group).
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", stranger.id())).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let start_time: u64 = after.split_whitespace().nth(19).unwrap().parse().unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(
        home.root().join("wasmvisor-node.json"),
        json!({"pid": stranger.id(), "start_time": start_time, "boot_id": boot.trim()}).to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let run = home.run(&[]);
    home.wait_height("genesis", 2);
    assert!(started.elapsed() < Duration::from_secs(20));
    let out = run.stop();
    assert!(
        out.stderr.contains("does not lead its own process group"),
        "{}",
        out.stderr
    );
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger was signalled"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
}

/// Runs wasmvisor through an upgrade with its stderr on `stderr`, and returns its exit code.
fn upgrade_with_stderr(stderr: Stdio) -> (Home, i32) {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let mut cmd = home.cmd(&["run", "start", "--home", home.path.to_str().unwrap()]);
    let mut child = cmd.stdout(Stdio::null()).stderr(stderr).spawn().unwrap();
    home.wait_height("v2", 4);
    signal(child.id(), SIGTERM);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    };
    (home, status.code().unwrap_or(-1))
}

#[test]
fn an_unwritable_stderr_never_takes_the_supervisor_down() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (home, code) = upgrade_with_stderr(Stdio::from(full));
    assert_eq!(code, 0, "exits with the node's status");
    assert_eq!(home.current(), "upgrades/v2");

    // A pipe whose reader is gone.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let (home, code) = upgrade_with_stderr(Stdio::from(writer));
    assert_eq!(code, 0);
    assert_eq!(home.current(), "upgrades/v2");
}

#[test]
fn names_are_escaped_recased_and_bounded_in_every_message() {
    // The refusal names the folder wasmvisor looks in.
    let home = Home::new();
    home.chain(&[("V2", 3)]);
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert!(
        done.stderr.contains("upgrades/v2/bin/simd does not exist"),
        "{}",
        done.stderr
    );
    assert!(!done.stderr.contains("upgrades/V2"), "{}", done.stderr);

    // A name with a newline and a terminal escape writes no line and no escape of its own, in
    // the supervisor's log and in every command that reads the plan or stages a binary by name.
    let home = Home::new();
    let name = "v2\n9:99AM INF forged line module=wasmvisor\x1b[2J";
    std::fs::write(
        home.data().join("upgrade-info.json"),
        json!({"name": name, "height": 1}).to_string(),
    )
    .unwrap();
    let clean = |what: &str, text: &str| {
        assert!(!text.contains('\x1b'), "{what}: {text:?}");
        assert!(
            !text.lines().any(|l| l.starts_with("9:99AM")),
            "{what}: {text}"
        );
    };
    let done = home.run(&[]).finish(Duration::from_secs(30));
    clean("run", &done.stderr);
    let binary = home.root().join("genesis/bin/simd");
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["show-upgrade-info"],
        vec!["add-upgrade", name, binary.to_str().unwrap()],
    ] {
        let out = home.output(&args);
        clean(
            &format!("{} (stdout)", args[0]),
            &String::from_utf8_lossy(&out.stdout),
        );
        clean(&format!("{} (stderr)", args[0]), &stderr(&out));
    }

    // A 10 000-character name is named too long, not blamed on a plugin.
    let home = Home::new();
    std::fs::write(
        home.data().join("upgrade-info.json"),
        json!({"name": "x".repeat(10_000), "height": 1}).to_string(),
    )
    .unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1);
    assert!(done.stderr.contains("is too long"), "{}", done.stderr);
    assert!(
        !done.stderr.contains("cannot use: an"),
        "not an oversized plugin answer: {}",
        done.stderr
    );
    assert!(done.stderr.len() < 4096, "{}", done.stderr.len());
    for args in [vec!["status"], vec!["show-upgrade-info"]] {
        let out = home.output(&args);
        assert!(out.stderr.len() < 4096, "{}: {}", args[0], out.stderr.len());
    }
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

/// A small tmpfs, unmounted when dropped; `None` where the kernel refuses to mount one.
/// A home whose cosmovisor tree is on a 48 MiB tmpfs.
fn home_on_small_disk() -> Option<(Home, Tmpfs)> {
    let home = Home::new();
    let disk = home.path.join("disk");
    let tmpfs = Tmpfs::mount(&disk, "size=48m")?;
    let root = home.root();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&root)
        .arg(disk.join("cosmovisor"))
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::remove_dir_all(&root).unwrap();
    symlink(disk.join("cosmovisor"), &root).unwrap();
    Some((home, tmpfs))
}

#[test]
fn an_oversized_download_is_bounded_by_the_disk_and_leaves_nothing() {
    let Some((mut home, _disk)) = home_on_small_disk() else {
        return;
    };
    let server = Server::start();
    download_plan(&mut home, &server, "/simd", &noise(64 << 20));
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("larger than"), "{}", done.stderr);
    let partials: Vec<_> = std::fs::read_dir(home.root().join(".wasmvisor-downloads/v2"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(partials.is_empty(), "{partials:?}");
    assert_eq!(home.current(), "genesis");
}

#[test]
fn a_decompression_bomb_is_refused_before_it_fills_the_disk() {
    let Some((mut home, _disk)) = home_on_small_disk() else {
        return;
    };
    // 256 MiB of zeros, a few hundred KiB compressed.
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::best(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(256 << 20);
    header.set_mode(0o755);
    header.set_cksum();
    builder
        .append_data(&mut header, "bin/simd", std::io::repeat(0).take(256 << 20))
        .unwrap();
    let bomb = builder.into_inner().unwrap().finish().unwrap();
    let server = Server::start();
    download_plan(&mut home, &server, "/simd.tar.gz", &bomb);
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("decompression bomb"),
        "{}",
        done.stderr
    );
    assert!(!home.root().join("upgrades/v2/bin/simd").exists());
    assert!(!home.root().join("upgrades/.v2.unpack").exists());
    let free = nix::sys::statvfs::statvfs(&home.root()).unwrap();
    assert!(
        free.blocks_available() as u64 * free.fragment_size() as u64 > 40 << 20,
        "the disk was left full"
    );
}

use std::io::Read as _;

#[test]
fn settings_that_make_no_sense_are_named() {
    for (key, value, needle) in [
        (
            "DAEMON_GRPC_ADDRESS",
            "not an address",
            "DAEMON_GRPC_ADDRESS",
        ),
        (
            "WASMVISOR_RPC_ADDRESS",
            "http://[::1",
            "WASMVISOR_RPC_ADDRESS",
        ),
        (
            "WASMVISOR_PLUGINS",
            "/",
            "is a directory; name the plugins.toml file",
        ),
    ] {
        let mut home = Home::new();
        home.set(key, value);
        let out = home.output(&["config"]);
        assert_eq!(out.status.code(), Some(1), "{key}={value}");
        assert!(
            stderr(&out).contains(needle),
            "{key}={value}: {}",
            stderr(&out)
        );
    }
    let mut home = Home::new();
    let file = home.path.join("c.toml");
    std::fs::write(
        &file,
        format!(
            "daemon_home = \"{}\"\ndaemon_name = [\"simd\"]\n",
            home.path.display()
        ),
    )
    .unwrap();
    home.unset("DAEMON_NAME");
    let out = home.output(&["config", "-c", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("key daemon_name: expected a string, got a TOML array"),
        "{}",
        stderr(&out)
    );

    // `current` that is not a link, and a binary that leads out of the tree.
    for kind in ["file", "dir"] {
        let home = Home::new();
        let current = home.root().join("current");
        std::fs::remove_file(&current).unwrap();
        if kind == "file" {
            std::fs::write(&current, "genesis").unwrap();
        } else {
            std::fs::create_dir(&current).unwrap();
        }
        let out = home.output(&["status"]);
        assert!(
            stderr(&out).contains("not a symlink") && stderr(&out).contains("ln -s genesis"),
            "{kind}: {}",
            stderr(&out)
        );
    }
    let home = Home::new();
    let bin = home.root().join("genesis/bin/simd");
    let real = home.path.join("simd-real");
    std::fs::rename(&bin, &real).unwrap();
    symlink(&real, &bin).unwrap();
    let done = home.run(&[]).finish(Duration::from_secs(20));
    assert!(
        done.stderr.contains("outside") && !done.stderr.contains("chmod"),
        "{}",
        done.stderr
    );
}

#[test]
fn the_backup_space_refusal_names_its_margin() {
    let Some((mut home, _disk)) = home_on_small_disk() else {
        return;
    };
    // data/ holds 46 MiB on another disk: all of it is copied, onto the 48 MiB one, and the
    // margin kept free does not fit beside it.
    let data_on_disk = home.root().join("../data-big");
    std::fs::create_dir_all(&data_on_disk).unwrap();
    home.set("UNSAFE_SKIP_BACKUP", "false")
        .set("DAEMON_DATA_BACKUP_DIR", data_on_disk.to_str().unwrap());
    std::fs::write(home.data().join("big"), noise(46 << 20)).unwrap();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("plus a margin of"), "{}", done.stderr);
}
