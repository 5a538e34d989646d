//! Change-batch signatures for the sync layer.
//!
//! A batch is signed hash-then-sign: ed25519 over a domain string and the
//! BLAKE3 digest of the payload. Ed25519 hashes its whole message twice
//! with SHA-512 when signing (once when verifying), which on this class of
//! machine costs more than the curve arithmetic for a 4 KiB batch; a
//! 32-byte digest makes signing and verifying cost the same at any batch
//! size, and BLAKE3's collision resistance keeps the signature binding.
//! The domain prefix means a batch signature is never a valid token-block
//! signature, and vice versa.

use std::fmt;

use crate::error::SignatureError;
use crate::key::{NodeKey, PublicKey};

/// Domain prefix of change-batch signatures (v2: over the BLAKE3 digest).
pub const BATCH_DOMAIN: &[u8] = b"labmesh/change-batch/v2\0";

/// An ed25519 signature (64 bytes: R then s).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

impl Signature {
    /// Length in bytes.
    pub const LEN: usize = 64;

    /// Parses exactly 64 bytes. Whether `s` is canonical is checked at
    /// verification, which rejects such signatures.
    pub fn from_slice(bytes: &[u8]) -> Result<Signature, SignatureError> {
        let bytes: &[u8; 64] = bytes
            .try_into()
            .map_err(|_| SignatureError::WrongLength { len: bytes.len() })?;
        Ok(Signature::from_bytes(bytes))
    }

    /// From a 64-byte array (cannot fail).
    pub fn from_bytes(bytes: &[u8; 64]) -> Signature {
        Signature(ed25519_dalek::Signature::from_bytes(bytes))
    }

    /// The 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }

    /// The underlying `ed25519-dalek` signature.
    pub fn as_dalek(&self) -> &ed25519_dalek::Signature {
        &self.0
    }

    pub(crate) fn from_dalek(sig: ed25519_dalek::Signature) -> Signature {
        Signature(sig)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        for b in self.to_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// Signs a change batch: ed25519 over `BATCH_DOMAIN || BLAKE3(payload)`.
pub fn sign_batch(key: &NodeKey, payload: &[u8]) -> Signature {
    key.sign_parts(&[BATCH_DOMAIN, blake3::hash(payload).as_bytes()])
}

/// The message actually signed for a batch: the domain and the digest.
fn batch_message(payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(BATCH_DOMAIN.len() + blake3::OUT_LEN);
    msg.extend_from_slice(BATCH_DOMAIN);
    msg.extend_from_slice(blake3::hash(payload).as_bytes());
    msg
}

/// Verifies one change-batch signature, strictly: non-canonical `s`,
/// small-order `R` and weak keys are rejected (`verify_strict`).
pub fn verify_batch(
    signer: &PublicKey,
    payload: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    signer
        .as_verifying_key()
        .verify_strict(&batch_message(payload), signature.as_dalek())
        .map_err(|_| SignatureError::Invalid {
            signer: signer.id(),
        })
}

/// Verifies many change-batch signatures at once (about twice as fast per
/// signature as one by one); on failure, finds the first bad item and says
/// which.
///
/// A signature an honest signer made passes here iff it passes
/// [`verify_batch`]. The batch equation is cofactorless with random
/// coefficients, so a key holder who deliberately builds a signature with a
/// small-order component in `R` may get it accepted here but refused by
/// [`verify_batch`]; it still proves that key holder signed the payload.
/// Where every replica must take the identical accept/reject decision on
/// adversarial input, decide with [`verify_batch`].
pub fn verify_batches(items: &[(PublicKey, &[u8], Signature)]) -> Result<(), SignatureError> {
    if items.is_empty() {
        return Ok(());
    }
    let messages: Vec<Vec<u8>> = items.iter().map(|(_, p, _)| batch_message(p)).collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let signatures: Vec<ed25519_dalek::Signature> = items.iter().map(|(_, _, s)| s.0).collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = items
        .iter()
        .map(|(k, _, _)| *k.as_verifying_key())
        .collect();
    if ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).is_ok() {
        return Ok(());
    }
    for (index, (key, msg)) in keys.iter().zip(&messages).enumerate() {
        if key.verify_strict(msg, &signatures[index]).is_err() {
            return Err(SignatureError::BatchItem {
                index,
                signer: items[index].0.id(),
            });
        }
    }
    Err(SignatureError::BatchInconsistent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = NodeKey::generate();
        let sig = sign_batch(&key, b"changes");
        verify_batch(&key.public_key(), b"changes", &sig).unwrap();
        let err = verify_batch(&key.public_key(), b"changed", &sig).unwrap_err();
        assert_eq!(
            err,
            SignatureError::Invalid {
                signer: key.public_key().id()
            }
        );
        let other = NodeKey::generate();
        assert!(verify_batch(&other.public_key(), b"changes", &sig).is_err());
    }

    #[test]
    fn batch_signature_is_domain_separated() {
        let key = NodeKey::generate();
        // A raw signature over the same bytes is not a batch signature.
        let raw = key.sign(b"changes");
        assert!(verify_batch(&key.public_key(), b"changes", &raw).is_err());
        // The batch signature is over the domain and the payload's digest.
        let sig = sign_batch(&key, b"changes");
        let mut msg = BATCH_DOMAIN.to_vec();
        msg.extend_from_slice(blake3::hash(b"changes").as_bytes());
        assert_eq!(sig, key.sign(&msg));
    }

    #[test]
    fn batch_verification_names_the_bad_item() {
        let keys: Vec<NodeKey> = (0..5).map(|_| NodeKey::generate()).collect();
        let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100]).collect();
        let mut items: Vec<(PublicKey, &[u8], Signature)> = keys
            .iter()
            .zip(&payloads)
            .map(|(k, p)| (k.public_key(), p.as_slice(), sign_batch(k, p)))
            .collect();
        verify_batches(&items).unwrap();
        verify_batches(&[]).unwrap();
        items[3].1 = b"tampered";
        assert_eq!(
            verify_batches(&items).unwrap_err(),
            SignatureError::BatchItem {
                index: 3,
                signer: keys[3].public_key().id()
            }
        );
    }

    #[test]
    fn signature_from_slice_checks_length() {
        for len in [0, 1, 63, 65, 128] {
            let err = Signature::from_slice(&vec![0u8; len]).unwrap_err();
            assert_eq!(err, SignatureError::WrongLength { len });
            assert!(err.to_string().contains("exactly 64 bytes"));
        }
        let sig = sign_batch(&NodeKey::generate(), b"x");
        assert_eq!(Signature::from_slice(&sig.to_bytes()).unwrap(), sig);
    }
}
