//! The message enum and its codec (format in the module above).

use labmesh_crypto::PublicKey;

use super::codec::{Reader, Writer};
use super::limits::*;
use crate::error::WireError;
use crate::feed::SignedBatch;
use crate::ids::{RecordUid, ScopeId};

/// High-water marks of one scope: per origin, the last sequence number this
/// replica has consumed. Sorted by origin, no duplicates.
pub type Marks = Vec<(PublicKey, u64)>;

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Feed positions moved (new writes or relayed batches): pull promptly.
    Announce {
        /// The scope.
        scope: ScopeId,
        /// The sender's new marks for some origins.
        marks: Marks,
    },
    /// The sender's marks; the receiver sends back batches the sender lacks.
    /// With `full`, `marks` lists every origin the sender knows, so origins
    /// missing from it are wholly missing, and the receiver pulls back what
    /// it lacks itself.
    Pull {
        /// The scope.
        scope: ScopeId,
        /// Whether `marks` is complete.
        full: bool,
        /// The sender's marks.
        marks: Marks,
    },
    /// Signed batches, in feed order per origin.
    Batches {
        /// The scope of every batch.
        scope: ScopeId,
        /// Whether the sender has more: pull again after applying these.
        more: bool,
        /// The batches.
        batches: Vec<SignedBatch>,
    },
    /// Steady-state anti-entropy: digests of the marks and of the documents.
    Summary {
        /// The scope.
        scope: ScopeId,
        /// BLAKE3 of the marks.
        marks_digest: [u8; 32],
        /// BLAKE3 of the bucket digests of (uid, heads).
        docs_digest: [u8; 32],
    },
    /// The per-bucket digests, sent when documents differ under equal marks.
    Buckets {
        /// The scope.
        scope: ScopeId,
        /// `BUCKETS` digests.
        digests: Vec<[u8; 16]>,
    },
    /// The (uid, heads digest) items of one bucket, in uid order, for uids in
    /// (`after`, `upto`] (`None` = open end).
    BucketItems {
        /// The scope.
        scope: ScopeId,
        /// The bucket.
        bucket: u16,
        /// Exclusive lower bound.
        after: Option<RecordUid>,
        /// Inclusive upper bound.
        upto: Option<RecordUid>,
        /// The items.
        items: Vec<(RecordUid, [u8; 16])>,
    },
    /// Whole documents for repair, and uids the sender wants in return.
    Docs {
        /// The scope.
        scope: ScopeId,
        /// Documents (automerge saves).
        docs: Vec<(RecordUid, Vec<u8>)>,
        /// Records the sender lacks.
        want: Vec<RecordUid>,
    },
    /// Asks for a snapshot of a scope, from the start or after a uid.
    SnapshotRequest {
        /// The scope.
        scope: ScopeId,
        /// Resume after this uid.
        after: Option<RecordUid>,
    },
    /// Part of a snapshot: compacted documents in uid order.
    SnapshotChunk {
        /// The scope.
        scope: ScopeId,
        /// The server's marks when the snapshot started (first chunk only).
        marks: Marks,
        /// Documents.
        records: Vec<(RecordUid, Vec<u8>)>,
        /// The uid to resume after, or `None` when this was the last chunk.
        next: Option<RecordUid>,
    },
    /// The sender will not serve this scope to the receiver.
    Denied {
        /// The scope.
        scope: ScopeId,
    },
}

const ANNOUNCE: u8 = 1;
const PULL: u8 = 2;
const BATCHES: u8 = 3;
const SUMMARY: u8 = 4;
const BUCKETS_KIND: u8 = 5;
const BUCKET_ITEMS: u8 = 6;
const DOCS: u8 = 7;
const SNAPSHOT_REQUEST: u8 = 8;
const SNAPSHOT_CHUNK: u8 = 9;
const DENIED: u8 = 10;

/// Smallest encoded uid: a length byte and one character.
const MIN_UID: usize = 2;

impl Message {
    /// The scope the message is about.
    pub fn scope(&self) -> &ScopeId {
        match self {
            Message::Announce { scope, .. }
            | Message::Pull { scope, .. }
            | Message::Batches { scope, .. }
            | Message::Summary { scope, .. }
            | Message::Buckets { scope, .. }
            | Message::BucketItems { scope, .. }
            | Message::Docs { scope, .. }
            | Message::SnapshotRequest { scope, .. }
            | Message::SnapshotChunk { scope, .. }
            | Message::Denied { scope } => scope,
        }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        match self {
            Message::Announce { scope, marks } => {
                w.u8(ANNOUNCE);
                w.scope(scope);
                write_marks(&mut w, marks);
            }
            Message::Pull { scope, full, marks } => {
                w.u8(PULL);
                w.scope(scope);
                w.flag(*full);
                write_marks(&mut w, marks);
            }
            Message::Batches {
                scope,
                more,
                batches,
            } => {
                w.u8(BATCHES);
                w.scope(scope);
                w.flag(*more);
                w.len(batches.len());
                for b in batches {
                    w.bytes(&b.to_bytes());
                }
            }
            Message::Summary {
                scope,
                marks_digest,
                docs_digest,
            } => {
                w.u8(SUMMARY);
                w.scope(scope);
                w.raw(marks_digest);
                w.raw(docs_digest);
            }
            Message::Buckets { scope, digests } => {
                w.u8(BUCKETS_KIND);
                w.scope(scope);
                w.len(digests.len());
                for d in digests {
                    w.raw(d);
                }
            }
            Message::BucketItems {
                scope,
                bucket,
                after,
                upto,
                items,
            } => {
                w.u8(BUCKET_ITEMS);
                w.scope(scope);
                w.u16(*bucket);
                w.opt_uid(after.as_ref());
                w.opt_uid(upto.as_ref());
                w.len(items.len());
                for (uid, d) in items {
                    w.uid(uid);
                    w.raw(d);
                }
            }
            Message::Docs { scope, docs, want } => {
                w.u8(DOCS);
                w.scope(scope);
                write_docs(&mut w, docs);
                w.len(want.len());
                for uid in want {
                    w.uid(uid);
                }
            }
            Message::SnapshotRequest { scope, after } => {
                w.u8(SNAPSHOT_REQUEST);
                w.scope(scope);
                w.opt_uid(after.as_ref());
            }
            Message::SnapshotChunk {
                scope,
                marks,
                records,
                next,
            } => {
                w.u8(SNAPSHOT_CHUNK);
                w.scope(scope);
                write_marks(&mut w, marks);
                write_docs(&mut w, records);
                w.opt_uid(next.as_ref());
            }
            Message::Denied { scope } => {
                w.u8(DENIED);
                w.scope(scope);
            }
        }
        w.buf
    }

    /// Decodes and validates a message from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        if bytes.is_empty() {
            return Err(WireError::Empty);
        }
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(WireError::TooLarge {
                what: "message",
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
        let kind = r.u8("kind")?;
        let scope = match kind {
            ANNOUNCE..=DENIED => r.scope()?,
            other => return Err(WireError::UnknownKind(other)),
        };
        let message = match kind {
            ANNOUNCE => Message::Announce {
                scope,
                marks: read_marks(&mut r)?,
            },
            PULL => {
                let full = r.flag("pull full")?;
                Message::Pull {
                    scope,
                    full,
                    marks: read_marks(&mut r)?,
                }
            }
            BATCHES => {
                let more = r.flag("batches more")?;
                let n = r.count(MAX_BATCHES_PER_MESSAGE, 4, "batches")?;
                let mut batches = Vec::with_capacity(n);
                for _ in 0..n {
                    let b = SignedBatch::decode(r.bytes(MAX_MESSAGE_BYTES, "batch")?)?;
                    if b.batch().scope != scope {
                        return Err(WireError::Invalid {
                            what: "batch",
                            reason: "its scope differs from the message's",
                        });
                    }
                    batches.push(b);
                }
                Message::Batches {
                    scope,
                    more,
                    batches,
                }
            }
            SUMMARY => Message::Summary {
                scope,
                marks_digest: r.array("marks digest")?,
                docs_digest: r.array("docs digest")?,
            },
            BUCKETS_KIND => {
                let n = r.count(BUCKETS, 16, "buckets")?;
                if n != BUCKETS {
                    return Err(WireError::Invalid {
                        what: "buckets",
                        reason: "exactly BUCKETS digests",
                    });
                }
                let digests = (0..n)
                    .map(|_| r.array("bucket digest"))
                    .collect::<Result<_, _>>()?;
                Message::Buckets { scope, digests }
            }
            BUCKET_ITEMS => {
                let bucket = r.u16("bucket")?;
                if usize::from(bucket) >= BUCKETS {
                    return Err(WireError::Invalid {
                        what: "bucket",
                        reason: "out of range",
                    });
                }
                let after = r.opt_uid()?;
                let upto = r.opt_uid()?;
                let n = r.count(MAX_BUCKET_ITEMS, MIN_UID + 16, "bucket items")?;
                let mut items: Vec<(RecordUid, [u8; 16])> = Vec::with_capacity(n);
                for _ in 0..n {
                    let uid = r.uid()?;
                    if items.last().is_some_and(|(last, _)| *last >= uid) {
                        return Err(WireError::Invalid {
                            what: "bucket items",
                            reason: "uids must increase",
                        });
                    }
                    items.push((uid, r.array("item digest")?));
                }
                Message::BucketItems {
                    scope,
                    bucket,
                    after,
                    upto,
                    items,
                }
            }
            DOCS => {
                let docs = read_docs(&mut r)?;
                let n = r.count(MAX_RECORDS_PER_MESSAGE, MIN_UID, "wanted uids")?;
                let want = (0..n).map(|_| r.uid()).collect::<Result<_, _>>()?;
                Message::Docs { scope, docs, want }
            }
            SNAPSHOT_REQUEST => Message::SnapshotRequest {
                scope,
                after: r.opt_uid()?,
            },
            SNAPSHOT_CHUNK => {
                let marks = read_marks(&mut r)?;
                let records = read_docs(&mut r)?;
                if records.windows(2).any(|p| p[0].0 >= p[1].0) {
                    return Err(WireError::Invalid {
                        what: "snapshot",
                        reason: "uids must increase",
                    });
                }
                Message::SnapshotChunk {
                    scope,
                    marks,
                    records,
                    next: r.opt_uid()?,
                }
            }
            _ => Message::Denied { scope },
        };
        r.finish()?;
        Ok(message)
    }
}

fn write_marks(w: &mut Writer, marks: &Marks) {
    w.len(marks.len());
    for (origin, seq) in marks {
        w.key(origin);
        w.u64(*seq);
    }
}

fn read_marks(r: &mut Reader<'_>) -> Result<Marks, WireError> {
    let n = r.count(MAX_MARKS, 40, "marks")?;
    let mut marks: Marks = Vec::with_capacity(n);
    for _ in 0..n {
        let origin = r.key("mark origin")?;
        if marks.last().is_some_and(|(last, _)| *last >= origin) {
            return Err(WireError::Invalid {
                what: "marks",
                reason: "origins must increase",
            });
        }
        marks.push((origin, r.u64("mark seq")?));
    }
    Ok(marks)
}

fn write_docs(w: &mut Writer, docs: &[(RecordUid, Vec<u8>)]) {
    w.len(docs.len());
    for (uid, doc) in docs {
        w.uid(uid);
        w.bytes(doc);
    }
}

fn read_docs(r: &mut Reader<'_>) -> Result<Vec<(RecordUid, Vec<u8>)>, WireError> {
    let n = r.count(MAX_RECORDS_PER_MESSAGE, MIN_UID + 4, "documents")?;
    let mut docs = Vec::with_capacity(n);
    for _ in 0..n {
        let uid = r.uid()?;
        docs.push((uid, r.bytes(MAX_DOC_BYTES, "document")?.to_vec()));
    }
    Ok(docs)
}
