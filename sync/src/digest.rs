//! Anti-entropy digests: what two replicas compare to find out, in a few
//! dozen bytes, whether they hold the same records and feed positions.
//!
//! Each record contributes `record_digest(uid, heads)` (16 bytes of BLAKE3)
//! to one of [`BUCKETS`] buckets chosen by its uid; a bucket's digest is the
//! XOR of its records' digests, so a store can maintain it incrementally (XOR
//! out the old digest, XOR in the new one, in the transaction that writes the
//! document). The scope's `docs_digest` hashes the bucket digests; identical
//! replicas exchange only that and the marks digest ([`crate::wire::Message::Summary`]).

use crate::doc::Heads;
use crate::ids::RecordUid;
use crate::wire::Marks;
use crate::wire::limits::BUCKETS;

/// The bucket of a record.
pub fn bucket_of(uid: &RecordUid) -> u16 {
    let h = blake3::hash(uid.as_str().as_bytes());
    u16::from(h.as_bytes()[0]) % BUCKETS as u16
}

/// A record's contribution: 16 bytes of BLAKE3 over its uid and heads.
pub fn record_digest(uid: &RecordUid, heads: &Heads) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"labmesh/record-heads/v1\0");
    h.update(&[uid.as_str().len() as u8]);
    h.update(uid.as_str().as_bytes());
    for head in heads {
        h.update(head);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// The per-bucket XOR digests of one scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketDigests(pub [[u8; 16]; BUCKETS]);

impl Default for BucketDigests {
    fn default() -> Self {
        BucketDigests([[0; 16]; BUCKETS])
    }
}

impl BucketDigests {
    /// XORs a record digest into (or, done again, out of) its bucket.
    pub fn toggle(&mut self, bucket: u16, digest: &[u8; 16]) {
        if let Some(slot) = self.0.get_mut(usize::from(bucket)) {
            for (a, b) in slot.iter_mut().zip(digest) {
                *a ^= b;
            }
        }
    }

    /// The scope's documents digest.
    pub fn root(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"labmesh/buckets/v1\0");
        for d in &self.0 {
            h.update(d);
        }
        *h.finalize().as_bytes()
    }
}

/// Digest of a scope's marks.
pub fn marks_digest(marks: &Marks) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"labmesh/marks/v1\0");
    for (origin, seq) in marks {
        h.update(origin.as_bytes());
        h.update(&seq.to_be_bytes());
    }
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toggling_twice_restores_and_order_does_not_matter() {
        let uids: Vec<RecordUid> = (0..50)
            .map(|i| RecordUid::new(&format!("u{i}")).unwrap())
            .collect();
        let mut a = BucketDigests::default();
        let mut b = BucketDigests::default();
        for u in &uids {
            a.toggle(bucket_of(u), &record_digest(u, &vec![[1; 32]]));
        }
        for u in uids.iter().rev() {
            b.toggle(bucket_of(u), &record_digest(u, &vec![[1; 32]]));
        }
        assert_eq!(a.root(), b.root());
        let u = &uids[3];
        a.toggle(bucket_of(u), &record_digest(u, &vec![[1; 32]]));
        assert_ne!(a.root(), b.root());
        a.toggle(bucket_of(u), &record_digest(u, &vec![[2; 32]]));
        assert_ne!(a.root(), b.root(), "different heads, different digest");
    }
}
