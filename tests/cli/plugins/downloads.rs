//! The bundled plugins' downloads: verified and installed, a wrong checksum refused, retried
//! and resumed, and the permission and checksum they need.

use std::time::Duration;

use serde_json::json;

use crate::harness::serve::Server;
use crate::harness::*;

use super::phases;

#[test]
fn bundled_plugins_download_verify_and_install_the_upgrade_binary() {
    let server = Server::start();
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true")
        .set("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM", "true");
    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
    );
    server.put("/releases/simd-v2.tar.gz", archive.clone());
    // Through a redirect, as release hosts do.
    server.redirect("/download/v2", "/releases/simd-v2.tar.gz");
    let url = format!(
        "{}?checksum=sha256:{}",
        server.url("/download/v2"),
        sha256(&archive)
    );
    plan_with_binary(&home, "v2", 3, &url);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let out = run.stop();
    assert_eq!(
        home.history()[0],
        ("genesis".into(), 1, 2),
        "{}",
        out.stderr
    );
    assert_eq!(home.history()[1].1, 3);
    assert_eq!(home.current(), "upgrades/v2");
    let binary = home.root().join("upgrades/v2/bin/simd");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&binary).unwrap().permissions().mode() & 0o111,
        0o111
    );
    assert!(
        phases(&home).contains(&"fetch".to_string()),
        "{:?}",
        phases(&home)
    );
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.starts_with("/releases/simd-v2.tar.gz"))
    );
    assert!(
        !home.root().join(".wasmvisor-downloads/v2").exists(),
        "the partial download is cleaned up"
    );
}

#[test]
fn a_wrong_checksum_is_refused_and_nothing_is_installed() {
    let server = Server::start();
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
    );
    server.put("/simd-v2.tar.gz", archive);
    let wrong = sha256(b"something else");
    plan_with_binary(
        &home,
        "v2",
        3,
        &format!("{}?checksum=sha256:{wrong}", server.url("/simd-v2.tar.gz")),
    );
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("checksum mismatch"), "{}", done.stderr);
    assert!(done.stderr.contains(&wrong), "{}", done.stderr);
    assert!(!home.root().join("upgrades/v2/bin/simd").exists());
    assert_eq!(home.current(), "genesis");
    assert_eq!(
        home.history().len(),
        1,
        "the old binary never ran past the halt"
    );
    let leftovers: Vec<_> = std::fs::read_dir(home.root().join(".wasmvisor-downloads/v2"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn downloads_retry_and_resume_where_they_stopped() {
    let server = Server::start();
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let archive = sim_archive_with_payload(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
        64 * 1024,
    );
    assert!(archive.len() > 4000);
    server.put("/simd-v2.tar.gz", archive.clone());
    server.unavailable(1);
    server.cut_once("/simd-v2.tar.gz", 2048);
    let url = format!(
        "{}?checksum=sha256:{}",
        server.url("/simd-v2.tar.gz"),
        sha256(&archive)
    );
    plan_with_binary(&home, "v2", 3, &url);
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let out = run.stop();
    let log = server.log();
    assert!(log.len() >= 3, "{log:?}\n{}", out.stderr);
    assert!(
        log.iter().any(|l| l.contains("range=Some(2048)")),
        "the third request resumes at the cut: {log:?}\n{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(home.root().join("upgrades/v2/lib/payload"))
            .unwrap()
            .len(),
        64 * 1024,
        "the archive's other files are installed beside bin/"
    );
}

#[test]
fn downloads_need_permission_and_a_checksum_when_required() {
    let server = Server::start();
    let mut home = Home::new();
    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
    );
    server.put("/simd-v2.tar.gz", archive);
    plan_with_binary(&home, "v2", 3, &server.url("/simd-v2.tar.gz"));
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1);
    assert!(
        done.stderr.contains("DAEMON_ALLOW_DOWNLOAD_BINARIES"),
        "{}",
        done.stderr
    );

    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true")
        .set("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM", "true");
    let done = home.run(&[]).finish(Duration::from_secs(30));
    assert_eq!(done.code(), 1);
    assert!(
        done.stderr.contains("DAEMON_DOWNLOAD_MUST_HAVE_CHECKSUM"),
        "{}",
        done.stderr
    );
    assert!(
        server.log().is_empty(),
        "nothing was downloaded: {:?}",
        server.log()
    );
    assert_eq!(home.current(), "genesis");
}

/// A home whose plan's binary is served over HTTPS by a test CA's certificate, the host's store
/// being `ca_pem` (`SSL_CERT_FILE`, as on a host with a private CA); the plain server behind.
fn https_home(ca_pem: impl FnOnce(&crate::harness::tls::Tls) -> String) -> (Home, Server) {
    let server = Server::start();
    let tls = crate::harness::tls::front(server.port);
    let mut home = Home::new();
    let ca = home.root().join("ca.pem");
    std::fs::write(&ca, ca_pem(&tls)).unwrap();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true")
        .set("SSL_CERT_FILE", ca.to_str().unwrap());
    let archive = sim_archive(
        &home,
        json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
    );
    server.put("/simd-v2.tar.gz", archive.clone());
    let url = format!(
        "{}?checksum=sha256:{}",
        tls.url("/simd-v2.tar.gz"),
        sha256(&archive)
    );
    plan_with_binary(&home, "v2", 3, &url);
    (home, server)
}

/// HTTPS trusts the host's CA store: a release served under a certificate that CA signed is
/// fetched and run.
#[test]
fn https_downloads_trust_the_hosts_ca_store() {
    let (home, server) = https_home(|tls| tls.ca_pem.clone());
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let out = run.stop();
    assert_eq!(home.current(), "upgrades/v2", "{}", out.stderr);
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.starts_with("/simd-v2.tar.gz")),
        "{:?}",
        server.log()
    );
}

/// A server whose certificate no CA of the host's store signed is refused, named as a TLS
/// failure, and the node keeps its binary.
#[test]
fn https_from_a_server_the_hosts_store_does_not_trust_is_refused() {
    let (home, server) = https_home(|_| crate::harness::tls::unrelated_ca());
    let done = home.run(&[]).finish(Duration::from_secs(120));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("UnknownIssuer"),
        "the error says the certificate's issuer is not trusted: {}",
        done.stderr
    );
    assert_eq!(home.current(), "genesis");
    assert!(server.log().is_empty(), "{:?}", server.log());
}
