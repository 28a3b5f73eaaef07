//! The preflight against real ELF files, built here with the machine's `cc` and run with the
//! real loader beside each check, so each reason is shown to be the loader's own.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::VersionMissing;
use super::*;

mod files;
mod ldcache;
mod run;

/// A C compiler, or `None` (with the reason printed) where there is none.
pub(super) fn cc() -> Option<&'static str> {
    let found = Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: no `cc` on this machine to build ELF fixtures");
    }
    found.then_some("cc")
}

/// Writes `files` into `dir` and runs `cc` there with `args`; panics with its errors.
pub(super) fn build(dir: &Path, files: &[(&str, &str)], args: &[&str]) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let out = Command::new("cc")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const LIB_C: &str = "int wv_answer(void) { return 42; }\n";
const MAIN_C: &str = "int wv_answer(void);\nint main(void) { return wv_answer() == 42 ? 0 : 1; }\n";

/// A home with `upgrades/v2/bin/gaiad` linked against `libwv_test.so`, the library left in
/// `build/` (not where the loader looks).
struct Fixture {
    t: tempfile::TempDir,
}

impl Fixture {
    fn new(extra: &[&str]) -> Fixture {
        let t = tempfile::tempdir().unwrap();
        let b = t.path().join("build");
        std::fs::create_dir_all(&b).unwrap();
        build(
            &b,
            &[("lib.c", LIB_C)],
            &[
                "-shared",
                "-fPIC",
                "-Wl,-soname,libwv_test.so",
                "-o",
                "libwv_test.so",
                "lib.c",
            ],
        );
        let mut args = vec!["-o", "gaiad", "main.c", "-L.", "-lwv_test"];
        args.extend(extra);
        build(&b, &[("main.c", MAIN_C)], &args);
        std::fs::create_dir_all(t.path().join("upgrades/v2/bin")).unwrap();
        std::fs::rename(b.join("gaiad"), t.path().join("upgrades/v2/bin/gaiad")).unwrap();
        Fixture { t }
    }

    fn home(&self) -> &Path {
        self.t.path()
    }

    fn binary(&self) -> PathBuf {
        self.home().join("upgrades/v2/bin/gaiad")
    }

    fn lib_dir(&self) -> PathBuf {
        self.home().join("upgrades/v2/lib")
    }

    fn check(&self, env: Option<&OsStr>) -> Result<Linkage, NotReady> {
        let (binary, lib_dir) = (self.binary(), self.lib_dir());
        dynamic_needs(&Target {
            binary: &binary,
            lib_dir: &lib_dir,
            env_ld_library_path: env,
            display_root: Some(self.home()),
        })
    }

    /// The real loader's verdict: the program run with this LD_LIBRARY_PATH.
    fn run(&self, ld_library_path: &Path) -> std::process::Output {
        Command::new(self.binary())
            .env("LD_LIBRARY_PATH", ld_library_path)
            .output()
            .unwrap()
    }
}

#[test]
fn a_library_neither_in_lib_nor_on_the_loaders_paths_is_named_and_found_once_in_lib() {
    if cc().is_none() {
        return;
    }
    let f = Fixture::new(&[]);
    let real = f.run(&f.lib_dir());
    assert!(!real.status.success());
    assert!(
        String::from_utf8_lossy(&real.stderr)
            .contains("libwv_test.so: cannot open shared object file")
    );
    let reason = f.check(None).unwrap_err().to_string();
    let expected = "upgrades/v2/bin/gaiad needs libwv_test.so, found neither in upgrades/v2/lib \
                    (which does not exist) nor in the loader's paths (/etc/ld.so.cache, ";
    assert!(reason.starts_with(expected), "{reason}");
    assert!(reason.contains(", /usr/lib)"), "{reason}");

    std::fs::create_dir_all(f.lib_dir()).unwrap();
    std::fs::rename(
        f.home().join("build/libwv_test.so"),
        f.lib_dir().join("libwv_test.so"),
    )
    .unwrap();
    assert!(f.run(&f.lib_dir()).status.success());
    let linkage = f.check(None).unwrap();
    assert!(!linkage.static_binary);
    assert_eq!(
        linkage.libraries[0],
        (
            "libwv_test.so".to_string(),
            f.lib_dir().join("libwv_test.so")
        )
    );
    let (_, libc) = linkage
        .libraries
        .iter()
        .find(|(name, _)| name == "libc.so.6")
        .expect("libc.so.6");
    assert!(libc.is_file(), "{libc:?}");
    assert!(linkage.interpreter.unwrap().exists());
}

#[test]
fn ld_library_path_follows_lib_and_a_candidate_for_another_machine_is_passed_over() {
    if cc().is_none() {
        return;
    }
    let f = Fixture::new(&[]);
    let elsewhere = f.home().join("build");
    let env = elsewhere.as_os_str();
    let linkage = f.check(Some(env)).unwrap();
    assert_eq!(linkage.libraries[0].1, elsewhere.join("libwv_test.so"));
    // A copy for aarch64 first in lib/: the loader skips it (and so do we) and takes the next.
    std::fs::create_dir_all(f.lib_dir()).unwrap();
    let mut bytes = std::fs::read(elsewhere.join("libwv_test.so")).unwrap();
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    std::fs::write(f.lib_dir().join("libwv_test.so"), bytes).unwrap();
    let real = Command::new(f.binary())
        .env(
            "LD_LIBRARY_PATH",
            format!("{}:{}", f.lib_dir().display(), elsewhere.display()),
        )
        .output()
        .unwrap();
    assert!(
        real.status.success(),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert_eq!(
        f.check(Some(env)).unwrap().libraries[0].1,
        elsewhere.join("libwv_test.so")
    );
    let missing = f.check(None).unwrap_err().to_string();
    assert!(
        missing.contains("needs libwv_test.so, found neither in upgrades/v2/lib nor"),
        "{missing}"
    );
}

#[test]
fn an_rpath_with_origin_is_searched_before_ld_library_path() {
    if cc().is_none() {
        return;
    }
    // RPATH (not RUNPATH): --disable-new-dtags, as older Go and CGo builds link.
    let f = Fixture::new(&["-Wl,--disable-new-dtags,-rpath,$ORIGIN/../../../build"]);
    let linkage = f.check(None).unwrap();
    assert_eq!(
        linkage.libraries[0].1,
        f.binary()
            .parent()
            .unwrap()
            .join("../../../build/libwv_test.so")
    );
    assert!(f.run(Path::new("/nonexistent")).status.success());
}

/// A stub `libc.so.6` that defines GLIBC_9.99 only, for a program to need it from.
const STUB_C: &str = "int wv_versioned(void) { return 0; }\n";
const STUB_MAP: &str = "GLIBC_9.99 { global: wv_versioned; local: *; };\n";
/// Without the C runtime (whose `__libc_start_main` the stub lacks): `_start` calls it and exits.
const VERSIONED_C: &str = "int wv_versioned(void);\n\
    void _start(void) {\n\
      long r = wv_versioned();\n\
      __asm__ volatile(\"syscall\" :: \"a\"(60L), \"D\"(r));\n\
      for (;;) {}\n\
    }\n";

#[cfg(target_arch = "x86_64")]
#[test]
fn a_glibc_version_the_hosts_libc_lacks_is_the_loaders_own_error() {
    if cc().is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let stub = t.path().join("stub");
    std::fs::create_dir_all(&stub).unwrap();
    build(
        &stub,
        &[("stub.c", STUB_C), ("v.map", STUB_MAP)],
        &[
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-Wl,-soname,libc.so.6",
            "-Wl,--version-script=v.map",
            "-o",
            "libc.so.6",
            "stub.c",
        ],
    );
    build(
        t.path(),
        &[("main.c", VERSIONED_C)],
        &[
            "-nostdlib",
            "-fno-stack-protector",
            "-o",
            "gaiad",
            "main.c",
            "stub/libc.so.6",
        ],
    );
    std::fs::remove_dir_all(&stub).unwrap();
    let binary = t.path().join("gaiad");
    let real = Command::new(&binary).output().unwrap();
    let stderr = String::from_utf8_lossy(&real.stderr);
    assert!(
        stderr.contains("version `GLIBC_9.99' not found"),
        "{stderr}"
    );

    let lib_dir = t.path().join("lib");
    let target = Target {
        binary: &binary,
        lib_dir: &lib_dir,
        env_ld_library_path: None,
        display_root: Some(t.path()),
    };
    let reason = dynamic_needs(&target).unwrap_err();
    let NotReady::VersionMissing(missing) = &reason else {
        panic!("{reason}")
    };
    let VersionMissing {
        version,
        file,
        found,
        provides,
        ..
    } = &**missing;
    assert_eq!(
        (version.as_str(), file.as_str()),
        ("GLIBC_9.99", "libc.so.6")
    );
    assert!(
        provides.starts_with("provides at most GLIBC_2."),
        "{provides}"
    );
    assert!(reason.to_string().starts_with(&format!(
        "gaiad needs GLIBC_9.99 from libc.so.6, and {found} provides at most GLIBC_2."
    )));
}

#[test]
fn a_missing_interpreter_is_named() {
    if cc().is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    build(
        t.path(),
        &[("main.c", "int main(void) { return 0; }\n")],
        &[
            "-o",
            "gaiad",
            "main.c",
            "-Wl,--dynamic-linker=/nonexistent/ld.so",
        ],
    );
    let binary = t.path().join("gaiad");
    assert!(
        Command::new(&binary).output().is_err(),
        "the kernel refuses it (ENOENT)"
    );
    let target = Target {
        binary: &binary,
        lib_dir: t.path(),
        env_ld_library_path: None,
        display_root: Some(t.path()),
    };
    assert_eq!(
        dynamic_needs(&target).unwrap_err().to_string(),
        "gaiad needs the ELF interpreter /nonexistent/ld.so, which does not exist on this host: \
         the binary is built for another libc or distribution"
    );
}

#[test]
fn a_static_binary_needs_nothing() {
    if cc().is_none() {
        return;
    }
    if !Path::new("/usr/lib/x86_64-linux-gnu/libc.a").exists()
        && !Path::new("/usr/lib64/libc.a").exists()
    {
        eprintln!("skipped: no libc.a for a -static build");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    build(
        t.path(),
        &[("main.c", "int main(void) { return 0; }\n")],
        &["-static", "-o", "gaiad", "main.c"],
    );
    let binary = t.path().join("gaiad");
    let linkage = dynamic_needs(&Target {
        binary: &binary,
        lib_dir: t.path(),
        env_ld_library_path: None,
        display_root: None,
    })
    .unwrap();
    assert_eq!(
        linkage,
        Linkage {
            interpreter: None,
            libraries: vec![],
            static_binary: true
        }
    );
}
