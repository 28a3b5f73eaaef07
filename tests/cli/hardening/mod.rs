//! What a hostile review and an unlucky operator tried: links out of the home, files that block,
//! stalls, forged records, unwritable logs, forged names, unbounded inputs, nonsense settings.
//! Each test names the hole it keeps closed.

mod downloads;
mod links;
mod messages;
mod records;

use sha2::{Digest, Sha256};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
