//! Names that cross the wire: scope ids and record uids.
//!
//! Both are validated on construction, so every `ScopeId` or `RecordUid` in
//! memory is well formed, whether it came from the node or from a peer.

use std::fmt;

use crate::error::IdError;

/// Longest record uid accepted (uids are 20 base62 characters today).
pub const MAX_UID_LEN: usize = 64;
/// Longest scope id accepted (`collection:` plus a 64-character uid).
pub const MAX_SCOPE_LEN: usize = 80;

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The unit of sharing: `instance:<uid>`, `collection:<uid>`,
/// `artifact:<uid>` or `registry:<name>` (the kinds of capability tokens).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeId(String);

impl ScopeId {
    /// Parses and validates a scope id.
    pub fn new(text: &str) -> Result<ScopeId, IdError> {
        let bad = |reason| IdError::Scope {
            text: clip(text),
            reason,
        };
        if text.len() > MAX_SCOPE_LEN {
            return Err(bad("longer than 80 bytes"));
        }
        let (kind, arg) = text
            .split_once(':')
            .ok_or(bad("missing `kind:`; expected e.g. `collection:<uid>`"))?;
        match kind {
            "instance" | "collection" | "artifact" => {
                if arg.is_empty() || arg.len() > MAX_UID_LEN || !is_base62(arg) {
                    return Err(bad("the argument must be 1..=64 base62 characters"));
                }
            }
            "registry" => {
                if arg.is_empty()
                    || arg.len() > 32
                    || !arg.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                {
                    return Err(bad("a registry name is 1..=32 of [a-z_]"));
                }
            }
            _ => {
                return Err(bad(
                    "unknown kind; use instance, collection, artifact or registry",
                ));
            }
        }
        Ok(ScopeId(text.to_owned()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A record's global identity: 1..=64 base62 characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordUid(String);

impl RecordUid {
    /// Parses and validates a uid.
    pub fn new(text: &str) -> Result<RecordUid, IdError> {
        if text.is_empty() || text.len() > MAX_UID_LEN || !is_base62(text) {
            return Err(IdError::Uid { text: clip(text) });
        }
        Ok(RecordUid(text.to_owned()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_impls {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                <$t>::new(s)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
text_impls!(ScopeId);
text_impls!(RecordUid);

/// At most 80 characters of untrusted text, for error messages.
pub(crate) fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_validated() {
        for ok in [
            "instance:Lab0",
            "collection:Fq8cM2uX0aB1cD2e",
            "registry:ulabel",
            "artifact:a",
        ] {
            assert_eq!(ScopeId::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "instance",
            "instance:",
            "lab:x",
            "registry:Artifact",
            "collection:a-b",
        ] {
            assert!(ScopeId::new(bad).is_err(), "{bad}");
        }
        assert!(ScopeId::new(&format!("collection:{}", "a".repeat(65))).is_err());
    }

    #[test]
    fn uids_are_base62() {
        assert!(RecordUid::new("8TtVQHR3z3EKFtvAfoEf").is_ok());
        for bad in ["", "a b", "é", &"a".repeat(65)] {
            assert!(RecordUid::new(bad).is_err(), "{bad}");
        }
    }
}
