//! Change feeds: each node's append-only log of its writes, shipped in
//! batches signed by the node.
//!
//! An entry is one automerge change to one record. Sequence numbers are
//! contiguous per origin across all scopes; a batch holds consecutive
//! entries of *one* scope, so a relay can forward a signed batch to any
//! reader of that scope without leaking other scopes. `prev` links a batch
//! to the origin's previous entry in the same scope (0 = none): a receiver
//! applies a batch only when `prev` is at most what it already has of that
//! (scope, origin), so a high-water mark always means "everything up to here".
//!
//! # Batch format (all integers big-endian)
//!
//! ```text
//! body   = "LMB" || version u8 (= 1) || origin 32 bytes || scope (u8 len || utf-8)
//!       || prev u64 || first_seq u64 || count u32 (1..=MAX_BATCH_ENTRIES)
//!       || entry × count
//! entry  = hlc_ms u64 || hlc_logical u32 || uid (u8 len || base62)
//!       || change (u32 len || automerge change bytes, ≤ MAX_CHANGE_BYTES)
//! signed = body || ed25519 signature (64 bytes) = sign_batch(origin key, body)
//! ```
//!
//! Every field is fixed width or length-prefixed and validated, so the
//! encoding is canonical: bytes that decode re-encode to themselves, and the
//! signature covers exactly what was decoded.

use labmesh_crypto::{NodeKey, PublicKey, Signature, sign_batch, verify_batch};

use crate::error::WireError;
use crate::hlc::{Hlc, MAX_HLC_MS};
use crate::ids::{RecordUid, ScopeId};
use crate::wire::codec::{Reader, Writer};
use crate::wire::limits::{MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_CHANGE_BYTES};

const MAGIC: &[u8; 4] = b"LMB\x01";
/// Smallest encoded entry: hlc 12, uid 2, change length 4.
const MIN_ENTRY: usize = 18;

/// One write: a change to one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The write's clock (its `node` is the origin's tag).
    pub hlc: Hlc,
    /// The record.
    pub uid: RecordUid,
    /// The automerge change, made by the origin's actor.
    pub change: Vec<u8>,
}

/// Consecutive entries of one origin in one scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The writing node.
    pub origin: PublicKey,
    /// The scope of every entry.
    pub scope: ScopeId,
    /// The origin's previous sequence number in this scope (0 = none).
    pub prev: u64,
    /// The sequence number of the first entry; the rest follow by one.
    pub first_seq: u64,
    /// The entries, in sequence order.
    pub entries: Vec<Entry>,
}

impl Batch {
    /// The sequence number of the last entry.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64 - 1
    }

    fn encode_body(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(MAGIC);
        w.key(&self.origin);
        w.scope(&self.scope);
        w.u64(self.prev);
        w.u64(self.first_seq);
        w.len(self.entries.len());
        for e in &self.entries {
            w.u64(e.hlc.ms);
            w.u32(e.hlc.logical);
            w.uid(&e.uid);
            w.bytes(&e.change);
        }
        w.buf
    }

    fn check(&self) -> Result<(), WireError> {
        let bad = |reason| {
            Err(WireError::Invalid {
                what: "batch",
                reason,
            })
        };
        let count = self.entries.len();
        if count == 0 || count > MAX_BATCH_ENTRIES {
            return bad("a batch holds 1..=MAX_BATCH_ENTRIES entries");
        }
        if self.first_seq == 0 || self.prev >= self.first_seq {
            return bad("sequence numbers start at 1 and prev precedes first_seq");
        }
        if self.first_seq.checked_add(count as u64 - 1).is_none() {
            return bad("sequence numbers overflow");
        }
        let tag = Hlc::node_tag(&self.origin);
        for pair in self.entries.windows(2) {
            if (pair[1].hlc.ms, pair[1].hlc.logical) <= (pair[0].hlc.ms, pair[0].hlc.logical) {
                return bad("entry clocks must increase");
            }
        }
        if self.entries.iter().any(|e| e.hlc.node != tag) {
            return bad("entry clocks carry the origin's tag");
        }
        if self.entries.iter().any(|e| e.hlc.ms > MAX_HLC_MS) {
            return bad("an entry clock is past MAX_HLC_MS (year 9999)");
        }
        if self
            .entries
            .iter()
            .any(|e| e.change.len() > MAX_CHANGE_BYTES)
        {
            return bad("a change exceeds MAX_CHANGE_BYTES");
        }
        Ok(())
    }
}

/// A batch with its origin's signature, as stored and relayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedBatch {
    batch: Batch,
    body: Vec<u8>,
    signature: Signature,
}

impl SignedBatch {
    /// Signs a batch with the origin's key.
    pub fn sign(key: &NodeKey, batch: Batch) -> Result<SignedBatch, WireError> {
        if batch.origin != key.public_key() {
            return Err(WireError::Invalid {
                what: "batch",
                reason: "only the origin signs its batches",
            });
        }
        batch.check()?;
        let body = batch.encode_body();
        if body.len() > MAX_BATCH_BYTES {
            return Err(WireError::TooLarge {
                what: "batch",
                len: body.len(),
                max: MAX_BATCH_BYTES,
            });
        }
        let signature = sign_batch(key, &body);
        Ok(SignedBatch {
            batch,
            body,
            signature,
        })
    }

    /// Decodes the structure. The signature is *not* checked here: call
    /// [`SignedBatch::verify`] before trusting anything in it.
    pub fn decode(bytes: &[u8]) -> Result<SignedBatch, WireError> {
        if bytes.len() > MAX_BATCH_BYTES + Signature::LEN {
            return Err(WireError::TooLarge {
                what: "batch",
                len: bytes.len(),
                max: MAX_BATCH_BYTES + Signature::LEN,
            });
        }
        let split = bytes
            .len()
            .checked_sub(Signature::LEN)
            .ok_or(WireError::Truncated {
                what: "batch signature",
            })?;
        let (body, sig) = bytes.split_at(split);
        let mut r = Reader::new(body);
        if r.take(4, "batch magic")? != MAGIC {
            return Err(WireError::Invalid {
                what: "batch",
                reason: "bad magic or version",
            });
        }
        let origin = r.key("batch origin")?;
        let scope = r.scope()?;
        let prev = r.u64("batch prev")?;
        let first_seq = r.u64("batch first_seq")?;
        let count = r.count(MAX_BATCH_ENTRIES, MIN_ENTRY, "batch entries")?;
        let node = Hlc::node_tag(&origin);
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let ms = r.u64("entry hlc")?;
            let logical = r.u32("entry hlc")?;
            let uid = r.uid()?;
            let change = r.bytes(MAX_CHANGE_BYTES, "entry change")?.to_vec();
            entries.push(Entry {
                hlc: Hlc { ms, logical, node },
                uid,
                change,
            });
        }
        r.finish()?;
        let batch = Batch {
            origin,
            scope,
            prev,
            first_seq,
            entries,
        };
        batch.check()?;
        let signature = Signature::from_slice(sig).map_err(|_| WireError::Truncated {
            what: "batch signature",
        })?;
        Ok(SignedBatch {
            batch,
            body: body.to_vec(),
            signature,
        })
    }

    /// Checks the origin's signature strictly (`verify_strict`), the decision
    /// every replica takes identically on adversarial input.
    pub fn verify(&self) -> Result<(), WireError> {
        verify_batch(&self.batch.origin, &self.body, &self.signature).map_err(|_| {
            WireError::BadSignature {
                origin: self.batch.origin.id(),
            }
        })
    }

    /// The batch (unverified until [`SignedBatch::verify`] succeeded).
    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    /// The stored and relayed form: body then signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + Signature::LEN);
        out.extend_from_slice(&self.body);
        out.extend_from_slice(&self.signature.to_bytes());
        out
    }

    /// Length of [`SignedBatch::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        self.body.len() + Signature::LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(key: &NodeKey) -> Batch {
        let node = Hlc::node_tag(&key.public_key());
        Batch {
            origin: key.public_key(),
            scope: ScopeId::new("collection:C1").unwrap(),
            prev: 3,
            first_seq: 7,
            entries: (0..3)
                .map(|i| Entry {
                    hlc: Hlc {
                        ms: 100 + i,
                        logical: 0,
                        node,
                    },
                    uid: RecordUid::new(&format!("uid{i}")).unwrap(),
                    change: vec![i as u8; 10],
                })
                .collect(),
        }
    }

    #[test]
    fn round_trips_and_verifies() {
        let key = NodeKey::generate();
        let signed = SignedBatch::sign(&key, batch(&key)).unwrap();
        let bytes = signed.to_bytes();
        let back = SignedBatch::decode(&bytes).unwrap();
        back.verify().unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.to_bytes(), bytes, "canonical");
        assert_eq!(back.batch().last_seq(), 9);
    }

    #[test]
    fn tampering_and_foreign_signers_are_refused() {
        let key = NodeKey::generate();
        let mut bytes = SignedBatch::sign(&key, batch(&key)).unwrap().to_bytes();
        let at = bytes.len() - 70;
        bytes[at] ^= 1;
        let err = SignedBatch::decode(&bytes).unwrap().verify().unwrap_err();
        assert!(matches!(err, WireError::BadSignature { .. }));
        let other = NodeKey::generate();
        assert!(SignedBatch::sign(&other, batch(&key)).is_err());
    }

    #[test]
    fn malformed_batches_are_refused() {
        let key = NodeKey::generate();
        let mut b = batch(&key);
        b.prev = 7;
        assert!(SignedBatch::sign(&key, b).is_err());
        let mut b = batch(&key);
        b.entries[2].hlc = b.entries[1].hlc;
        assert!(SignedBatch::sign(&key, b).is_err());
        let mut b = batch(&key);
        b.entries.clear();
        assert!(SignedBatch::sign(&key, b).is_err());
        let bytes = SignedBatch::sign(&key, batch(&key)).unwrap().to_bytes();
        for cut in [0, 10, 63, 64, bytes.len() - 1] {
            assert!(SignedBatch::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
