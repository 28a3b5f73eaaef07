//! Plain-Rust helpers shared by wasmvisor's plugins — and by its host, which reads go-getter's
//! URL forms with the same code (`getter`). Nothing here touches the WIT bindings, so it is tested
//! natively with `cargo test`.

use serde_json::Value;

pub mod getter;

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

/// A redirect's `Location`, made absolute against the URL it answered.
pub fn absolute(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    if location.starts_with('/') {
        format!("{}{location}", &base[..origin_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= origin_end)
            .unwrap_or(origin_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn redirects_are_made_absolute() {
        let base = "https://raw.example.com/cosmos/chain-registry/master/osmosis/versions.json";
        assert_eq!(
            absolute(base, "https://cdn.example.com/x"),
            "https://cdn.example.com/x"
        );
        assert_eq!(
            absolute(base, "/other/versions.json"),
            "https://raw.example.com/other/versions.json"
        );
        assert_eq!(
            absolute(base, "chain.json"),
            "https://raw.example.com/cosmos/chain-registry/master/osmosis/chain.json"
        );
        assert_eq!(absolute("https://a/b/c", "https://d/e"), "https://d/e");
        assert_eq!(absolute("https://a/b/c", "/x"), "https://a/x");
        assert_eq!(absolute("https://a/b/c", "y"), "https://a/b/y");
    }
}
