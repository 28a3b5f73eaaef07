//! Plain-Rust helpers shared by wasmvisor's plugins. Nothing here touches the WIT bindings, so
//! it is tested natively with `cargo test`.

use serde_json::Value;

/// The last value of `key` in the plugin's settings.
pub fn setting<'a>(settings: &'a [(String, String)], key: &str) -> Option<&'a str> {
    settings
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every value of `key`, each split on commas and whitespace: `sha256 = "a, b"` twice gives
/// all of them.
pub fn setting_list(settings: &[(String, String)], key: &str) -> Vec<String> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A digest named in a URL's `checksum` query parameter (go-getter's syntax,
/// `?checksum=sha256:<hex>`), as Cosmovisor reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlChecksum {
    /// `sha256` or `sha512`.
    pub algorithm: String,
    pub hex: String,
}

/// Splits the `checksum` parameter off a URL. Returns the URL without it and the digest, or an
/// error naming what is wrong with the parameter (unknown type, wrong length, not hex).
pub fn split_checksum(url: &str) -> Result<(String, Option<UrlChecksum>), String> {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let Some((path, query)) = base.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut checksum = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("checksum=") {
            Some(value) => checksum = Some(parse_checksum(&percent_decode(value))?),
            None => kept.push(pair),
        }
    }
    let mut out = path.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Ok((out, checksum))
}

/// Parses `sha256:<hex>` or `sha512:<hex>`.
pub fn parse_checksum(value: &str) -> Result<UrlChecksum, String> {
    let (algorithm, hex) = value
        .split_once(':')
        .ok_or_else(|| format!("checksum {value:?} is not of the form <type>:<hex>"))?;
    let algorithm = algorithm.to_ascii_lowercase();
    let want = match algorithm.as_str() {
        "sha256" => 64,
        "sha512" => 128,
        other => {
            return Err(format!(
                "checksum type {other:?} is not supported (sha256, sha512)"
            ));
        }
    };
    if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{algorithm} checksum {hex:?} is not {want} hex digits"
        ));
    }
    Ok(UrlChecksum {
        algorithm,
        hex: hex.to_ascii_lowercase(),
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Picks the URL for a platform from a Cosmovisor-style binaries map: `<os>/<arch>`, then `any`.
pub fn pick_binary<'a>(binaries: &'a Value, os: &str, arch: &str) -> Option<&'a str> {
    let map = binaries.as_object()?;
    map.get(&format!("{os}/{arch}"))
        .or_else(|| map.get("any"))
        .and_then(Value::as_str)
}

/// Reads a whole response body through `read` (one chunk per call, empty at the end), refusing
/// bodies over `limit` bytes. `what` names the source in errors.
pub fn read_all<E: std::fmt::Debug>(
    what: &str,
    limit: usize,
    mut read: impl FnMut(u32) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let chunk = read(64 * 1024).map_err(|e| format!("reading {what}: {e:?}"))?;
        if chunk.is_empty() {
            return Ok(body);
        }
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            return Err(format!("{what} is larger than {limit} bytes"));
        }
    }
}

/// The last path segment of a URL, without query or fragment: the file name a mirror keeps.
pub fn file_name(url: &str) -> Option<&str> {
    let url = url.split(['?', '#']).next()?;
    let name = url.rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checksum_is_split_off_and_other_parameters_kept() {
        let hex = "ab".repeat(32);
        let (url, sum) =
            split_checksum(&format!("https://x.io/g?a=1&checksum=sha256:{hex}&b=2#f")).unwrap();
        assert_eq!(url, "https://x.io/g?a=1&b=2#f");
        assert_eq!(sum.unwrap().algorithm, "sha256");
        let (url, sum) = split_checksum("https://x.io/g").unwrap();
        assert_eq!((url.as_str(), sum), ("https://x.io/g", None));
        let (url, sum) = split_checksum(&format!(
            "https://x.io/g?checksum=SHA512%3A{}",
            "C".repeat(128)
        ))
        .unwrap();
        assert_eq!(url, "https://x.io/g");
        assert_eq!(sum.unwrap().hex, "c".repeat(128));
    }

    #[test]
    fn bad_checksums_are_named() {
        assert!(
            split_checksum("https://x/g?checksum=md5:abc")
                .unwrap_err()
                .contains("md5")
        );
        assert!(
            split_checksum("https://x/g?checksum=sha256:abc")
                .unwrap_err()
                .contains("64 hex")
        );
        assert!(
            split_checksum("https://x/g?checksum=abc")
                .unwrap_err()
                .contains("<type>:<hex>")
        );
    }

    #[test]
    fn platform_then_any() {
        let map = json!({"linux/amd64": "a", "any": "b"});
        assert_eq!(pick_binary(&map, "linux", "amd64"), Some("a"));
        assert_eq!(pick_binary(&map, "linux", "arm64"), Some("b"));
        assert_eq!(
            pick_binary(&json!({"darwin/arm64": "c"}), "linux", "arm64"),
            None
        );
        assert_eq!(pick_binary(&json!("x"), "linux", "arm64"), None);
    }

    #[test]
    fn settings_last_wins_and_lists_split() {
        let s = vec![
            ("k".to_string(), "1".to_string()),
            ("k".to_string(), "2, 3".to_string()),
        ];
        assert_eq!(setting(&s, "k"), Some("2, 3"));
        assert_eq!(setting_list(&s, "k"), ["1", "2", "3"]);
        assert_eq!(setting(&s, "x"), None);
    }

    #[test]
    fn bodies_are_read_whole_within_the_limit() {
        let mut chunks = vec![vec![], vec![3u8; 4], vec![1u8; 4]];
        let body = read_all("x", 8, |_| Ok::<_, ()>(chunks.pop().unwrap())).unwrap();
        assert_eq!(body.len(), 8);
        let mut chunks = vec![vec![], vec![3u8; 5], vec![1u8; 4]];
        let err = read_all("x", 8, |_| Ok::<_, ()>(chunks.pop().unwrap())).unwrap_err();
        assert!(err.contains("larger than 8"));
        assert!(
            read_all("x", 8, |_| Err::<Vec<u8>, _>("boom"))
                .unwrap_err()
                .contains("boom")
        );
    }

    #[test]
    fn file_names() {
        assert_eq!(
            file_name("https://h/a/simd-v2.tar.gz?x=1"),
            Some("simd-v2.tar.gz")
        );
        assert_eq!(file_name("https://h/a/"), None);
        assert_eq!(file_name("https://h/.."), None);
    }
}
