//! Upgrade folder names: a plan name lower-cased (unless disabled) and URL-path-escaped, exactly
//! as Cosmovisor names `upgrades/<name>`. A name that would address anything but one child
//! folder of `upgrades/`, or that no filesystem could hold, is refused.

/// The longest file name Linux filesystems hold (NAME_MAX).
pub const MAX_DIR_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "upgrade name {0:?} is not usable as a folder name (empty, \".\" or \"..\"); the plan must be renamed"
    )]
    Unusable(String),
    #[error(
        "upgrade name {name:?}… is too long: {bytes} bytes as a folder name, and a folder name holds at most {MAX_DIR_NAME}; the plan must be renamed"
    )]
    TooLong { name: String, bytes: usize },
}

/// How this home names upgrade folders (`COSMOVISOR_DISABLE_RECASE` keeps the case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub recase: bool,
}

impl Names {
    /// The folder under `upgrades/` for a plan name.
    pub fn dir(&self, plan_name: &str) -> Result<String, NameError> {
        let name = if self.recase {
            plan_name.to_lowercase()
        } else {
            plan_name.to_string()
        };
        let mut out = String::with_capacity(name.len());
        for b in name.bytes() {
            let keep = b.is_ascii_alphanumeric() || b"-_.~$&+:=@".contains(&b);
            if keep {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        if out.is_empty() || out == "." || out == ".." {
            return Err(NameError::Unusable(name));
        }
        if out.len() > MAX_DIR_NAME {
            return Err(NameError::TooLong {
                name: name.chars().take(40).collect(),
                bytes: out.len(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECASE: Names = Names { recase: true };

    #[test]
    fn names_are_recased_and_escaped_like_cosmovisor() {
        assert_eq!(RECASE.dir("V2").unwrap(), "v2");
        assert_eq!(Names { recase: false }.dir("V2").unwrap(), "V2");
        assert_eq!(RECASE.dir("some spaces").unwrap(), "some%20spaces");
        assert_eq!(RECASE.dir("../../etc").unwrap(), "..%2F..%2Fetc");
        assert_eq!(RECASE.dir("a/b").unwrap(), "a%2Fb");
        assert_eq!(RECASE.dir("v1.2.3-rc+x@y").unwrap(), "v1.2.3-rc+x@y");
        assert_eq!(RECASE.dir("a;b,c?d").unwrap(), "a%3Bb%2Cc%3Fd");
    }

    #[test]
    fn names_that_address_no_child_folder_or_are_too_long_are_refused() {
        for bad in ["", ".", ".."] {
            assert!(
                matches!(RECASE.dir(bad), Err(NameError::Unusable(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            RECASE.dir(&"x".repeat(256)),
            Err(NameError::TooLong { bytes: 256, .. })
        ));
        // Escaping counts: 100 spaces are 300 bytes on disk.
        assert!(RECASE.dir(&" ".repeat(100)).is_err());
        assert!(RECASE.dir(&"x".repeat(255)).is_ok());
    }
}
