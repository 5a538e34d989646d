//! What the engine hands back: messages, storage effects, events, counters.

use labmesh_crypto::PublicKey;

use crate::doc::{Heads, RecordView};
use crate::error::{StoreError, WireError};
use crate::hlc::Hlc;
use crate::ids::{RecordUid, ScopeId};
use crate::wire::Message;

/// A message for one peer, encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient.
    pub to: PublicKey,
    /// The encoded [`Message`].
    pub bytes: Vec<u8>,
}

/// A storage write. Apply all effects of one [`Output`] in one transaction,
/// in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Store a record's document and update its row from `view`; replace the
    /// record's old `digest` in bucket `bucket` by the new one.
    PutDocument {
        /// The scope.
        scope: ScopeId,
        /// The record.
        uid: RecordUid,
        /// The whole document (an automerge save).
        doc: Vec<u8>,
        /// The materialized row.
        view: RecordView,
        /// The document's heads.
        heads: Heads,
        /// The record's anti-entropy digest ([`crate::digest::record_digest`]).
        digest: [u8; 16],
        /// Its bucket ([`crate::digest::bucket_of`]).
        bucket: u16,
    },
    /// Keep a signed batch to serve it to peers (ignore if already stored).
    /// Batches whose entries were refused are kept too (unless their origin
    /// never held a write right, [`crate::Access::held_write`]), so every
    /// replica can judge — and refuse — the same entries and their dependents.
    StoreBatch {
        /// The scope.
        scope: ScopeId,
        /// The origin.
        origin: PublicKey,
        /// First sequence number.
        first_seq: u64,
        /// Last sequence number.
        last_seq: u64,
        /// The signed batch, as relayed.
        bytes: Vec<u8>,
    },
    /// Raise the high-water mark of (scope, origin) to `seq`.
    SetMark {
        /// The scope.
        scope: ScopeId,
        /// The origin.
        origin: PublicKey,
        /// The new mark.
        seq: u64,
    },
    /// This node's own feed head: restore the engine from it after a restart.
    LocalHead {
        /// Last sequence number used.
        seq: u64,
        /// Last HLC used.
        hlc: Hlc,
    },
    /// Raise the clock of the stored feed head to at least `hlc`, keeping
    /// its sequence number (a remote clock was observed; an engine restored
    /// from the head, e.g. for the next local write, must read above it).
    RaiseClock {
        /// The clock observed.
        hlc: Hlc,
    },
    /// Remember these automerge changes of `scope` as refused
    /// ([`crate::Store::refused`]): a later entry whose missing dependencies
    /// include one is refused too instead of waiting for it forever.
    RefuseChanges {
        /// The scope.
        scope: ScopeId,
        /// The change hashes.
        changes: Vec<[u8; 32]>,
    },
}

/// Why a change was not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The origin held no write right on the scope at the change's time;
    /// or, for documents (snapshot, repair), the peer serving them may not
    /// write the scope, so it is not trusted with unsigned documents.
    NotAuthorized,
    /// The change depends on a change this replica refused; it can never
    /// apply, so it is refused too (the same everywhere).
    DependsOnRefused,
    /// The change was not made by the origin's actor, or does not parse.
    Invalid(String),
}

/// Something the driver should know about (log it, count it, show it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A change (or a document holding one) was refused and not applied.
    Rejected {
        /// Who made it (for a refused document: the offending author, or the
        /// peer that served it).
        origin: PublicKey,
        /// The scope.
        scope: ScopeId,
        /// The record, if known.
        uid: Option<RecordUid>,
        /// The refused change's hash, when it parses.
        change: Option<[u8; 32]>,
        /// Why.
        reason: Rejection,
    },
    /// A remote clock ahead of ours by more than the configured drift; its
    /// changes were still applied.
    ClockAhead {
        /// Whose clock.
        origin: PublicKey,
        /// How far ahead of our wall clock.
        ahead_ms: u64,
    },
    /// We refused to serve `peer` a scope it may not read.
    Denied {
        /// The peer.
        peer: PublicKey,
        /// The scope.
        scope: ScopeId,
    },
    /// A peer refused to serve us a scope.
    RefusedBy {
        /// The peer.
        peer: PublicKey,
        /// The scope.
        scope: ScopeId,
    },
    /// A message was refused whole; nothing in it was applied.
    BadMessage {
        /// The sender.
        peer: PublicKey,
        /// Why.
        error: WireError,
    },
    /// The store failed; the input was dropped (the protocol retries).
    StoreFailed {
        /// The error's text.
        error: String,
    },
    /// A snapshot bootstrap finished.
    Bootstrapped {
        /// The scope.
        scope: ScopeId,
        /// Records received.
        records: u64,
    },
    /// Drift repair changed records.
    Repaired {
        /// The scope.
        scope: ScopeId,
        /// Records changed.
        records: usize,
    },
    /// A record's document grew (through concurrent writes) past what one
    /// message carries, so this node cannot serve it in a snapshot or a
    /// repair; its changes still travel in the feed.
    Oversized {
        /// The scope.
        scope: ScopeId,
        /// The record.
        uid: RecordUid,
        /// Its document's size.
        bytes: usize,
    },
    /// Documents were rebuilt without changes that a revocation (or another
    /// change of access) made unauthorised ([`crate::Engine::revalidate`]).
    Rebuilt {
        /// The scope.
        scope: ScopeId,
        /// Records rebuilt.
        records: usize,
        /// Changes dropped from them.
        changes: usize,
    },
}

/// What one call produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Messages to send.
    pub messages: Vec<Outgoing>,
    /// Storage writes, to apply atomically before the next call.
    pub effects: Vec<Effect>,
    /// Things to report.
    pub events: Vec<Event>,
}

impl Output {
    pub(super) fn send(&mut self, to: PublicKey, message: &Message) {
        self.messages.push(Outgoing {
            to,
            bytes: message.encode(),
        });
    }

    pub(super) fn store_failed(error: StoreError) -> Output {
        Output {
            events: vec![Event::StoreFailed {
                error: error.to_string(),
            }],
            ..Output::default()
        }
    }

    pub(super) fn append(&mut self, mut other: Output) {
        self.messages.append(&mut other.messages);
        self.effects.append(&mut other.effects);
        self.events.append(&mut other.events);
    }
}

/// Counters for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Remote clocks flagged as too far ahead.
    pub clock_warnings: u64,
    /// Changes rejected (unauthorised or invalid).
    pub rejected: u64,
    /// Messages refused whole.
    pub bad_messages: u64,
}
