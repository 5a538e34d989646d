//! What the driver provides: a read-only view of its storage, and access
//! decisions.

use labmesh_crypto::PublicKey;

use crate::digest::BucketDigests;
use crate::error::StoreError;
use crate::hlc::Hlc;
use crate::ids::{RecordUid, ScopeId};
use crate::wire::Marks;

/// Read-only access to the driver's storage.
///
/// The engine never writes: it returns [`crate::Effect`]s, which the driver
/// applies in one transaction before it hands the engine the next input. So
/// every read sees the effects of every earlier call. (node: SQLite tables;
/// simulator and tests: [`crate::memory::MemoryStore`].)
pub trait Store {
    /// A record's document (the bytes of the last `PutDocument`), if any.
    fn document(&self, scope: &ScopeId, uid: &RecordUid) -> Result<Option<Vec<u8>>, StoreError>;

    /// The scope's marks (every `SetMark`), sorted by origin.
    fn marks(&self, scope: &ScopeId) -> Result<Marks, StoreError>;

    /// Stored signed batches of (`scope`, `origin`) whose last sequence
    /// number is above `after`, in sequence order, stopping once `max_bytes`
    /// is reached (but always returning the first, if any).
    fn batches_after(
        &self,
        scope: &ScopeId,
        origin: &PublicKey,
        after: u64,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Up to `limit` records of the scope in uid order, after `after`.
    fn records_after(
        &self,
        scope: &ScopeId,
        after: Option<&RecordUid>,
        limit: usize,
    ) -> Result<Vec<(RecordUid, Vec<u8>)>, StoreError>;

    /// The scope's bucket digests (maintained from `PutDocument`'s `digest`
    /// and `bucket`, see [`crate::digest`]).
    fn bucket_digests(&self, scope: &ScopeId) -> Result<BucketDigests, StoreError>;

    /// Up to `limit` (uid, digest) items of one bucket in uid order, after `after`.
    fn bucket_items(
        &self,
        scope: &ScopeId,
        bucket: u16,
        after: Option<&RecordUid>,
        limit: usize,
    ) -> Result<Vec<(RecordUid, [u8; 16])>, StoreError>;

    /// This node's own feed head (the last `LocalHead`, its clock raised by
    /// every later `RaiseClock`): its last sequence number and HLC;
    /// `(0, Hlc::default())` for a new node.
    fn local_head(&self) -> Result<(u64, Hlc), StoreError>;

    /// Whether a `RefuseChanges` of `scope` listed this change hash.
    fn refused(&self, scope: &ScopeId, change: &[u8; 32]) -> Result<bool, StoreError>;
}

/// Access decisions, made by the driver (node: capability tokens; simulator:
/// a static ACL).
pub trait Access {
    /// May `peer` receive data of `scope`? Checked by the serving side before
    /// it sends anything of the scope: batches, snapshots, documents, digests
    /// and announcements.
    fn may_read(&self, peer: &PublicKey, scope: &ScopeId) -> bool;

    /// Did `origin` hold write rights on `scope` at `at`? Checked by the
    /// receiving side for every change before applying it (and by the local
    /// node before it writes), and with the current time for a peer that
    /// serves unsigned documents (snapshots, repair). Must be deterministic
    /// for given inputs, so that every replica takes the same decision, and
    /// must look only at `at.ms`: a change inside a document carries only
    /// its milliseconds, and a feed entry must be judged like the same
    /// change inside a document.
    fn may_write(&self, origin: &PublicKey, scope: &ScopeId, at: Hlc) -> bool;

    /// Did `origin` ever hold a write right on `scope` (even one since
    /// revoked or expired)? A batch whose entries were all refused is kept
    /// and relayed only then — as evidence, so replicas that receive a
    /// later change depending on it can refuse that change too — and
    /// dropped for an origin that never wrote (a reader forging batches).
    /// The default keeps every refused batch.
    fn held_write(&self, origin: &PublicKey, scope: &ScopeId) -> bool {
        let _ = (origin, scope);
        true
    }
}
