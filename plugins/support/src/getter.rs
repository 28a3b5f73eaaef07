//! The URL forms of go-getter, the library Cosmovisor downloads with, as upgrade plans use them:
//!
//! - `?checksum=<type>:<hex>` (md5, sha1, sha256, sha512; type and hex in any case), a bare
//!   `<hex>` whose type follows from its length (32, 40, 64, 128 digits), or `file:<url>` naming
//!   a checksum file (GNU `<hex>  <name>` or BSD `SHA256 (<name>) = <hex>` lines);
//! - `?archive=<format>` to force an archive format, `?archive=false` to take the bytes as they
//!   are;
//! - `<url>//<subdir>`: fetch the archive at `<url>`, take the binary from `<subdir>` of it (`*`
//!   and `?` match within a name, as go-getter's glob does).
//!
//! Only the part before the first `?` is searched for `//`, so a URL inside the query (a
//! `checksum=file:https://…`) never splits. These parameters are go-getter's own: they are taken
//! out of the URL before it is fetched; every other parameter is kept.
//!
//! Stricter than go-getter where it only fails later: a typed checksum of the wrong length is an
//! error at once, and an unknown `archive=` value is an error rather than "no unpacking".

mod checksum;

pub use checksum::{Algorithm, Checksum, Digest, checksum_from_file, parse_checksum};

/// An archive format go-getter unpacks, by its key (the file extension it is known by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Tar,
    TarGz,
    TarXz,
    TarBz2,
    TarZst,
    Zip,
    /// A single compressed file: the binary itself.
    Gz,
    Xz,
    Bz2,
    Zst,
}

/// go-getter's decompressor keys.
const KEYS: [(&str, Format); 14] = [
    ("tar.gz", Format::TarGz),
    ("tgz", Format::TarGz),
    ("tar.xz", Format::TarXz),
    ("txz", Format::TarXz),
    ("tar.bz2", Format::TarBz2),
    ("tbz2", Format::TarBz2),
    ("tar.zst", Format::TarZst),
    ("tzst", Format::TarZst),
    ("tar", Format::Tar),
    ("zip", Format::Zip),
    ("gz", Format::Gz),
    ("xz", Format::Xz),
    ("bz2", Format::Bz2),
    ("zst", Format::Zst),
];

impl Format {
    /// `tar.gz`, `tgz`, `zip`, … (any case).
    pub fn from_key(key: &str) -> Option<Format> {
        KEYS.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, f)| *f)
    }

    /// The format a path's extension names: the longest key that ends it (`.tar.gz` before
    /// `.gz`), in any case.
    pub fn from_path(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        KEYS.iter()
            .filter(|(k, _)| lower.ends_with(&format!(".{k}")))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        KEYS.iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(k, _)| *k)
    }

    /// The compression around a tar (or the single file), if any.
    pub fn compression(self) -> Option<Format> {
        match self {
            Format::TarGz | Format::Gz => Some(Format::Gz),
            Format::TarXz | Format::Xz => Some(Format::Xz),
            Format::TarBz2 | Format::Bz2 => Some(Format::Bz2),
            Format::TarZst | Format::Zst => Some(Format::Zst),
            Format::Tar | Format::Zip => None,
        }
    }

    pub fn is_tar(self) -> bool {
        matches!(
            self,
            Format::Tar | Format::TarGz | Format::TarXz | Format::TarBz2 | Format::TarZst
        )
    }
}

/// How the fetched bytes are unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// From the content, and the URL's extension where the content leaves it open.
    Detect,
    /// `archive=false`: the bytes are the binary.
    Off,
    /// `archive=<format>`.
    Format(Format),
}

/// A URL in go-getter's form, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetterUrl {
    /// What to fetch: the URL without `checksum`, `archive` and the `//subdir`.
    pub url: String,
    pub checksum: Option<Checksum>,
    pub archive: Archive,
    /// The folder of the unpacked archive to take the binary from.
    pub subdir: Option<String>,
}

/// Takes a URL in go-getter's form apart. Errors name the parameter at fault.
pub fn parse_url(src: &str) -> Result<GetterUrl, String> {
    let (src, subdir) = split_subdir(src);
    let (before_fragment, fragment) = match src.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (src.as_str(), None),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_fragment, None),
    };
    let mut checksum = None;
    let mut archive = None;
    let mut kept = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match query_decode(key).as_str() {
            // The first of each wins, as in Go's url.Values.Get; all are taken out.
            "checksum" => {
                if checksum.is_none() {
                    checksum = Some(query_decode(value));
                }
            }
            "archive" => {
                if archive.is_none() {
                    archive = Some(query_decode(value));
                }
            }
            _ => kept.push(pair),
        }
    }
    let checksum = match checksum.filter(|v| !v.is_empty()) {
        Some(v) => Some(parse_checksum(&v).map_err(|e| format!("?checksum=: {e}"))?),
        None => None,
    };
    let archive = match archive.filter(|v| !v.is_empty()) {
        None => Archive::Detect,
        Some(v) => match v.as_str() {
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Archive::Off,
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Archive::Detect,
            key => Archive::Format(Format::from_key(key).ok_or_else(|| {
                format!(
                    "?archive={key}: not a format (tar.gz, tgz, tar.xz, txz, tar.bz2, tbz2, tar.zst, tzst, tar, zip, gz, xz, bz2, zst) nor false"
                )
            })?),
        },
    };
    let subdir = match subdir {
        Some(s) if s.split('/').any(|part| part == "..") => {
            return Err(format!("//{s}: a subfolder cannot go up (..)"));
        }
        Some(s) => Some(s.trim_matches('/').to_string()).filter(|s| !s.is_empty()),
        None => None,
    };
    let mut url = path.to_string();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        url.push('#');
        url.push_str(f);
    }
    Ok(GetterUrl {
        url,
        checksum,
        archive,
        subdir,
    })
}

/// go-getter's `SourceDirSubdir`: the first `//` after the scheme's, before any `?`, splits off
/// the subfolder; a query after the subfolder goes back onto the URL.
fn split_subdir(src: &str) -> (String, Option<String>) {
    let stop = src.find('?').unwrap_or(src.len());
    let offset = src[..stop].find("://").map_or(0, |i| i + 3);
    let Some(at) = src[offset..stop].find("//").map(|i| i + offset) else {
        return (src.to_string(), None);
    };
    let mut subdir = src[at + 2..].to_string();
    let mut url = src[..at].to_string();
    if let Some(q) = subdir.find('?') {
        url.push_str(&subdir[q..]);
        subdir.truncate(q);
    }
    (url, Some(subdir))
}

/// Decodes a query component as Go's `url.ParseQuery` does: `%XX` escapes, `+` for a space.
fn query_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Decodes `%XX` escapes (invalid ones are kept as they are).
pub fn percent_decode(s: &str) -> String {
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

/// The (decoded) path of a URL: what follows the host, up to `?` or `#`. A `file://` URL's path
/// is the file's.
pub fn url_path(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or("");
    let path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map_or("", |j| &rest[j..])
        }
        None => url,
    };
    percent_decode(path)
}

/// Whether a plan's `info` is a URL to fetch rather than the document itself (an absolute URL,
/// as Go's `url.ParseRequestURI` accepts, or an absolute path).
pub fn is_url(info: &str) -> bool {
    let info = info.trim();
    if info.starts_with('/') {
        return true;
    }
    match info.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Matches a name against a pattern of go-getter's subfolder glob: `*` any run of characters,
/// `?` one character, anything else itself. Linear in both lengths (the last `*` is the only
/// backtracking point), so no pattern can make it run long.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut i, mut j) = (0, 0);
    // Where the last `*` was, and where in the name it started matching.
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            // Let the last `*` take one more character.
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;
