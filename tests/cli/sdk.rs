//! The plugin contract as authors meet it: 0.1 and 0.2 plugins side by side, the resolver
//! chain's semantics and attribution, `not-before`, `env` grants, captured output, imports
//! checked before compiling, and the `plugin` commands without a node's home.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Home, WASMVISOR, now_unix, sha256, sim_archive, wasm};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_plugins(home: &Home, toml: &str) -> std::path::PathBuf {
    let file = home.root().join("plugins.toml");
    std::fs::write(&file, toml).unwrap();
    file
}

fn entry(name: &str, crate_name: &str, extra: &str) -> String {
    format!(
        "[[resolver]]\nname = \"{name}\"\npath = \"{}\"\n{extra}\n",
        wasm(crate_name).display()
    )
}

#[test]
fn a_0_1_plugin_runs_beside_0_2_ones_in_a_real_upgrade() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}",
            entry(
                "legacy",
                "wasmvisor-fixture-legacy",
                "config = { deny = \"v9\" }"
            )
        ),
    );
    let out = home.output(&["plugin", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.lines()
            .any(|l| l.contains("cosmovisor") && l.contains("wasmvisor:plugin@0.2.0")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("legacy") && l.contains("wasmvisor:plugin@0.1.0")),
        "{text}"
    );

    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let done = run.stop();
    assert!(
        done.stderr.contains("legacy 0.1 policy asked about v2"),
        "{}",
        done.stderr
    );
    assert_eq!(home.history()[1].0, "v2");
}

#[test]
fn a_fallback_resolver_supplies_the_binary_and_a_policy_veto_stays_a_veto() {
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    // The plan carries no binaries map: the bundled resolver has nothing to offer.
    home.chain(&[("v2", 3)]);
    let archive = home.path.join("mirror-v2.tar.gz");
    std::fs::write(
        &archive,
        sim_archive(
            &home,
            json!({"version": "v2", "ordinal": 2, "handles": "v2"}),
        ),
    )
    .unwrap();
    let fallback = entry(
        "mirror",
        "wasmvisor-fixture-probe",
        &format!(
            "config = {{ mode = \"fallback\", url = \"file://{}\" }}",
            archive.display()
        ),
    );
    write_plugins(
        &home,
        &format!("[[resolver]]\npath = \"bundled:cosmovisor\"\n{fallback}"),
    );
    let plan = home.plan_file("v2");
    let (code, answer, err) = home.plugin_call("resolver", "mirror", &plan);
    assert_eq!(code, Some(0), "{answer} {err}");
    assert_eq!(answer["decision"], "fetch", "{answer}");
    assert_eq!(answer["decided_by"], "mirror", "{answer}");
    assert_eq!(answer["answers"][0]["plugin"], "cosmovisor", "{answer}");
    assert_eq!(answer["answers"][0]["decision"], "unresolved", "{answer}");
    assert!(
        answer["answers"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("info is empty"),
        "{answer}"
    );

    // Asked alone, the bundled resolver's "no binary" is its own, and says no in the status.
    let (code, answer, _) = home.plugin_call("resolver", "cosmovisor", &plan);
    assert_eq!(code, Some(3), "{answer}");
    assert_eq!(answer["decided_by"], "cosmovisor", "{answer}");

    // The mirror supplies the binary in a real upgrade.
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    run.stop();

    // A policy after the mirror vetoes: the refusal is the policy's, and nothing runs.
    let home = Home::new();
    home.chain(&[("v2", 3)]);
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{fallback}{}",
            entry(
                "policy",
                "wasmvisor-plugin-template",
                "config = { deny = \"v2\" }"
            )
        ),
    );
    let plan = home.plan_file("v2");
    let (code, answer, err) = home.plugin_call("resolver", "policy", &plan);
    assert_eq!(code, Some(3), "{answer} {err}");
    assert_eq!(answer["decision"], "refuse", "{answer}");
    assert_eq!(answer["decided_by"], "policy", "{answer}");
    assert_eq!(answer["answers"].as_array().unwrap().len(), 3, "{answer}");
}

#[test]
fn not_before_holds_the_switch_with_the_node_halted_until_the_time() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    // Far enough ahead that the node halts and the switch is plainly held back.
    let at = now_unix() + 6;
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}",
            entry(
                "window",
                "wasmvisor-fixture-probe",
                &format!(
                    "config = {{ mode = \"not-before\", at = {at}, reason = \"maintenance window\" }}"
                )
            )
        ),
    );
    let run = home.run(&[]);
    home.wait_for("the switch held back", Duration::from_secs(60), |h| {
        let out = h.output(&["status"]);
        String::from_utf8_lossy(&out.stdout).contains("stays halted until")
    });
    let status = String::from_utf8_lossy(&home.output(&["status"]).stdout).into_owned();
    assert!(
        status.contains("window") && status.contains("maintenance window"),
        "{status}"
    );
    let json: Value = serde_json::from_slice(&home.output(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        json["upgrade_in_progress"]["waiting"]["until_unix"], at,
        "{json}"
    );
    assert_eq!(home.current(), "genesis", "nothing switched while waiting");

    // Stopped while it waits: the wait is still what `status` shows, and a restart asks the
    // resolvers again, who defer again until the same time.
    let stopped = run.stop();
    // No node ran: a stop by SIGTERM ends supervision with 128 + 15.
    assert_eq!(stopped.code(), 143, "{}", stopped.stderr);
    let status = String::from_utf8_lossy(&home.output(&["status"]).stdout).into_owned();
    assert!(status.contains("stays halted until"), "{status}");
    assert_eq!(home.current(), "genesis");
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    assert!(
        now_unix() >= at,
        "the upgraded node ran before the time the resolver named"
    );
    let done = run.stop();
    assert!(done.stderr.contains("the switch waits"), "{}", done.stderr);
    let journal = home.journal();
    let phases: Vec<&str> = journal["last"]["phases"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["phase"].as_str()).collect())
        .unwrap_or_default();
    assert!(phases.contains(&"wait"), "{journal}");
}

#[test]
fn env_grants_expose_exactly_the_named_variables() {
    let mut home = Home::new();
    home.set("WASMVISOR_TEST_GRANTED", "yes");
    let plan = home.plan_file("v2");
    write_plugins(
        &home,
        &format!(
            "{}{}",
            entry(
                "granted",
                "wasmvisor-fixture-probe",
                "config = { mode = \"env\", name = \"WASMVISOR_TEST_GRANTED\" }\nenv = [\"WASMVISOR_TEST_GRANTED\"]"
            ),
            entry(
                "ungranted",
                "wasmvisor-fixture-probe",
                "config = { mode = \"env\", name = \"DAEMON_HOME\" }\nenv = [\"WASMVISOR_TEST_GRANTED\"]"
            ),
        ),
    );
    let (_, answer, err) = home.plugin_call("resolver", "granted", &plan);
    // The chain runs up to the plugin asked: `granted` first.
    assert_eq!(
        answer["answers"][0]["reason"], "env WASMVISOR_TEST_GRANTED=yes",
        "{answer} {err}"
    );
    let (_, answer, err) = home.plugin_call("resolver", "ungranted", &plan);
    assert_eq!(
        answer["answers"][1]["reason"], "env DAEMON_HOME unset",
        "{answer} {err}"
    );

    write_plugins(
        &home,
        &entry("bad", "wasmvisor-fixture-probe", "env = [\"NOT-A NAME\"]"),
    );
    let out = home.output(&["plugin", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("env entry \"NOT-A NAME\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn what_a_failing_plugin_printed_is_logged_and_quoted_in_the_error() {
    let home = Home::new();
    let plan = home.plan_file("v2");
    write_plugins(
        &home,
        &entry(
            "loud",
            "wasmvisor-fixture-probe",
            "config = { mode = \"panic\", message = \"the registry answered 418\" }",
        ),
    );
    let (code, _, err) = home.plugin_call("resolver", "loud", &plan);
    assert_eq!(code, Some(1), "{err}");
    let error = err
        .lines()
        .find(|l| l.starts_with("wasmvisor:"))
        .unwrap_or_default();
    assert!(error.contains("plugin loud (resolver)"), "{err}");
    assert!(error.contains("the registry answered 418"), "{err}");
    assert!(error.contains("probe: details on stderr"), "{err}");
    // Each line is also in the log, under the plugin's name and stream.
    assert!(
        err.lines()
            .any(|l| l.contains("probe: about to fail (stdout)") && l.contains("stream=stdout")),
        "{err}"
    );
}

#[test]
fn a_missing_import_is_refused_before_compiling_and_nothing_is_cached() {
    let home = Home::new();
    write_plugins(&home, &entry("needs", "wasmvisor-fixture-needs", ""));
    let out = home.output(&["plugin", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("it imports fixture:needs/secrets") && err.contains("does not provide"),
        "{err}"
    );
    let digest = sha256(&std::fs::read(wasm("wasmvisor-fixture-needs")).unwrap());
    let cache = concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-cache");
    let cached: Vec<String> = std::fs::read_dir(cache)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !cached.iter().any(|n| n.contains(&digest[..32])),
        "{cached:?}"
    );
}

#[test]
fn plugin_commands_work_without_a_home() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugins.toml");
    std::fs::write(
        &file,
        format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n[[resolver]]\nname = \"policy\"\npath = \"{}\"\nconfig = {{ deny = \"v3\" }}\n",
            wasm("wasmvisor-plugin-template").display()
        ),
    )
    .unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, json!({"name": "v3", "height": 9}).to_string()).unwrap();
    let bare = |args: &[&str]| {
        Command::new(WASMVISOR)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let file = file.to_str().unwrap();
    let out = bare(&["plugin", "--plugins", file, "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Two resolvers and the bundled source.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 plugin(s) ready"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Compiled into the user's cache, not into a home.
    assert!(dir.path().join(".cache/wasmvisor").is_dir());

    let out = bare(&[
        "plugin",
        "--plugins",
        file,
        "call",
        "resolver",
        "policy",
        "--plan",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["decided_by"], "policy", "{answer}");

    let out = bare(&["plugin", "--plugins", file, "call", "resolver", "policy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--plan FILE"), "{}", stderr(&out));

    // Without --plugins, the home is still required, and named.
    let out = bare(&["plugin", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("DAEMON_HOME"), "{}", stderr(&out));
}

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

/// Where `plugins/build-guests` installed the JavaScript and Python toolchains.
fn toolchain(tool: &str) -> std::path::PathBuf {
    let target = std::path::Path::new(crate::harness::PLUGINS).join("../../..");
    let path = match tool {
        "componentize-js" => target.join("guest-build/js/node_modules/.bin/componentize-js"),
        _ => target.join("guest-build/py/bin/componentize-py"),
    };
    assert!(
        path.exists(),
        "{} is missing: run plugins/build-guests (the README's test command does)",
        path.display()
    );
    path
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

#[test]
fn plugin_new_starts_a_project_that_builds_and_runs_in_each_language() {
    let dir = tempfile::tempdir().unwrap();
    let wasmvisor = |args: &[&str]| {
        Command::new(WASMVISOR)
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env(
                "WASMVISOR_PLUGIN_CACHE",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-cache"),
            )
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // The Rust ones share a target folder across runs: wit-bindgen is compiled once.
    let cargo = |project: &str| {
        let mut cmd = Command::new("cargo");
        cmd.args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(dir.path().join(project));
        for (key, _) in std::env::vars() {
            if key.starts_with("CARGO_") && key != "CARGO_HOME" {
                cmd.env_remove(key);
            }
        }
        cmd.env(
            "CARGO_TARGET_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/scaffold-target"),
        );
        cmd
    };
    for (name, lang, world) in [
        ("policy-rs", "rust", "resolver"),
        ("policy-js", "js", "resolver"),
        ("policy-py", "python", "resolver"),
        ("check-rs", "rust", "health"),
    ] {
        let out = wasmvisor(&["plugin", "new", name, "--lang", lang, "--world", world]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let project = dir.path().join(name);
        assert!(project.join("wit/plugin.wit").is_file() && project.join("README.md").is_file());
        match lang {
            "rust" => {
                run_ok(&mut cargo(name), name);
                // plugins.toml names the output inside the project: put it there.
                let built = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                    .join("scaffold-target/wasm32-wasip2/release")
                    .join(format!("{}.wasm", name.replace('-', "_")));
                let dest = project.join(format!(
                    "target/wasm32-wasip2/release/{}.wasm",
                    name.replace('-', "_")
                ));
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::copy(built, dest).unwrap();
            }
            "js" => run_ok(
                Command::new(toolchain("componentize-js"))
                    .args([
                        "plugin.js",
                        "--wit",
                        "wit",
                        "--world-name",
                        world,
                        "--disable",
                        "fetch-event",
                        "--out",
                        &format!("{name}.wasm"),
                    ])
                    .current_dir(&project),
                name,
            ),
            _ => run_ok(
                Command::new(toolchain("componentize-py"))
                    .args(["-d", "wit", "-w", world])
                    .args([
                        "--import-interface-name",
                        "wasmvisor:plugin/types@0.2.0=types",
                        "--import-interface-name",
                        "wasi:http/types@0.2.12=http_types",
                    ])
                    .args(["componentize", "-p", ".", "app"])
                    .args(["-o", &format!("{name}.wasm")])
                    .current_dir(&project),
                name,
            ),
        }
        let plugins = format!("{name}/plugins.toml");
        // A resolver is asked about the plan its policy denies (its plugins.toml says
        // deny = ["v99"]); a health check about the scaffold's own plan.
        let plan = if world == "resolver" {
            std::fs::write(
                project.join("v99.json"),
                json!({"name": "v99", "height": 9}).to_string(),
            )
            .unwrap();
            format!("{name}/v99.json")
        } else {
            format!("{name}/plan.json")
        };
        let out = wasmvisor(&[
            "plugin",
            "--plugins",
            &plugins,
            "call",
            world,
            name,
            "--plan",
            &plan,
        ]);
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let said = (out.status.code(), stderr(&out));
        if world == "resolver" {
            assert_eq!(said.0, Some(3), "{name}: {answer} {}", said.1);
            assert_eq!(answer["decided_by"], name, "{answer}");
            assert!(
                answer["reason"].as_str().unwrap().contains("v99 is denied"),
                "{answer}"
            );
            assert!(said.1.contains("asked about v99"), "{}", said.1);
        } else {
            assert_eq!(said.0, Some(0), "{name}: {answer} {}", said.1);
            assert!(answer["pending"].as_str().is_some(), "{answer}");
        }
    }
    // An existing folder is never overwritten; a bad name is refused.
    let out = wasmvisor(&["plugin", "new", "policy-rs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = wasmvisor(&["plugin", "new", "../escape"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path().join("../escape").exists());
}

/// `crate_name`'s component with one byte of a function body made an invalid opcode: its
/// sections all read, so only compiling it finds the fault.
pub(crate) fn miscompiling(home: &Home, crate_name: &str) -> std::path::PathBuf {
    use wasmtime::wasmparser::{Parser, Payload};
    let mut bytes = std::fs::read(wasm(crate_name)).unwrap();
    let body = Parser::new(0)
        .parse_all(&bytes)
        .filter_map(Result::ok)
        .find_map(|p| match p {
            Payload::CodeSectionEntry(body) if body.range().len() > 16 => Some(body.range()),
            _ => None,
        })
        .expect("a function body");
    // The last byte of a body is its `end`: make it an opcode that does not exist.
    bytes[body.end - 1] = 0xff;
    let path = home.path.join("miscompiling.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_plugin_that_cannot_compile_stops_the_upgrade_before_the_switch() {
    let mut home = Home::new();
    // A cache of its own: nothing compiled earlier stands in for it.
    let cache = home.path.join("cache");
    home.set("WASMVISOR_PLUGIN_CACHE", cache.to_str().unwrap());
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let broken = miscompiling(&home, "wasmvisor-plugin-cometbft");
    write_plugins(
        &home,
        &format!(
            "[[health]]\nname = \"broken\"\npath = \"{}\"\n",
            broken.display()
        ),
    );
    // `plugin check` compiles now and says so.
    let out = home.output(&["plugin", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("plugin broken (health)"),
        "{}",
        stderr(&out)
    );

    // The supervisor checks it (it reads fine), launches the node, compiles in the background;
    // at the upgrade, the switch waits for the compilation, and does not happen.
    let done = home.run(&[]).finish(Duration::from_secs(60));
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("1 plugin(s) cannot be used")
            && done.stderr.contains("plugin broken (health)"),
        "{}",
        done.stderr
    );
    assert_eq!(home.current(), "genesis", "nothing was switched");
    assert_eq!(home.history()[0].0, "genesis");
}

#[test]
fn a_policy_given_no_binary_refuses_so_nothing_after_it_goes_unjudged() {
    let mut home = Home::new();
    home.set("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true");
    let plan = home.plan_file("v2");
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}{}",
            entry(
                "allowlist",
                "wasmvisor-plugin-allowlist",
                &format!("config = {{ sha256 = \"{}\" }}", "a".repeat(64))
            ),
            entry(
                "late-mirror",
                "wasmvisor-fixture-probe",
                "config = { mode = \"fallback\", url = \"file:///nowhere\" }"
            ),
        ),
    );
    let (code, answer, err) = home.plugin_call("resolver", "late-mirror", &plan);
    assert_eq!(code, Some(3), "{answer} {err}");
    assert_eq!(answer["decided_by"], "allowlist", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("allowlist: no binary to judge"),
        "{answer}"
    );
    assert_eq!(
        answer["answers"].as_array().unwrap().len(),
        2,
        "the veto ends the chain: {answer}"
    );
}

#[test]
fn a_deferral_that_passed_while_the_upgrade_prepared_is_asked_again() {
    let mut home = Home::new();
    // The resolvers are asked when the halt is detected; the delay then outlasts the deferral.
    home.set("DAEMON_RESTART_DELAY", "6s");
    home.upgrade("v2", 2, json!({}));
    home.chain(&[("v2", 3)]);
    let at = now_unix() + 3;
    write_plugins(
        &home,
        &format!(
            "[[resolver]]\npath = \"bundled:cosmovisor\"\n{}",
            entry(
                "window",
                "wasmvisor-fixture-probe",
                &format!("config = {{ mode = \"not-before\", at = {at}, reason = \"soon\" }}")
            )
        ),
    );
    let run = home.run(&[]);
    home.wait_height("v2", 4);
    let done = run.stop();
    let answers: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.contains("resolver answered") && l.contains("plugin=window"))
        .collect();
    assert_eq!(
        answers.len(),
        2,
        "asked once more after the time passed: {answers:#?}"
    );
    assert!(answers[0].contains("not before"), "{}", answers[0]);
    assert!(
        answers[1].contains("use the staged binary"),
        "{}",
        answers[1]
    );
    // Nothing waited: the time had passed by then.
    assert!(!done.stderr.contains("the switch waits"), "{}", done.stderr);
}
