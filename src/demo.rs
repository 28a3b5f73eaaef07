//! `wasmvisor demo`.

pub fn run(_keep: bool, _block_ms: u64) -> Result<(), String> {
    Err("not yet".into())
}
