//! A release signed with minisign, verified by the bundled plugins, and everything unsigned
//! refused.

use serde_json::json;

use crate::harness::{Home, sha256, sim_archive};

use super::{entry, write_plugins};

/// A release signed as a release manager would: `SHA256SUMS` beside the archive, and its
/// minisign signature `SHA256SUMS.minisig`.
struct Release {
    server: crate::harness::serve::Server,
    key: minisign::KeyPair,
    sha: String,
}

impl Release {
    fn publish(home: &Home) -> Release {
        let server = crate::harness::serve::Server::start();
        let archive = sim_archive(
            home,
            json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
        );
        let sha = sha256(&archive);
        server.put("/rel/simd-v2.tar.gz", archive);
        let key = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let release = Release { server, key, sha };
        release.sign(&format!("{}  simd-v2.tar.gz\n", release.sha), &release.key);
        release
    }

    /// Publishes `sums` as SHA256SUMS, signed by `key`.
    fn sign(&self, sums: &str, key: &minisign::KeyPair) {
        self.server.put("/rel/SHA256SUMS", sums.as_bytes().to_vec());
        self.server
            .put("/rel/SHA256SUMS.minisig", signature(sums, key).into_bytes());
    }

    fn plugins(&self, home: &Home, extra: &str) {
        let port = self
            .server
            .url("/")
            .split(':')
            .nth(2)
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        write_plugins(
            home,
            &format!(
                "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}",
                entry(
                    "signed",
                    "wasmvisor-plugin-minisign",
                    &format!(
                        "config = {{ public-key = \"{}\" {extra} }}\nallow-hosts = [\"127.0.0.1:{port}\"]",
                        self.key.pk.to_base64()
                    )
                )
            ),
        );
    }
}

fn signature(data: &str, key: &minisign::KeyPair) -> String {
    minisign::sign(
        Some(&key.pk),
        &key.sk,
        std::io::Cursor::new(data.as_bytes()),
        None,
        None,
    )
    .unwrap()
    .into_string()
}

// Over 80 lines: one published release (its key, server and plugins) against which the signed
// artifact and then each unsigned or tampered variant are asked in turn.
#[test]
fn a_signed_release_upgrades_and_anything_unsigned_is_refused() {
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let release = Release::publish(&home);
    let url = release.server.url("/rel/simd-v2.tar.gz");
    crate::harness::plan_with_binary(&home, "v2", 3, &url);
    release.plugins(&home, "");
    let plan = home.path.join("plan.json");
    let info = json!({"binaries": {crate::harness::platform(): url}}).to_string();
    std::fs::write(
        &plan,
        json!({"name": "v2", "height": 3, "info": info}).to_string(),
    )
    .unwrap();

    // Signed: fetched, with the signed sha256 as the checksum the host verifies.
    let (code, answer, err) = home.plugin_call("resolver", "signed", &plan);
    assert_eq!(code, Some(0), "{answer} {err}");
    assert_eq!(
        answer["artifacts"][0]["checksum"],
        format!("sha256:{}", release.sha),
        "{answer}"
    );

    // Signed by a key not configured: refused, and the reason says so.
    let stranger = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let sums = format!("{}  simd-v2.tar.gz\n", release.sha);
    release.sign(&sums, &stranger);
    let (code, answer, _) = home.plugin_call("resolver", "signed", &plan);
    assert_eq!(code, Some(3), "{answer}");
    assert_eq!(answer["decided_by"], "signed", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("no configured public-key verifies"),
        "{answer}"
    );

    // The checksum file changed after it was signed: refused.
    release.sign(&sums, &release.key);
    release.server.put(
        "/rel/SHA256SUMS",
        format!("{}  simd-v2.tar.gz\n", "0".repeat(64)).into_bytes(),
    );
    let (code, answer, _) = home.plugin_call("resolver", "signed", &plan);
    assert_eq!(code, Some(3), "{answer}");

    // Signed, but the plan's own checksum names another binary: refused.
    release.sign(&sums, &release.key);
    let wrong = json!({"binaries": {crate::harness::platform(): format!("{url}?checksum=sha256:{}", "1".repeat(64))}}).to_string();
    let wrong_plan = home.path.join("wrong.json");
    std::fs::write(
        &wrong_plan,
        json!({"name": "v2", "height": 3, "info": wrong}).to_string(),
    )
    .unwrap();
    let (code, answer, _) = home.plugin_call("resolver", "signed", &wrong_plan);
    assert_eq!(code, Some(3), "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("is not the signed sha256"),
        "{answer}"
    );

    // The signature given in the plan instead of beside the binary.
    release
        .server
        .put("/rel/SHA256SUMS.minisig", b"gone".to_vec());
    release.plugins(&home, ", signature = \"plan\"");
    let in_plan = json!({"binaries": {crate::harness::platform(): url}, "minisig": signature(&sums, &release.key)}).to_string();
    let plan2 = home.path.join("plan2.json");
    std::fs::write(
        &plan2,
        json!({"name": "v2", "height": 3, "info": in_plan}).to_string(),
    )
    .unwrap();
    let (code, answer, err) = home.plugin_call("resolver", "signed", &plan2);
    assert_eq!(code, Some(0), "{answer} {err}");

    // A real upgrade through the signed release.
    release.server.put(
        "/rel/SHA256SUMS.minisig",
        signature(&sums, &release.key).into_bytes(),
    );
    release.plugins(&home, "");
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();
    assert_eq!(
        crate::harness::sha256(&std::fs::read(home.root().join("upgrades/v2/bin/simd")).unwrap()),
        crate::harness::sha256(&std::fs::read(home.path.join("pkg/v2/bin/simd")).unwrap())
    );
}
