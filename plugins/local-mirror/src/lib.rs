//! A source that reads artifacts from a directory granted to it (an offline mirror).
//!
//! Settings: `dir` — the mirror as seen inside the plugin (default `/mirror`; grant it with
//! `dirs = [["/srv/mirror", "/mirror"]]`). The file is the URL's last path segment, so a
//! mirror holds release files under their own names; `mirror:<file>` names one directly. A file
//! that is not there is `failed`, so the next source (the network) can take over.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use wasmvisor_plugin_support::{file_name, setting};

wit_bindgen::generate!({ world: "source", path: "../../wit/plugin-0.2", generate_all });

use exports::wasmvisor::plugin::fetch::Guest;
use wasmvisor::plugin::host::{Level, log};
use wasmvisor::plugin::sink::Output;
use wasmvisor::plugin::types::{Artifact, FetchError, Settings};

struct LocalMirror;

impl Guest for LocalMirror {
    fn fetch(artifact: Artifact, settings: Settings, out: &Output) -> Result<(), FetchError> {
        let dir = setting(&settings, "dir").unwrap_or("/mirror");
        let name = match artifact.url.strip_prefix("mirror:") {
            Some(n) if !n.is_empty() && !n.contains('/') && n != ".." && n != "." => n,
            Some(n) => {
                return Err(FetchError::Failed(format!(
                    "mirror: {n:?} is not a file name"
                )));
            }
            None => file_name(&artifact.url).ok_or(FetchError::Unsupported)?,
        };
        let path = format!("{}/{name}", dir.trim_end_matches('/'));
        let mut file = File::open(&path).map_err(|e| FetchError::Failed(format!("{path}: {e}")))?;
        let offset = out.written();
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| FetchError::Failed(format!("{path}: {e}")))?;
        }
        log(Level::Info, &format!("reading {path}"));
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| FetchError::Failed(format!("{path}: {e}")))?;
            if n == 0 {
                return Ok(());
            }
            out.write(&buf[..n]).map_err(FetchError::Failed)?;
        }
    }
}

// Native builds (unit tests) leave the exports out: only the wasm component has them.
#[cfg(target_arch = "wasm32")]
export!(LocalMirror);
