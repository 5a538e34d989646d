//! Documents refused from a peer during repair, remembered for a while so
//! repair does not resend them every round.
//!
//! When this node refuses a peer's version of a record (it holds a change
//! this node judges unauthorised — typically a change stamped after a
//! revocation the peer has not learned of yet), the two replicas keep
//! differing, and every summary would start the same futile exchange
//! again. So the refusal is remembered as (peer, scope, uid) → (their
//! record digest, ours). While it holds, this node compares with that peer
//! as if its own record had the peer's digest: the summary it sends and the
//! one it checks use that adjusted bucket set, so both sides see equal
//! documents and stay quiet. As soon as either replica of the record
//! changes (the peer learns the revocation and rebuilds, or new valid
//! changes arrive), the digests no longer match the memo and repair runs
//! again. Entries expire after `Config::refusal_memo_ms`, so a lost message
//! cannot hide a difference for longer than that; the memo is bounded and
//! soft (lost in a restart, which only costs one more futile round).

use std::collections::BTreeMap;

use labmesh_crypto::PublicKey;

use crate::digest::{BucketDigests, bucket_of};
use crate::ids::{RecordUid, ScopeId};

#[derive(Clone, Copy, Debug)]
struct Refused {
    theirs: [u8; 16],
    ours: [u8; 16],
    until_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Refusals {
    by_peer: BTreeMap<(PublicKey, ScopeId), BTreeMap<RecordUid, Refused>>,
    len: usize,
}

impl Refusals {
    /// Most remembered refusals; beyond it repair simply repeats.
    const CAPACITY: usize = 65_536;

    /// Remembers that `peer`'s version of `uid` (digest `theirs`) was
    /// refused while ours had digest `ours` (all zeros: we have none).
    pub(super) fn note(
        &mut self,
        peer: PublicKey,
        scope: &ScopeId,
        uid: &RecordUid,
        theirs: [u8; 16],
        ours: [u8; 16],
        until_ms: u64,
    ) {
        let entries = self.by_peer.entry((peer, scope.clone())).or_default();
        let refused = Refused {
            theirs,
            ours,
            until_ms,
        };
        match entries.get_mut(uid) {
            Some(slot) => *slot = refused,
            None if self.len < Self::CAPACITY => {
                entries.insert(uid.clone(), refused);
                self.len += 1;
            }
            None => {}
        }
    }

    /// Our bucket digests as `peer` should see them: each remembered record
    /// counted with the peer's digest instead of ours. If one of the two
    /// replicas changed since, the result no longer matches the peer's and
    /// repair runs.
    pub(super) fn adjusted(
        &self,
        peer: &PublicKey,
        scope: &ScopeId,
        ours: &BucketDigests,
    ) -> BucketDigests {
        let mut out = ours.clone();
        if let Some(entries) = self.by_peer.get(&(*peer, scope.clone())) {
            for (uid, r) in entries {
                let bucket = bucket_of(uid);
                out.toggle(bucket, &r.ours);
                out.toggle(bucket, &r.theirs);
            }
        }
        out
    }

    /// Whether we refused exactly this pair of versions of `uid` before.
    pub(super) fn holds(
        &self,
        peer: &PublicKey,
        scope: &ScopeId,
        uid: &RecordUid,
        theirs: &[u8; 16],
        ours: &[u8; 16],
    ) -> bool {
        self.by_peer
            .get(&(*peer, scope.clone()))
            .and_then(|e| e.get(uid))
            .is_some_and(|r| r.theirs == *theirs && r.ours == *ours)
    }

    /// Forgets (peer, scope): the replicas agree, or the memo went stale.
    pub(super) fn forget(&mut self, peer: &PublicKey, scope: &ScopeId) {
        if let Some(e) = self.by_peer.remove(&(*peer, scope.clone())) {
            self.len -= e.len();
        }
    }

    pub(super) fn forget_peer(&mut self, peer: &PublicKey) {
        let keys: Vec<_> = self
            .by_peer
            .keys()
            .filter(|(p, _)| p == peer)
            .cloned()
            .collect();
        for (p, s) in keys {
            self.forget(&p, &s);
        }
    }

    pub(super) fn expire(&mut self, now_ms: u64) {
        let mut len = 0;
        self.by_peer.retain(|_, entries| {
            entries.retain(|_, r| r.until_ms > now_ms);
            len += entries.len();
            !entries.is_empty()
        });
        self.len = len;
    }
}
