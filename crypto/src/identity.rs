//! Public identities for address books: a name bound to a public key, with a
//! one-line text form that survives e-mail and chat.
//!
//! `labmesh-identity:v1:<name>:<peer-id>` — the version field lets the form
//! change later without old parsers misreading new lines.

use std::fmt;
use std::str::FromStr;

use crate::error::{KeyError, clip};
use crate::key::PublicKey;

const PREFIX: &str = "labmesh-identity:";
const VERSION: &str = "v1";

/// Longest identity name.
pub const MAX_NAME_LEN: usize = 64;

/// A named public key, as kept in an address book.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    name: String,
    key: PublicKey,
}

impl PublicIdentity {
    /// Binds `name` (1..=64 of `[A-Za-z0-9._-]`) to `key`.
    pub fn new(name: impl Into<String>, key: PublicKey) -> Result<PublicIdentity, KeyError> {
        let name = name.into();
        validate_name(&name)?;
        Ok(PublicIdentity { name, key })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key.
    pub fn key(&self) -> PublicKey {
        self.key
    }

    /// The one-line text form, `labmesh-identity:v1:<name>:<peer-id>`.
    pub fn export(&self) -> String {
        self.to_string()
    }

    /// Parses the one-line text form (surrounding whitespace is ignored).
    pub fn import(line: &str) -> Result<PublicIdentity, KeyError> {
        line.parse()
    }
}

fn validate_name(name: &str) -> Result<(), KeyError> {
    let bad = |reason| KeyError::InvalidName {
        name: clip(name),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("it is longer than 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad("it contains a character other than A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

impl fmt::Display for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{VERSION}:{}:{}", self.name, self.key)
    }
}

impl FromStr for PublicIdentity {
    type Err = KeyError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| KeyError::InvalidIdentity { reason };
        let rest = line
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| invalid("it does not start with `labmesh-identity:`".into()))?;
        let mut fields = rest.split(':');
        let (Some(version), Some(name), Some(peer_id), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(invalid(
                "it does not have exactly three fields after the prefix".into(),
            ));
        };
        if version != VERSION {
            return Err(invalid(format!(
                "version `{}` is not supported (this build reads v1)",
                clip(version)
            )));
        }
        validate_name(name)?;
        let key = peer_id.parse()?;
        Ok(PublicIdentity {
            name: name.to_owned(),
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::NodeKey;

    #[test]
    fn export_import_round_trip() {
        let key = NodeKey::generate().public_key();
        let id = PublicIdentity::new("alice.lab-1_x", key).unwrap();
        let line = id.export();
        assert_eq!(line, format!("labmesh-identity:v1:alice.lab-1_x:{key}"));
        assert_eq!(PublicIdentity::import(&line).unwrap(), id);
        // Pasted with a trailing newline still works.
        assert_eq!(PublicIdentity::import(&format!("  {line}\n")).unwrap(), id);
    }

    #[test]
    fn bad_identity_lines_say_what_is_wrong() {
        let key = NodeKey::generate().public_key();
        let cases = [
            ("alice:12D3KooW", "does not start with"),
            ("labmesh-identity:v2:alice:x", "version `v2`"),
            ("labmesh-identity:v1:alice", "exactly three fields"),
            ("labmesh-identity:v1:a:b:c", "exactly three fields"),
            ("labmesh-identity:v1::PEER", "it is empty"),
            ("labmesh-identity:v1:al ice:PEER", "character other than"),
            (
                "labmesh-identity:v1:alice:12D3KooWnot",
                "not a libp2p PeerId",
            ),
        ];
        for (line, expected) in cases {
            let line = line.replace("PEER", &key.to_string());
            let err = PublicIdentity::import(&line).unwrap_err().to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
        let long = "x".repeat(65);
        let err = PublicIdentity::new(long, key).unwrap_err();
        assert!(err.to_string().contains("longer than 64"), "{err}");
        assert!(PublicIdentity::new("x".repeat(64), key).is_ok());
        let err = PublicIdentity::new("ünïcode", key).unwrap_err();
        assert!(matches!(err, KeyError::InvalidName { .. }), "{err}");
    }
}
