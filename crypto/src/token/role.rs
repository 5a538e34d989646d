//! Roles: what a token lets its holder do, totally ordered.

use std::fmt;
use std::str::FromStr;

use crate::error::{TokenError, clip};

/// A token's role. `Admin` implies `Write` implies `Read`, so the derived
/// order is the rights order: a delegation may only keep or lower it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// See records and fetch content.
    Read,
    /// Also create and change records.
    Write,
    /// Also manage the instance (users, storage, sharing). Every role can
    /// delegate, but only what it has.
    Admin,
}

impl Role {
    /// All roles, lowest first.
    pub const ALL: [Role; 3] = [Role::Read, Role::Write, Role::Admin];

    /// The byte in the binary token form (1, 2, 3; 0 is never valid, so a
    /// zeroed buffer does not decode as a read token).
    pub fn to_byte(self) -> u8 {
        match self {
            Role::Read => 1,
            Role::Write => 2,
            Role::Admin => 3,
        }
    }

    /// Inverse of [`Role::to_byte`].
    pub fn from_byte(byte: u8) -> Option<Role> {
        match byte {
            1 => Some(Role::Read),
            2 => Some(Role::Write),
            3 => Some(Role::Admin),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| TokenError::ParseRole { input: clip(s) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_text() {
        assert!(Role::Read < Role::Write && Role::Write < Role::Admin);
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
            assert_eq!(Role::from_byte(role.to_byte()), Some(role));
        }
        assert_eq!(Role::from_byte(0), None);
        let err = "Admin".parse::<Role>().unwrap_err().to_string();
        assert!(err.contains("read, write, admin"), "{err}");
    }
}
