//! go-getter's checksums: `?checksum=` values (typed or bare, by length) and the lines of a
//! checksum file.

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
