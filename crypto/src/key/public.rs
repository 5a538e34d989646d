//! Public keys: how nodes and collaborators are named.
//!
//! The text form is the libp2p PeerId, so one string identifies a peer on
//! the network, in an address book and inside a token.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;
use libp2p_identity::PeerId;

use crate::error::{KeyError, clip};

/// An ed25519 public key: the identity of a node or a collaborator.
///
/// Its text form is the libp2p PeerId (`12D3KooW…`), so the string a user
/// copies from `labmesh id` is the same one libp2p prints. Construction
/// rejects points that are not on the curve and small-order ("weak") keys,
/// for which a signature can be valid for many messages.
#[derive(Clone, Copy)]
pub struct PublicKey(VerifyingKey);

impl From<&ed25519_dalek::SigningKey> for PublicKey {
    /// A key derived from a secret is never small-order: the clamped secret
    /// scalar times the base point lies in the prime-order subgroup.
    fn from(signing: &ed25519_dalek::SigningKey) -> PublicKey {
        PublicKey(signing.verifying_key())
    }
}

impl PublicKey {
    /// Parses 32 bytes of a compressed ed25519 point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPublicKey {
            reason: "the bytes are not a point on the ed25519 curve",
        })?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey {
                reason: "it is a small-order (weak) point",
            });
        }
        Ok(PublicKey(key))
    }

    /// The 32 key bytes (the form used inside tokens).
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The compact form carried in errors.
    pub fn id(&self) -> KeyId {
        KeyId::from(*self)
    }

    /// The underlying `ed25519-dalek` key.
    pub fn as_verifying_key(&self) -> &VerifyingKey {
        &self.0
    }

    /// The libp2p PeerId of this key (identity multihash of the protobuf key).
    pub fn to_peer_id(&self) -> PeerId {
        self.to_libp2p().to_peer_id()
    }

    /// The libp2p form of this key.
    pub fn to_libp2p(&self) -> libp2p_identity::PublicKey {
        // Infallible in practice: the bytes come from a valid `VerifyingKey`,
        // which is exactly what `try_from_bytes` checks for.
        let key = libp2p_identity::ed25519::PublicKey::try_from_bytes(self.as_bytes())
            .expect("a valid ed25519-dalek key is a valid libp2p ed25519 key");
        libp2p_identity::PublicKey::from(key)
    }

    /// Recovers the key inlined in an ed25519 PeerId.
    ///
    /// Fails for hashed PeerIds (RSA and other long keys: the key is not in
    /// the id), for non-ed25519 keys, and for non-canonical encodings (whose
    /// PeerId would not round-trip).
    pub fn from_peer_id(peer_id: &PeerId) -> Result<PublicKey, KeyError> {
        let not_ed25519 = |reason| KeyError::NotEd25519PeerId {
            peer_id: peer_id.to_base58(),
            reason,
        };
        let bytes = peer_id.to_bytes();
        // Multihash: varint code (0x00 = identity), varint length, digest.
        let digest = match bytes.as_slice() {
            [0x00, len, digest @ ..] if usize::from(*len) == digest.len() => digest,
            [0x00, ..] => return Err(not_ed25519("malformed identity multihash")),
            _ => return Err(not_ed25519("it is a hash of a key, not an inlined key")),
        };
        let key = libp2p_identity::PublicKey::try_decode_protobuf(digest)
            .map_err(|_| not_ed25519("the inlined bytes are not a libp2p public key"))?
            .try_into_ed25519()
            .map_err(|_| not_ed25519("the inlined key is not ed25519"))?;
        let key = PublicKey::from_bytes(&key.to_bytes())?;
        if key.to_peer_id() != *peer_id {
            return Err(not_ed25519("the key encoding is not canonical"));
        }
        Ok(key)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_peer_id().to_base58())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    /// Parses the PeerId text form, e.g. `12D3KooW…`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let peer_id = PeerId::from_str(s.trim()).map_err(|e| KeyError::InvalidPeerId {
            input: clip(s),
            reason: e.to_string(),
        })?;
        PublicKey::from_peer_id(&peer_id)
    }
}

impl From<PublicKey> for PeerId {
    fn from(key: PublicKey) -> PeerId {
        key.to_peer_id()
    }
}

/// A public key's 32 bytes, printed as its PeerId.
///
/// Errors carry this rather than a [`PublicKey`], which holds the
/// decompressed curve point too (192 bytes) and would bloat every `Result`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 32]);

impl KeyId {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The full key, if the bytes are one (always so for ids taken from a
    /// [`PublicKey`]).
    pub fn to_public_key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_bytes(&self.0)
    }
}

impl From<PublicKey> for KeyId {
    fn from(key: PublicKey) -> KeyId {
        KeyId(*key.as_bytes())
    }
}

impl PartialEq<PublicKey> for KeyId {
    fn eq(&self, other: &PublicKey) -> bool {
        &self.0 == other.as_bytes()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_public_key() {
            Ok(key) => key.fmt(f),
            // Not a valid key: show the raw bytes rather than nothing.
            Err(_) => self.0.iter().try_for_each(|b| write!(f, "{b:02x}")),
        }
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::NodeKey;

    #[test]
    fn public_key_peer_id_string_round_trip() {
        let key = NodeKey::generate().public_key();
        let text = key.to_string();
        assert!(text.starts_with("12D3KooW"), "{text}");
        assert_eq!(text, key.to_peer_id().to_base58());
        let back: PublicKey = text.parse().unwrap();
        assert_eq!(back, key);
        assert_eq!(PublicKey::from_peer_id(&key.to_peer_id()).unwrap(), key);
        assert_eq!(PublicKey::from_bytes(key.as_bytes()).unwrap(), key);
    }

    #[test]
    fn public_key_rejects_bad_inputs() {
        let err = "not-a-peer-id".parse::<PublicKey>().unwrap_err();
        assert!(matches!(err, KeyError::InvalidPeerId { .. }), "{err}");
        // A hashed (sha256) PeerId, as RSA keys have: the key is not inside.
        let hashed = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
        let err = hashed.parse::<PublicKey>().unwrap_err();
        assert!(matches!(err, KeyError::NotEd25519PeerId { .. }), "{err}");
        // The identity point (small order) is refused.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let err = PublicKey::from_bytes(&identity).unwrap_err();
        assert!(err.to_string().contains("weak"), "{err}");
    }
}
