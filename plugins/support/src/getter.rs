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

use std::fmt;

/// A hash algorithm of go-getter's, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Sha512,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The number of hex digits of a digest.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha1 => 40,
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// `md5`, `SHA256`, … (any case).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The algorithm whose digests have `digits` hex digits.
    pub fn from_hex_len(digits: usize) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.hex_len() == digits)
    }

    /// md5 and sha1 are broken for collisions: accepted for the plans that use them, with a
    /// warning, and refused by a policy that asks for more.
    pub fn is_weak(self) -> bool {
        matches!(self, Algorithm::Md5 | Algorithm::Sha1)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An expected digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    pub algorithm: Algorithm,
    /// Lower-case hex.
    pub hex: String,
}

impl Digest {
    /// `<type>:<hex>`: the type names the algorithm, whose length the hex must have.
    pub fn typed(kind: &str, hex: &str) -> Result<Digest, String> {
        let algorithm = Algorithm::from_name(kind).ok_or_else(|| {
            format!("checksum type {kind:?} is not one of md5, sha1, sha256, sha512")
        })?;
        check_hex(hex)?;
        if hex.len() != algorithm.hex_len() {
            return Err(format!(
                "{algorithm} checksum {hex:?} has {} hex digits, not {}",
                hex.len(),
                algorithm.hex_len()
            ));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }

    /// A bare hex digest: the algorithm follows from its length.
    pub fn bare(hex: &str) -> Result<Digest, String> {
        check_hex(hex)?;
        let algorithm = Algorithm::from_hex_len(hex.len()).ok_or_else(|| {
            format!(
                "checksum {hex:?} has {} hex digits: a checksum without a type must have 32 (md5), 40 (sha1), 64 (sha256) or 128 (sha512)",
                hex.len()
            )
        })?;
        Ok(Digest {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }

    /// Whether `actual` (hex, any case) is this digest.
    pub fn matches(&self, actual: &str) -> bool {
        self.hex.eq_ignore_ascii_case(actual)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

fn check_hex(hex: &str) -> Result<(), String> {
    if hex.is_empty() {
        return Err("the checksum is empty".into());
    }
    if let Some(at) = hex.find(|c: char| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "checksum {hex:?} is not hex (from {:?} on)",
            &hex[at..]
        ));
    }
    if hex.len() % 2 == 1 {
        return Err(format!(
            "checksum {hex:?} has an odd number of hex digits ({})",
            hex.len()
        ));
    }
    Ok(())
}

/// A `checksum` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Digest(Digest),
    /// `file:<url>`: the digest is the line for the downloaded file in this checksum file.
    File(String),
}

/// Parses a `checksum` parameter's (decoded) value.
pub fn parse_checksum(value: &str) -> Result<Checksum, String> {
    match value.split_once(':') {
        Some((kind, url)) if kind.eq_ignore_ascii_case("file") => {
            if url.is_empty() {
                Err("checksum=file: names no checksum file".into())
            } else {
                Ok(Checksum::File(url.to_string()))
            }
        }
        Some((kind, hex)) => Digest::typed(kind, hex).map(Checksum::Digest),
        None => Digest::bare(value).map(Checksum::Digest),
    }
}

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

/// The digest for the file at `target` (its URL path) in a checksum file fetched from
/// `checksum_path`, by go-getter's rules: the first line that parses and either names no file or
/// names this one (as its base name, `*name`, `?name`, its path relative to the checksum file's
/// folder, `./` that, or its full path). GNU lines (`<hex> <name>`) take the algorithm from the
/// length, BSD lines (`SHA256 (<name>) = <hex>`) from the type.
pub fn checksum_from_file(text: &str, target: &str, checksum_path: &str) -> Result<Digest, String> {
    let name = target.rsplit('/').next().unwrap_or(target);
    let dir = checksum_path
        .rsplit_once('/')
        .map_or("", |(d, _)| d)
        .to_string();
    let relative = relative_path(&dir, target);
    let options = [
        name.to_string(),
        format!("*{name}"),
        format!("?{name}"),
        relative.clone(),
        format!("./{relative}"),
        target.to_string(),
    ];
    // A line naming this file wins; a line naming no file (a lone digest) is taken only when
    // none does (go-getter takes the first of either, so a file holding a nameless line before
    // the right one would give the wrong digest).
    let mut nameless = None;
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let parsed = match parts.as_slice() {
            [] => continue,
            [kind, file, _, hex]
                if file.len() > 2 && file.starts_with('(') && file.ends_with(')') =>
            {
                Digest::typed(kind, hex).map(|d| (d, &file[1..file.len() - 1]))
            }
            [_, _, _, _] => continue,
            [hex, file] => Digest::bare(hex).map(|d| (d, *file)),
            [hex, ..] => Digest::bare(hex).map(|d| (d, "")),
        };
        let Ok((digest, file)) = parsed else {
            continue;
        };
        if file.is_empty() {
            nameless.get_or_insert(digest);
        } else if options.iter().any(|o| !o.is_empty() && o == file) {
            return Ok(digest);
        }
    }
    nameless.ok_or_else(|| format!("it has no line for {name}"))
}

/// `to` relative to the folder `from` (both absolute paths, `/`-separated).
fn relative_path(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let to: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
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
