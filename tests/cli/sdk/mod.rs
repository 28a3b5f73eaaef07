//! The plugin contract as authors meet it: 0.1 and 0.2 plugins side by side, the resolver
//! chain's semantics and attribution, `not-before`, `env` grants, captured output, imports
//! checked before compiling, and the `plugin` commands without a node's home.
//!
//! The helpers here (writing a `plugins.toml`, a component that fails to compile) serve every
//! file of the folder, and `observe` too.

mod chain;
mod sandbox;
mod scaffold;
mod signed;

use crate::harness::{Home, wasm};

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
