//! An in-memory driver side: a [`Store`] that applies [`Effect`]s, and a
//! static ACL for [`Access`]. The simulator, the tests and the benchmarks
//! drive the engine with these; the node implements the same traits over
//! SQLite and capability tokens. It is also the reference for what a store
//! must do with each effect.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use labmesh_crypto::PublicKey;

use crate::digest::{BucketDigests, bucket_of, record_digest};
use crate::doc::{Heads, RecordDoc, RecordView};
use crate::engine::{Access, Effect, Store};
use crate::error::StoreError;
use crate::hlc::Hlc;
use crate::ids::{RecordUid, ScopeId};
use crate::wire::Marks;

/// A record as stored: document bytes and the materialized row.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    /// The automerge document.
    pub doc: Vec<u8>,
    /// The row.
    pub view: RecordView,
    /// The document's heads.
    pub heads: Heads,
    /// Its anti-entropy digest.
    pub digest: [u8; 16],
    /// Its bucket.
    pub bucket: u16,
}

/// One origin's stored batches in one scope: last_seq -> (first_seq, bytes).
type Feed = BTreeMap<u64, (u64, Vec<u8>)>;

/// Storage in memory, with the same semantics a SQLite driver must have.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    records: BTreeMap<ScopeId, BTreeMap<RecordUid, StoredRecord>>,
    marks: BTreeMap<ScopeId, BTreeMap<PublicKey, u64>>,
    /// (scope, origin) -> last_seq -> (first_seq, signed batch)
    batches: BTreeMap<(ScopeId, PublicKey), Feed>,
    buckets: BTreeMap<ScopeId, BucketDigests>,
    head: (u64, Hlc),
    refused: BTreeMap<ScopeId, BTreeSet<[u8; 32]>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Applies one call's effects, in order (a transaction, in memory).
    pub fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::PutDocument {
                    scope,
                    uid,
                    doc,
                    view,
                    heads,
                    digest,
                    bucket,
                } => {
                    let buckets = self.buckets.entry(scope.clone()).or_default();
                    let records = self.records.entry(scope).or_default();
                    if let Some(old) = records.get(&uid) {
                        buckets.toggle(old.bucket, &old.digest);
                    }
                    buckets.toggle(bucket, &digest);
                    records.insert(
                        uid,
                        StoredRecord {
                            doc,
                            view,
                            heads,
                            digest,
                            bucket,
                        },
                    );
                }
                Effect::StoreBatch {
                    scope,
                    origin,
                    first_seq,
                    last_seq,
                    bytes,
                } => {
                    self.batches
                        .entry((scope, origin))
                        .or_default()
                        .entry(last_seq)
                        .or_insert((first_seq, bytes));
                }
                Effect::SetMark { scope, origin, seq } => {
                    let mark = self
                        .marks
                        .entry(scope)
                        .or_default()
                        .entry(origin)
                        .or_insert(0);
                    *mark = (*mark).max(seq);
                }
                Effect::LocalHead { seq, hlc } => self.head = (seq, hlc),
                Effect::RaiseClock { hlc } => {
                    if (hlc.ms, hlc.logical) > (self.head.1.ms, self.head.1.logical) {
                        self.head.1 = hlc;
                    }
                }
                Effect::RefuseChanges { scope, changes } => {
                    self.refused.entry(scope).or_default().extend(changes);
                }
            }
        }
    }

    /// A stored record.
    pub fn record(&self, scope: &ScopeId, uid: &RecordUid) -> Option<&StoredRecord> {
        self.records.get(scope)?.get(uid)
    }

    /// Every record of a scope, in uid order.
    pub fn records(&self, scope: &ScopeId) -> impl Iterator<Item = (&RecordUid, &StoredRecord)> {
        self.records.get(scope).into_iter().flat_map(|r| r.iter())
    }

    /// Bytes of stored documents and batches (what a disk would hold).
    pub fn bytes(&self) -> usize {
        let docs: usize = self
            .records
            .values()
            .flat_map(|r| r.values())
            .map(|r| r.doc.len())
            .sum();
        let batches: usize = self
            .batches
            .values()
            .flat_map(|b| b.values())
            .map(|(_, b)| b.len())
            .sum();
        docs + batches
    }

    /// Replaces a record's document behind the engine's back, keeping the
    /// marks: what a restore from an old backup does. Drift repair must fix it.
    pub fn overwrite_document(&mut self, scope: &ScopeId, uid: &RecordUid, mut doc: RecordDoc) {
        let heads = doc.heads();
        let effect = Effect::PutDocument {
            scope: scope.clone(),
            uid: uid.clone(),
            doc: doc.save(),
            view: doc.view(),
            digest: record_digest(uid, &heads),
            bucket: bucket_of(uid),
            heads,
        };
        self.apply(vec![effect]);
    }
}

impl MemoryStore {
    /// Replaces only the stored bytes of a record's document, leaving its
    /// row, heads and digest: what a corrupted disk does. (Fault injection
    /// for the simulator's self-tests.)
    pub fn corrupt_document(&mut self, scope: &ScopeId, uid: &RecordUid, doc: Vec<u8>) {
        if let Some(r) = self.records.get_mut(scope).and_then(|r| r.get_mut(uid)) {
            r.doc = doc;
        }
    }

    /// How many changes of `scope` are remembered as refused.
    pub fn refused_count(&self, scope: &ScopeId) -> usize {
        self.refused.get(scope).map_or(0, BTreeSet::len)
    }
}

impl Store for MemoryStore {
    fn document(&self, scope: &ScopeId, uid: &RecordUid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.record(scope, uid).map(|r| r.doc.clone()))
    }

    fn marks(&self, scope: &ScopeId) -> Result<Marks, StoreError> {
        Ok(self
            .marks
            .get(scope)
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default())
    }

    fn batches_after(
        &self,
        scope: &ScopeId,
        origin: &PublicKey,
        after: u64,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        let mut used = 0;
        if let Some(batches) = self.batches.get(&(scope.clone(), *origin)) {
            for (_, (_, bytes)) in batches.range((Bound::Excluded(after), Bound::Unbounded)) {
                if !out.is_empty() && used + bytes.len() > max_bytes {
                    break;
                }
                used += bytes.len();
                out.push(bytes.clone());
            }
        }
        Ok(out)
    }

    fn records_after(
        &self,
        scope: &ScopeId,
        after: Option<&RecordUid>,
        limit: usize,
    ) -> Result<Vec<(RecordUid, Vec<u8>)>, StoreError> {
        let Some(records) = self.records.get(scope) else {
            return Ok(Vec::new());
        };
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.clone()));
        Ok(records
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(u, r)| (u.clone(), r.doc.clone()))
            .collect())
    }

    fn bucket_digests(&self, scope: &ScopeId) -> Result<BucketDigests, StoreError> {
        Ok(self.buckets.get(scope).cloned().unwrap_or_default())
    }

    fn bucket_items(
        &self,
        scope: &ScopeId,
        bucket: u16,
        after: Option<&RecordUid>,
        limit: usize,
    ) -> Result<Vec<(RecordUid, [u8; 16])>, StoreError> {
        let Some(records) = self.records.get(scope) else {
            return Ok(Vec::new());
        };
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.clone()));
        Ok(records
            .range((lower, Bound::Unbounded))
            .filter(|(_, r)| r.bucket == bucket)
            .take(limit)
            .map(|(u, r)| (u.clone(), r.digest))
            .collect())
    }

    fn local_head(&self) -> Result<(u64, Hlc), StoreError> {
        Ok(self.head)
    }

    fn refused(&self, scope: &ScopeId, change: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.refused.get(scope).is_some_and(|s| s.contains(change)))
    }
}

/// An access-control list in memory: who may read and who may write each
/// scope, and write rights revoked at a given time. Writing implies
/// reading; a revoked writer keeps reading.
#[derive(Clone, Debug, Default)]
pub struct StaticAccess {
    readers: BTreeMap<ScopeId, BTreeSet<PublicKey>>,
    writers: BTreeMap<ScopeId, BTreeSet<PublicKey>>,
    /// (scope, writer) -> the last millisecond its write right covers.
    revoked: BTreeMap<(ScopeId, PublicKey), u64>,
}

impl StaticAccess {
    /// An empty ACL (nobody may do anything).
    pub fn new() -> StaticAccess {
        StaticAccess::default()
    }

    /// Lets `node` read `scope`.
    pub fn grant_read(&mut self, node: PublicKey, scope: &ScopeId) {
        self.readers.entry(scope.clone()).or_default().insert(node);
    }

    /// Lets `node` read and write `scope`.
    pub fn grant_write(&mut self, node: PublicKey, scope: &ScopeId) {
        self.grant_read(node, scope);
        self.writers.entry(scope.clone()).or_default().insert(node);
    }
}

impl StaticAccess {
    /// Revokes `node`'s write right on `scope` at `at_ms`: changes stamped
    /// at or before it stay valid, later ones are not (judged on the
    /// milliseconds, as [`Access::may_write`] requires). An earlier
    /// revocation of the same right wins.
    pub fn revoke_write(&mut self, node: PublicKey, scope: &ScopeId, at_ms: u64) {
        let slot = self.revoked.entry((scope.clone(), node)).or_insert(at_ms);
        *slot = (*slot).min(at_ms);
    }

    /// When `node`'s write right on `scope` was revoked, if it was.
    pub fn revoked_at(&self, node: &PublicKey, scope: &ScopeId) -> Option<u64> {
        self.revoked.get(&(scope.clone(), *node)).copied()
    }
}

impl Access for StaticAccess {
    fn may_read(&self, peer: &PublicKey, scope: &ScopeId) -> bool {
        self.readers.get(scope).is_some_and(|s| s.contains(peer))
    }

    fn may_write(&self, origin: &PublicKey, scope: &ScopeId, at: Hlc) -> bool {
        self.held_write(origin, scope)
            && self
                .revoked_at(origin, scope)
                .is_none_or(|last| at.ms <= last)
    }

    fn held_write(&self, origin: &PublicKey, scope: &ScopeId) -> bool {
        self.writers.get(scope).is_some_and(|s| s.contains(origin))
    }
}
