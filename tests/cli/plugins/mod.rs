//! The plugin path end to end: binaries downloaded by the bundled plugins from a server on
//! 127.0.0.1, the chain-registry + local-mirror + cometbft plugins, and hostile plugins.

mod bundled;
mod downloads;
mod hostile;

use serde_json::Value;

use crate::harness::*;

fn status(home: &Home) -> Value {
    let out = home.output(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn phases(home: &Home) -> Vec<String> {
    status(home)["last_upgrade"]["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["phase"].as_str().unwrap().to_string())
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
