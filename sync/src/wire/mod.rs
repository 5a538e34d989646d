//! The protocol's messages and their binary encoding.
//!
//! ```text
//! message  = version u8 (= 1) || kind u8 || body          (≤ MAX_MESSAGE_BYTES)
//! scope    = u8 len || utf-8      uid = u8 len || base62     opt_uid = flag u8 || [uid]
//! marks    = u32 count (≤ MAX_MARKS) || (origin 32 || seq u64) × count, origins strictly increasing
//!
//! 1 Announce        scope || marks                          "my feed positions moved"
//! 2 Pull            scope || full flag || marks              "these are mine; send what I lack"
//! 3 Batches         scope || more flag || u32 n || (u32 len || signed batch) × n
//! 4 Summary         scope || marks_digest 32 || docs_digest 32
//! 5 Buckets         scope || u32 n (= BUCKETS) || digest 16 × n
//! 6 BucketItems     scope || bucket u16 || after opt_uid || upto opt_uid
//!                   || u32 n || (uid || digest 16) × n
//! 7 Docs            scope || u32 n || (uid || u32 len || document) × n || u32 m || uid × m
//! 8 SnapshotRequest scope || after opt_uid
//! 9 SnapshotChunk   scope || marks || u32 n || (uid || u32 len || document) × n || next opt_uid
//! 10 Denied         scope
//! ```
//!
//! Decoding checks the total size first, then every field in order, and
//! returns the first problem as a [`WireError`]; nothing is allocated beyond
//! what the input holds, and a batch's signature is checked later, by the
//! engine, before anything in it is used.

pub(crate) mod codec;
mod message;

pub use message::{Marks, Message};

/// Protocol limits. A peer that exceeds one is refused, never truncated.
pub mod limits {
    /// Protocol version spoken by this build.
    pub const VERSION: u8 = 1;
    /// Largest message, in bytes.
    pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
    /// Largest signed batch body, in bytes: one change of the largest
    /// record fits alone in a batch, and the batch in one message.
    pub const MAX_BATCH_BYTES: usize = 3 << 20;
    /// Most entries in one batch.
    pub const MAX_BATCH_ENTRIES: usize = 512;
    /// Largest automerge change in a feed entry: what fits a batch with its
    /// headers.
    pub const MAX_CHANGE_BYTES: usize = MAX_BATCH_BYTES - (4 << 10);
    /// Largest record document in a snapshot or repair message (a large one
    /// travels alone, with room left for the marks or want list beside it).
    /// automerge inflates compressed columns without an output cap; this
    /// bounds the damage.
    pub const MAX_DOC_BYTES: usize = 3 << 20;
    /// Largest document a local write may leave a shared record with: half
    /// of [`MAX_DOC_BYTES`], so a record two writers grow concurrently to
    /// the limit still travels. (A record grown past `MAX_DOC_BYTES` by
    /// more concurrent writers is reported, `Event::Oversized`, by every
    /// node that cannot serve it whole.)
    pub const MAX_RECORD_BYTES: usize = MAX_DOC_BYTES / 2;
    /// Most batches in one message.
    pub const MAX_BATCHES_PER_MESSAGE: usize = 64;
    /// Most (origin, seq) marks in one message: origins of one scope.
    pub const MAX_MARKS: usize = 4096;
    /// Most records (documents or wanted uids) in one message.
    pub const MAX_RECORDS_PER_MESSAGE: usize = 4096;
    /// Most (uid, digest) items in one message.
    pub const MAX_BUCKET_ITEMS: usize = 16384;
    /// Buckets of the anti-entropy summary.
    pub const BUCKETS: usize = 64;
}
