//! Error types, one enum per job. Messages say what happened and, where
//! there is one, what to do; none carries key material or document contents.

use labmesh_crypto::key::KeyId;

/// A scope id or record uid that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not a valid scope id.
    #[error("invalid scope id {text:?}: {reason}")]
    Scope {
        /// The offending text (clipped).
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a valid record uid.
    #[error("invalid record uid {text:?}: a uid is 1..=64 base62 characters")]
    Uid {
        /// The offending text (clipped).
        text: String,
    },
}

/// Problems with a record document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// automerge refused the bytes or the operation.
    #[error("automerge: {0}")]
    Automerge(String),
    /// automerge panicked on hostile bytes; the document was discarded.
    #[error("automerge panicked while reading untrusted bytes; they were discarded")]
    Panicked,
    /// A field name that cannot be used.
    #[error("invalid field name {name:?}: {reason}")]
    InvalidField {
        /// The name (clipped).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A text splice on a field that holds a scalar.
    #[error("field {field:?} is not a text field; set it with a text value first")]
    NotText {
        /// The field.
        field: String,
    },
    /// A change whose automerge actor is not the feed entry's origin.
    #[error("a change by actor {found} was shipped in the feed of another origin")]
    WrongActor {
        /// The actor found in the change (hex, clipped).
        found: String,
    },
    /// A change depends on changes this replica does not have yet.
    #[error("the change depends on {missing} change(s) not received yet")]
    MissingDeps {
        /// How many dependencies are missing.
        missing: usize,
    },
    /// A change reuses its actor's sequence number: its author rebuilt its
    /// replica without a refused change, which this replica still holds.
    #[error(
        "the change reuses a sequence number of its author (one replica dropped a refused change the other still holds); it applies once both agree"
    )]
    SeqReused,
}

impl DocError {
    pub(crate) fn am(e: impl std::fmt::Display) -> DocError {
        DocError::Automerge(e.to_string().chars().take(200).collect())
    }
}

/// Why bytes from a peer were refused. Nothing was applied or stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// No bytes at all.
    #[error("empty message")]
    Empty,
    /// More bytes than the protocol allows.
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A version this build does not speak.
    #[error("protocol version {0} is not supported (this build speaks 1); upgrade labmesh")]
    UnsupportedVersion(u8),
    /// A message kind this version does not define.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// The input ended inside a field.
    #[error("truncated input: it ends inside {what}")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// A count above its limit.
    #[error("{what}: {count} exceeds the limit of {max}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The count found.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A field whose value is not allowed.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A bad scope id or uid.
    #[error(transparent)]
    Id(#[from] IdError),
    /// Bytes left after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// A batch signature that does not verify (strictly) for its origin.
    #[error("batch signature by {origin} does not verify")]
    BadSignature {
        /// The claimed origin.
        origin: KeyId,
    },
}

/// A failure reported by the driver's store.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub Box<dyn std::error::Error + Send + Sync + 'static>);

impl StoreError {
    /// Wraps any error of the driver.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError(Box::new(e))
    }
}

/// Why a local write was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This node holds no write right on the scope.
    #[error("this node may not write scope {scope}; ask its admin for a write token")]
    NotAuthorized {
        /// The scope.
        scope: String,
    },
    /// The edit could not be applied to the document.
    #[error("record {uid}: {source}")]
    Doc {
        /// The record.
        uid: String,
        /// What failed.
        source: DocError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node's own feed is at the end of the sequence space.
    #[error("the change feed is exhausted (sequence number 2^64 reached)")]
    FeedExhausted,
    /// The write would make the record's document too large to travel in
    /// one snapshot or repair message.
    #[error(
        "record {uid} would be {bytes} bytes as a shared document; shared records are limited to {max} bytes: shorten its long text fields (such as the description) or keep the text in an artifact"
    )]
    RecordTooLarge {
        /// The record.
        uid: String,
        /// The document's size after the write.
        bytes: usize,
        /// The limit ([`crate::wire::limits::MAX_RECORD_BYTES`]).
        max: usize,
    },
    /// One write's change is too large for a feed entry.
    #[error(
        "the change to record {uid} is {bytes} bytes; one change is limited to {max} bytes: split the edit into several writes"
    )]
    ChangeTooLarge {
        /// The record.
        uid: String,
        /// The change's size.
        bytes: usize,
        /// The limit ([`crate::wire::limits::MAX_CHANGE_BYTES`]).
        max: usize,
    },
    /// The clock reading is beyond what a feed entry may carry (the wall
    /// clock is set past year 9999).
    #[error(
        "this node's clock reads {ms} ms since 1970, past the last clock a feed entry may carry ({max}); fix the system clock"
    )]
    ClockOutOfRange {
        /// The reading.
        ms: u64,
        /// The limit ([`crate::hlc::MAX_HLC_MS`]).
        max: u64,
    },
    /// Signing the batch failed for a reason the checks above did not
    /// catch (a bug: please report it).
    #[error("the signed batch could not be built: {0}")]
    Batch(WireError),
}
