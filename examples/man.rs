//! Writes wasmvisor's man page (roff), generated from its command line definitions:
//! `cargo run --example man > wasmvisor.1` (the static build script does it).

fn main() -> std::io::Result<()> {
    let page = clap_mangen::Man::new(wasmvisor::cli::command());
    page.render(&mut std::io::stdout())
}
