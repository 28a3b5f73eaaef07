//! `plugin new`: a project in each language that builds with its toolchain and answers as its
//! world says.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::harness::WASMVISOR;

use super::stderr;

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

/// `wasmvisor args` in `dir`, with `dir` as its home and nothing of the test's environment
/// but `PATH`.
fn wasmvisor_in(dir: &Path, args: &[&str]) -> Output {
    wasmvisor_env(dir, args, &[])
}

/// `wasmvisor_in`, with `env` set as well.
fn wasmvisor_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(WASMVISOR)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env(
            "WASMVISOR_PLUGIN_CACHE",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-cache"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `cargo build` of the Rust project `dir/project` for wasm32-wasip2. The Rust ones share a
/// target folder across runs: wit-bindgen is compiled once.
fn cargo_in(dir: &Path, project: &str) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--target",
        "wasm32-wasip2",
    ])
    .current_dir(dir.join(project));
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
}

/// Builds the new project `name` in `lang` with its toolchain, to where its `plugins.toml`
/// names the component.
fn build(dir: &Path, project: &Path, name: &str, lang: &str, world: &str) {
    match lang {
        "rust" => {
            run_ok(&mut cargo_in(dir, name), name);
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
                .current_dir(project),
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
                .current_dir(project),
            name,
        ),
    }
}

/// `plugin call` of the built project answers as its world says.
fn assert_answers_as_its_world(dir: &Path, project: &Path, name: &str, world: &str) {
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
    // `plugin --plugins <project>/plugins.toml call WORLD NAME --plan PLAN`, with `env`.
    let call = |plan: &str, env: &[(&str, &str)]| {
        let args = [
            "plugin",
            "--plugins",
            &plugins,
            "call",
            world,
            name,
            "--plan",
            plan,
        ];
        let out = wasmvisor_env(dir, &args, env);
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), answer, stderr(&out))
    };
    let (code, answer, err) = call(&plan, &[]);
    let said = (code, err);
    if world == "resolver" {
        assert_eq!(said.0, Some(3), "{name}: {answer} {}", said.1);
        assert_eq!(answer["decided_by"], name, "{answer}");
        assert!(
            answer["reason"].as_str().unwrap().contains("v99 is denied"),
            "{answer}"
        );
        assert!(said.1.contains("asked about v99"), "{}", said.1);
        // The guide's own first call: the scaffold's plan, downloads allowed — the bundled
        // resolver offers the plan's binary, this one lets it through.
        let (code, answer, err) = call(
            &format!("{name}/plan.json"),
            &[("DAEMON_ALLOW_DOWNLOAD_BINARIES", "true")],
        );
        assert_eq!(code, Some(0), "{name}: {answer} {err}");
        assert_eq!(answer["decision"], "fetch", "{answer}");
        assert_eq!(answer["decided_by"], "cosmovisor", "{answer}");
    } else {
        assert_eq!(said.0, Some(0), "{name}: {answer} {}", said.1);
        assert!(answer["pending"].as_str().is_some(), "{answer}");
    }
}

#[test]
fn plugin_new_starts_a_project_that_builds_and_runs_in_each_language() {
    let dir = tempfile::tempdir().unwrap();
    let wasmvisor = |args: &[&str]| wasmvisor_in(dir.path(), args);
    for (name, lang, world) in [
        ("policy-rs", "rust", "resolver"),
        ("policy-js", "js", "resolver"),
        ("policy-py", "python", "resolver"),
        ("check-rs", "rust", "health"),
        ("check-py", "python", "health"),
    ] {
        let out = wasmvisor(&["plugin", "new", name, "--lang", lang, "--world", world]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let project = dir.path().join(name);
        assert!(project.join("wit/plugin.wit").is_file() && project.join("README.md").is_file());
        build(dir.path(), &project, name, lang, world);
        assert_answers_as_its_world(dir.path(), &project, name, world);
    }
    // An existing folder is never overwritten; a bad name is refused.
    let out = wasmvisor(&["plugin", "new", "policy-rs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = wasmvisor(&["plugin", "new", "../escape"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path().join("../escape").exists());
}

/// A JavaScript resolver that answers a tag its world does not have: the error says the shape
/// the world expects, in JavaScript, beside the binding's own words.
#[test]
fn a_wrong_answer_is_told_the_shape_its_world_expects() {
    let dir = tempfile::tempdir().unwrap();
    let (name, world) = ("wrong-js", "resolver");
    let out = wasmvisor_in(
        dir.path(),
        &["plugin", "new", name, "--lang", "js", "--world", world],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let project = dir.path().join(name);
    let js = std::fs::read_to_string(project.join("plugin.js")).unwrap();
    let js = js.replace("return { tag: \"refuse\",", "return { tag: \"refused\",");
    std::fs::write(project.join("plugin.js"), js).unwrap();
    build(dir.path(), &project, name, "js", world);
    std::fs::write(
        project.join("v99.json"),
        json!({"name": "v99", "height": 9}).to_string(),
    )
    .unwrap();
    let plugins = format!("{name}/plugins.toml");
    let plan = format!("{name}/v99.json");
    let out = wasmvisor_in(
        dir.path(),
        &[
            "plugin",
            "--plugins",
            &plugins,
            "call",
            world,
            name,
            "--plan",
            &plan,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("refused"), "the binding's own words: {err}");
    assert!(
        err.contains("the resolver world expects a decision object")
            && err.contains("{ tag: 'refuse', val: 'why' }"),
        "{err}"
    );
}
