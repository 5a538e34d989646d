//! Global record identities: random base62 strings.
//!
//! Artifact and collection uids are 20 characters: a 16-character *stem*
//! shared by every version of the record, and a 4-character version suffix.
//! Both parts are random, so two nodes creating versions of the same record
//! concurrently never mint the same uid (62^4 ≈ 14.8M suffixes per family).

use rand::RngExt;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of a versioned uid (artifacts, collections, transforms).
pub const VERSIONED_UID_LEN: usize = 20;
/// Length of the stem shared by all versions of a record.
pub const STEM_LEN: usize = 16;
/// Shortest uid prefix accepted for lookups.
pub const MIN_PREFIX_LEN: usize = 4;

/// A random base62 string of `len` characters.
pub fn random(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A uid for the first version of a new record family.
pub fn new_family() -> String {
    random(VERSIONED_UID_LEN)
}

/// A uid for a new version in the family of `stem`.
pub fn new_version(stem: &str) -> String {
    debug_assert_eq!(stem.len(), STEM_LEN);
    let mut uid = String::with_capacity(VERSIONED_UID_LEN);
    uid.push_str(stem);
    uid.push_str(&random(VERSIONED_UID_LEN - STEM_LEN));
    uid
}

/// The stem of a versioned uid.
pub fn stem(uid: &str) -> &str {
    &uid[..STEM_LEN.min(uid.len())]
}

/// Whether `s` consists only of base62 characters.
pub fn is_base62(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The exclusive upper bound of all strings starting with `prefix`, for
/// index range scans (`uid >= prefix AND uid < upper`). Base62 characters are
/// all below `{` in ASCII.
pub fn prefix_upper_bound(prefix: &str) -> String {
    let mut upper = String::with_capacity(prefix.len() + 1);
    upper.push_str(prefix);
    upper.push('{');
    upper
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_base62_of_the_right_length() {
        for _ in 0..100 {
            let uid = new_family();
            assert_eq!(uid.len(), VERSIONED_UID_LEN);
            assert!(is_base62(&uid));
        }
    }

    #[test]
    fn versions_share_the_stem() {
        let first = new_family();
        let second = new_version(stem(&first));
        assert_eq!(stem(&first), stem(&second));
        assert_ne!(first, second);
    }

    #[test]
    fn prefix_bound_orders_after_all_extensions() {
        let upper = prefix_upper_bound("abc");
        assert!("abcz" < upper.as_str() && "abc0" < upper.as_str());
        assert!("abd" > upper.as_str());
    }
}
