//! The preflight of a staged binary against real ELF files: one that needs a library this host
//! lacks is not ready ahead of its halt and refused at it, with `current` unchanged; one whose
//! `version` fails is not ready, with what it printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::harness::*;

use super::{T, chain_home, said, status, wait_next};

/// Builds, with the host's C compiler, a node binary linked against a shared library of its own
/// (`libwvneed.so`, left in `dir/lib`): its `version` prints `v2`; anything else runs the
/// simulator with `config`. Returns the program.
fn program_needing_a_library(dir: &Path, config: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(dir.join("need.c"), "int wv_need(void) { return 2; }\n").unwrap();
    std::fs::write(dir.join("main.c"), MAIN_C).unwrap();
    let cc = |args: &[&str]| {
        let out = Command::new("cc")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("a C compiler (`cc`, Debian's gcc) builds the test's ELF files");
        assert!(
            out.status.success(),
            "cc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cc(&["-shared", "-fPIC", "-o", "lib/libwvneed.so", "need.c"]);
    let sim = format!("-DSIM=\"{SIM}\"");
    let config = format!("-DCONFIG=\"{}\"", config.display());
    cc(&[&sim, &config, "-o", "prog", "main.c", "-Llib", "-lwvneed"]);
    dir.join("prog")
}

const MAIN_C: &str = r#"#include <stdio.h>
#include <string.h>
#include <unistd.h>
int wv_need(void);
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("v%d\n", wv_need());
        return 0;
    }
    char *args[64];
    int n = 0;
    args[n++] = SIM;
    args[n++] = "--sim-config";
    args[n++] = CONFIG;
    for (int i = 1; i < argc && n < 63; i++) args[n++] = argv[i];
    args[n] = 0;
    execv(SIM, args);
    perror("execv");
    return 127;
}
"#;

#[test]
fn a_binary_needing_a_missing_library_is_not_ready_ahead_and_refused_at_its_halt() {
    let home = chain_home(json!({}));
    home.upgrade("v2", 2, json!({}));
    let staged = home.root().join("upgrades/v2/bin/simd");
    let config = home.root().join("upgrades/v2/bin/sim.json");
    let prog = program_needing_a_library(&home.path.join("build"), &config);
    std::fs::remove_file(&staged).unwrap();
    std::fs::copy(&prog, &staged).unwrap();
    let height = 100_000;
    home.chain(&[("v2", height)]);
    let run = home.run(&[]);
    let next = wait_next(&home, "v2 not ready", |n| n["ready"] == false);
    assert_eq!(
        next["reason"],
        format!(
            "upgrades/v2/bin/simd needs libwvneed.so, found neither in upgrades/v2/lib (which does not exist) nor in the loader's paths ({})",
            loader_paths()
        ),
        "{next}"
    );
    assert_eq!(next["binary"], "upgrades/v2/bin/simd");
    run.stop();

    // With the library in the upgrade's lib/, it runs: ready, with what it printed.
    std::fs::create_dir_all(home.root().join("upgrades/v2/lib")).unwrap();
    std::fs::copy(
        home.path.join("build/lib/libwvneed.so"),
        home.root().join("upgrades/v2/lib/libwvneed.so"),
    )
    .unwrap();
    let run = home.run(&[]);
    let next = wait_next(&home, "v2 ready", |n| n["ready"] == true);
    assert_eq!(next["preflight"], "v2\n");
    run.stop();

    // Without it again, at its halt: refused before the swap, `current` unchanged.
    std::fs::remove_file(home.root().join("upgrades/v2/lib/libwvneed.so")).unwrap();
    let near = home.height() + 20;
    home.chain(&[("v2", near)]);
    let done = home.run(&[]).finish(T_HALT);
    assert_ne!(done.code(), 0);
    assert!(
        done.stderr.contains(
            "the staged binary would not run on this host: upgrades/v2/bin/simd needs libwvneed.so"
        ),
        "{}",
        done.stderr
    );
    assert_eq!(home.current(), "genesis");
    assert_eq!(status(&home)["current"]["upgrade"], "genesis");

    // The operator puts the library in place: the refused upgrade is tried again at the next
    // start (what the refusal depended on changed), and goes through.
    std::fs::copy(
        home.path.join("build/lib/libwvneed.so"),
        home.root().join("upgrades/v2/lib/libwvneed.so"),
    )
    .unwrap();
    let run = home.run(&[]);
    home.wait_height("v2", near + 2);
    assert_eq!(home.current(), "upgrades/v2");
    run.stop();
}

#[test]
fn a_preflight_that_cannot_tell_at_the_halt_warns_and_does_not_refuse() {
    let mut home = chain_home(json!({}));
    // The plan is learnt at the halt only: its binary is checked there, not ahead.
    home.set("WASMVISOR_PLAN_POLL", "off");
    home.upgrade("v2", 2, json!({}));
    // Its `version` hangs past the preflight's 10 s; the node itself starts as any other.
    write_script(
        &home.root().join("upgrades/v2/bin/simd"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = version ] && exec sleep 600\nexec '{SIM}' --sim-config \"$(dirname \"$0\")/sim.json\" \"$@\"\n"
        ),
    );
    home.chain(&[("v2", 20)]);
    let run = home.run(&[]);
    home.wait_height("v2", 22);
    let log = home.last_log();
    assert_eq!(
        log.matches("the preflight could not tell whether the binary runs")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("version did not finish within 10s, and was killed"),
        "{log}"
    );
    run.stop();
}

/// The loader's paths as the reason lists them on this host: its cache and the default
/// folders that exist.
fn loader_paths() -> String {
    let mut paths = vec!["/etc/ld.so.cache".to_string()];
    #[cfg(target_arch = "x86_64")]
    let multiarch = [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
    ];
    #[cfg(target_arch = "aarch64")]
    let multiarch = [
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib64",
        "/usr/lib64",
    ];
    paths.extend(multiarch.iter().map(|p| p.to_string()));
    paths.extend(["/lib".to_string(), "/usr/lib".to_string()]);
    paths.join(", ")
}

const T_HALT: std::time::Duration = std::time::Duration::from_secs(60);

#[test]
fn a_binary_whose_version_fails_is_not_ready_with_what_it_printed() {
    let home = chain_home(json!({}));
    let staged = home.root().join("upgrades/v2/bin/simd");
    std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
    write_script(
        &staged,
        "#!/bin/sh\necho \"panic: cannot open $PWD/config/app.toml\" >&2\nexit 2\n",
    );
    home.chain(&[("v2", 100_000)]);
    let run = home.run(&[]);
    let next = wait_next(&home, "v2 not ready", |n| n["ready"] == false);
    let reason = next["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("upgrades/v2/bin/simd version exited with status 2"),
        "{reason}"
    );
    assert!(reason.contains("panic: cannot open"), "{reason}");
    assert!(
        !reason.contains(&home.path.display().to_string()),
        "it ran in a scratch folder, not the node's home: {reason}"
    );
    run.stop();
}

#[test]
fn a_binary_staged_for_an_upgrade_no_plan_names_yet_is_preflighted_ahead_of_its_halt() {
    let home = Home::new();
    home.upgrade("v2", 2, json!({}));
    // A folder `current` pointed at before (a switch wrote its plan record into it) is done.
    home.upgrade("v1", 2, json!({}));
    std::fs::write(
        home.root().join("upgrades/v1/upgrade-info.json"),
        r#"{"name":"v1","height":1,"info":""}"#,
    )
    .unwrap();
    let mut home = home;
    // No chain to ask: nothing announces v2 before the node halts for it.
    home.set("WASMVISOR_PLAN_POLL", "off");
    let run = home.run(&[]);
    let checked = |h: &Home| {
        h.events_of("version")
            .iter()
            .filter(|e| e["version"] == "v2")
            .count()
    };
    home.wait_for("v2's `version` run ahead", T, |h| checked(h) == 1);
    // Only now does governance schedule v2, a few blocks ahead.
    let at = home.height() + 4;
    home.chain(&[("v2", at)]);
    home.wait_height("v2", at + 1);
    run.stop();
    assert_eq!(
        said(&home, "the binary passed its preflight ahead of the halt"),
        1,
        "{}",
        home.last_log()
    );
    assert_eq!(
        said(&home, "preflight passed"),
        0,
        "no `version` run at the halt"
    );
    assert_eq!(checked(&home), 1, "v2 checked once, ahead");
    assert!(
        !home
            .events_of("version")
            .iter()
            .any(|e| e["version"] == "v1"),
        "an applied folder is not checked"
    );
}
