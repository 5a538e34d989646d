//! Where content lives inside a storage root. Objects are addressed by
//! content: `objects/<first two hex digits>/<blake3 hex><suffix>`. Any node
//! can resolve an object reference (hash, size, suffix) against its own
//! storage with the same function.

use crate::hash::ContentHash;

/// Folder manifests are objects too, under this suffix.
pub const MANIFEST_SUFFIX: &str = ".manifest";
/// Top-level directory of objects under a storage root.
pub const OBJECTS_DIR: &str = "objects";
/// Staging directory for objects being written (same file system as the objects).
pub const TMP_DIR: &str = ".tmp";

/// The key of an object under its storage root.
pub fn object_key(hash: &ContentHash, suffix: &str) -> String {
    let hex = hash.to_hex();
    format!("{OBJECTS_DIR}/{}/{hex}{suffix}", &hex[..2])
}

/// Parses an object key back into its hash hex and suffix (for gc listings).
pub fn parse_object_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(OBJECTS_DIR)?.strip_prefix('/')?;
    let (shard, name) = rest.split_once('/')?;
    if name.len() < 64 || !name.is_char_boundary(64) {
        return None;
    }
    let (hex, suffix) = name.split_at(64);
    (shard.len() == 2 && hex.starts_with(shard) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some((hex, suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let h = ContentHash::of(b"abc");
        let key = object_key(&h, ".tar.gz");
        assert_eq!(key, format!("objects/64/{}.tar.gz", h.to_hex()));
        assert_eq!(
            parse_object_key(&key),
            Some((h.to_hex().as_str(), ".tar.gz"))
        );
        assert_eq!(parse_object_key("objects/zz/nothing"), None);
    }
}
