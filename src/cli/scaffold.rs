//! `wasmvisor plugin new NAME --lang rust|js|python [--world resolver|health]`: a plugin project
//! that builds anywhere — its own copy of the contract (`wit/`), pinned toolchains, a
//! `plugins.toml` and a plan to try it with `plugin --plugins plugins.toml call`, a README.

use std::path::Path;
use std::sync::OnceLock;

/// The files below, packed by build.rs into one xz stream (`plugin new` alone reads them), and
/// where each is in what it decodes to.
static PACKED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scaffold.xz"));
static INDEX: &[(&str, usize, usize)] = include!(concat!(env!("OUT_DIR"), "/scaffold.rs"));

/// The text of the packed file at `path` (a path in the repository), decoded once.
fn packed(path: &str) -> &'static str {
    static ALL: OnceLock<String> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut lzma_rust2::XzReader::new(PACKED, false), &mut bytes)
            .expect("the scaffold's files were packed by the build script");
        String::from_utf8(bytes).expect("the scaffold's files are UTF-8")
    });
    let &(_, start, end) = INDEX
        .iter()
        .find(|(p, _, _)| *p == path)
        .unwrap_or_else(|| panic!("{path} is not in build.rs's SCAFFOLD"));
    &all[start..end]
}

/// The languages a plugin can be started in.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Js,
    Python,
}

/// The worlds a scaffold exists for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaffoldWorld {
    Resolver,
    Health,
}

/// componentize-py names a module after its interface, unless two share a name: wasmvisor's
/// `types` and wasi:http's are told apart by name.
pub const PY_NAMES: &str = "--import-interface-name wasmvisor:plugin/types@0.2.0=types --import-interface-name wasi:http/types@0.2.12=http_types";

/// Each file is named by where `plugin new` writes it and where it is packed from.
const WIT: [(&str, &str); 4] = [
    ("wit/plugin.wit", "wit/plugin-0.2/plugin.wit"),
    (
        "wit/deps/http/http.wit",
        "wit/plugin-0.2/deps/http/http.wit",
    ),
    ("wit/deps/io/io.wit", "wit/plugin-0.2/deps/io/io.wit"),
    (
        "wit/deps/clocks/clocks.wit",
        "wit/plugin-0.2/deps/clocks/clocks.wit",
    ),
];
const README: &str = "src/cli/scaffold/README.md";
const PLUGINS_RESOLVER: &str = "src/cli/scaffold/plugins-resolver.toml";
const PLUGINS_HEALTH: &str = "src/cli/scaffold/plugins-health.toml";
const RUST_CARGO: &str = "src/cli/scaffold/rust-Cargo.toml";
const RUST_RESOLVER: &str = "src/cli/scaffold/rust-resolver.rs";
const RUST_HEALTH: &str = "src/cli/scaffold/rust-health.rs";
const JS_PACKAGE: &str = "src/cli/scaffold/js-package.json";
/// npm's lockfile of `JS_PACKAGE`'s toolchain (the one `plugins/js/window` is built with).
const JS_LOCK: &str = "src/cli/scaffold/js-package-lock.json";
/// Cargo's lockfile of `RUST_CARGO`'s dependencies (the versions the plugins here are built
/// with), without the project's own entry, which `rust_lock` puts in its place.
const RUST_LOCK: &str = "src/cli/scaffold/rust-Cargo.lock";
const JS_RESOLVER: &str = "src/cli/scaffold/js-resolver.js";
const JS_HEALTH: &str = "src/cli/scaffold/js-health.js";
const PY_REQUIREMENTS: &str = "src/cli/scaffold/py-requirements.txt";
const PY_RESOLVER: &str = "src/cli/scaffold/py-resolver.py";
const PY_HEALTH: &str = "src/cli/scaffold/py-health.py";
/// wasi:http for Python plugins, with error texts an operator can act on (the one the plugins
/// of wasmvisor's repository use).
const PY_WASI_HTTP: &str = "plugins/python/lib/wasi_http.py";

/// Creates the project `name` in the current folder.
pub fn new(name: &str, lang: Lang, world: ScaffoldWorld) -> Result<(), String> {
    check_name(name)?;
    let dir = Path::new(name);
    if dir.symlink_metadata().is_ok() {
        return Err(format!(
            "{name} already exists: choose another name, or remove it"
        ));
    }
    let project = Project::new(name, lang, world);
    project.write(dir)?;
    crate::output::line(format!(
        "created {name}/: a {} plugin in {}\nbuild it (in {name}/):\n  {}\ntry it:\n  wasmvisor plugin --plugins {name}/plugins.toml call {} {name} --plan {name}/plan.json",
        project.world,
        project.language,
        project.build.replace('\n', "\n  "),
        project.world,
    ))
}

/// A plugin name is what a Rust crate, an npm package and a file name can all be.
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(format!(
            "{name:?}: a plugin name is lower-case letters, digits and '-', starting with a letter"
        ));
    }
    Ok(())
}

/// What a new project is: its language, how it builds and into what, and its files (templates,
/// and the contract copied as it is).
struct Project<'a> {
    name: &'a str,
    world: &'static str,
    language: &'static str,
    build: String,
    output: String,
    files: Vec<(&'static str, &'static str)>,
}

impl<'a> Project<'a> {
    fn new(name: &'a str, lang: Lang, world: ScaffoldWorld) -> Project<'a> {
        let world_name = match world {
            ScaffoldWorld::Resolver => "resolver",
            ScaffoldWorld::Health => "health",
        };
        let pick = |resolver, health| match world {
            ScaffoldWorld::Resolver => resolver,
            ScaffoldWorld::Health => health,
        };
        let (language, build, output, mut files): (_, String, _, Vec<(&str, &str)>) = match lang {
            Lang::Rust => (
                "Rust",
                "cargo build --release --locked --target wasm32-wasip2   # rustup target add wasm32-wasip2, once"
                    .into(),
                format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_")),
                vec![
                    ("Cargo.toml", RUST_CARGO),
                    ("src/lib.rs", pick(RUST_RESOLVER, RUST_HEALTH)),
                ],
            ),
            Lang::Js => (
                "JavaScript",
                "npm ci && npm run build".into(),
                format!("{name}.wasm"),
                vec![
                    ("package.json", JS_PACKAGE),
                    ("package-lock.json", JS_LOCK),
                    ("plugin.js", pick(JS_RESOLVER, JS_HEALTH)),
                ],
            ),
            Lang::Python => (
                "Python",
                format!(
                    "python3 -m venv .venv && .venv/bin/pip install --require-hashes -r requirements.txt\n.venv/bin/componentize-py -d wit -w {world_name} {PY_NAMES} componentize -p . app -o {name}.wasm"
                ),
                format!("{name}.wasm"),
                vec![
                    ("requirements.txt", PY_REQUIREMENTS),
                    ("app.py", pick(PY_RESOLVER, PY_HEALTH)),
                    ("wasi_http.py", PY_WASI_HTTP),
                ],
            ),
        };
        files.extend(WIT);
        files.push(("README.md", README));
        files.push(("plugins.toml", pick(PLUGINS_RESOLVER, PLUGINS_HEALTH)));
        Project {
            name,
            world: world_name,
            language,
            build,
            output,
            files,
        }
    }

    /// A template with the project's values filled in.
    fn fill(&self, text: &str) -> String {
        text.replace("{{name}}", self.name)
            .replace("{{world}}", self.world)
            .replace("{{language}}", self.language)
            .replace("{{build}}", &self.build)
            .replace("{{output}}", &self.output)
    }

    /// Writes the files into `dir`, a lockfile where the language has one of its own making,
    /// and a plan to try the plugin with.
    fn write(&self, dir: &Path) -> Result<(), String> {
        let write = |rel: &str, text: &str| {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        if self.language == "Rust" {
            write("Cargo.lock", &rust_lock(self.name))?;
        }
        for (rel, key) in &self.files {
            // The contract is copied as it is: it is not a template.
            let text = if rel.starts_with("wit/") {
                packed(key).to_string()
            } else {
                self.fill(packed(key))
            };
            write(rel, &text)?;
        }
        // A plan as a chain writes one, with a binaries map: asked with downloads allowed, the
        // bundled resolver before this one offers its binary for this machine.
        let url = |arch: &str| {
            format!(
                "https://example.com/releases/v2/simd-v2-linux-{arch}.tar.gz?checksum=sha256:{}",
                "0".repeat(64)
            )
        };
        let info = serde_json::json!({"binaries": {
            "linux/amd64": url("amd64"),
            "linux/arm64": url("arm64"),
        }});
        write(
            "plan.json",
            &format!(
                "{}\n",
                serde_json::json!({"name": "v2", "height": 1000, "info": info.to_string()})
            ),
        )
    }
}

/// The packed `RUST_LOCK` with the project's own entry in the place Cargo sorts it to (by name), so that
/// `cargo build --locked` takes it as it is.
fn rust_lock(name: &str) -> String {
    let mut parts = packed(RUST_LOCK).split("\n[[package]]\n");
    let header = parts.next().unwrap_or_default();
    let own =
        format!("name = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [\n \"wit-bindgen\",\n]\n");
    let mut packages: Vec<String> = parts.map(str::to_string).collect();
    packages.push(own);
    let key = |p: &String| p.lines().next().unwrap_or_default().to_string();
    packages.sort_by_key(key);
    let mut lock = header.to_string();
    for p in packages {
        lock.push_str("\n[[package]]\n");
        lock.push_str(&p);
    }
    lock
}
