//! Local writes: edit documents, append to the node's feed, sign, push.

use std::collections::BTreeMap;

use labmesh_crypto::PublicKey;

use super::overlay::{LoadError, Overlay};
use super::{Access, Effect, Engine, Output, Store};
use crate::doc::Edit;
use crate::error::WriteError;
use crate::feed::{Batch, Entry, SignedBatch};
use crate::hlc::Hlc;
use crate::hlc::MAX_HLC_MS;
use crate::ids::{RecordUid, ScopeId};
use crate::wire::Message;
use crate::wire::limits::{
    MAX_BATCH_ENTRIES, MAX_BATCHES_PER_MESSAGE, MAX_CHANGE_BYTES, MAX_RECORD_BYTES,
};

/// Bytes of changes per batch before a new one starts (well under the
/// batch limit, so a batch always fits a response).
const BATCH_CHANGE_BYTES: usize = 256 << 10;

/// One local write: edits to one record of a shared scope. A record without
/// a document yet is created by its first write.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalWrite {
    /// The scope the record is shared in.
    pub scope: ScopeId,
    /// The record.
    pub uid: RecordUid,
    /// The edits, committed as one change.
    pub edits: Vec<Edit>,
}

/// What a write produced, per record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The scope.
    pub scope: ScopeId,
    /// The record.
    pub uid: RecordUid,
    /// The feed sequence number of the change.
    pub seq: u64,
    /// The change's clock.
    pub hlc: Hlc,
    /// The automerge change hash (to ask a document whether it has it).
    pub change: [u8; 32],
}

/// The result of [`Engine::write`].
#[derive(Debug, Default)]
pub struct Written {
    /// Effects (documents, the batch, marks, the feed head) and pushes.
    pub output: Output,
    /// One receipt per write that changed something, in input order.
    pub receipts: Vec<Receipt>,
}

impl Engine {
    /// Applies local writes: one automerge change per record, appended to this
    /// node's feed in one signed batch per scope, pushed to the peers that
    /// may read the scope. All or nothing: on error there are no effects and
    /// the engine is as it was. A write that would leave a record's document
    /// larger than [`MAX_RECORD_BYTES`] (so it could not travel in a snapshot
    /// or repair) is refused with [`WriteError::RecordTooLarge`].
    ///
    /// Records that are not shared never come here, so they pay nothing.
    pub fn write(
        &mut self,
        now_ms: u64,
        writes: &[LocalWrite],
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Written, WriteError> {
        // Other processes of this node (a CLI next to the daemon) may have
        // written to the feed since this engine last looked: continue from
        // the stored head, which the caller reads under its write lock.
        let (stored_seq, stored_hlc) = store.local_head().map_err(WriteError::Store)?;
        if stored_seq > self.last_seq {
            self.last_seq = stored_seq;
        }
        self.clock.observe_local(stored_hlc);
        let me = self.me;
        let mut overlay = Overlay::default();
        let mut entries: BTreeMap<ScopeId, Vec<(Entry, [u8; 32])>> = BTreeMap::new();
        let mut seq = self.last_seq;
        let mut last_hlc = self.clock.last();
        let mut clock = self.clock.clone();
        for write in writes {
            let hlc = clock.now(now_ms);
            if hlc.ms > MAX_HLC_MS {
                return Err(WriteError::ClockOutOfRange {
                    ms: hlc.ms,
                    max: MAX_HLC_MS,
                });
            }
            if !access.may_write(&me, &write.scope, hlc) {
                return Err(WriteError::NotAuthorized {
                    scope: write.scope.to_string(),
                });
            }
            let doc = overlay
                .doc(store, &write.scope, &write.uid)
                .map_err(|e| match e {
                    LoadError::Store(e) => WriteError::Store(e),
                    LoadError::Doc(source) => WriteError::Doc {
                        uid: write.uid.to_string(),
                        source,
                    },
                })?;
            let change =
                doc.edit_hashed(&me, hlc, &write.edits)
                    .map_err(|source| WriteError::Doc {
                        uid: write.uid.to_string(),
                        source,
                    })?;
            let Some(crate::doc::LocalChange {
                bytes: change,
                hash,
            }) = change
            else {
                continue;
            };
            if change.len() > MAX_CHANGE_BYTES {
                return Err(WriteError::ChangeTooLarge {
                    uid: write.uid.to_string(),
                    bytes: change.len(),
                    max: MAX_CHANGE_BYTES,
                });
            }
            overlay.touch(&write.scope, &write.uid);
            last_hlc = hlc;
            entries.entry(write.scope.clone()).or_default().push((
                Entry {
                    hlc,
                    uid: write.uid.clone(),
                    change,
                },
                hash,
            ));
        }
        let mut written = Written::default();
        let mut pushes: Vec<(ScopeId, Vec<SignedBatch>)> = Vec::new();
        for (scope, list) in entries {
            let mut signed = Vec::new();
            for chunk in chunks(list) {
                let prev = overlay.mark(store, &scope, &me)?;
                let first_seq = seq.checked_add(1).ok_or(WriteError::FeedExhausted)?;
                let mut batch_entries = Vec::with_capacity(chunk.len());
                for (i, (entry, hash)) in chunk.into_iter().enumerate() {
                    written.receipts.push(Receipt {
                        scope: scope.clone(),
                        uid: entry.uid.clone(),
                        seq: first_seq + i as u64,
                        hlc: entry.hlc,
                        change: hash,
                    });
                    batch_entries.push(entry);
                }
                let batch = Batch {
                    origin: me,
                    scope: scope.clone(),
                    prev,
                    first_seq,
                    entries: batch_entries,
                };
                let last = batch.last_seq();
                let batch = SignedBatch::sign(&self.key, batch).map_err(WriteError::Batch)?;
                written.output.effects.push(Effect::StoreBatch {
                    scope: scope.clone(),
                    origin: me,
                    first_seq,
                    last_seq: last,
                    bytes: batch.to_bytes(),
                });
                overlay.set_mark(store, &scope, &me, last)?;
                seq = last;
                signed.push(batch);
            }
            pushes.push((scope, signed));
        }
        if seq == self.last_seq {
            return Ok(written);
        }
        let loaded = overlay.loaded_lens();
        overlay.into_effects(&mut written.output.effects);
        for effect in &written.output.effects {
            if let Effect::PutDocument {
                scope, uid, doc, ..
            } = effect
            {
                let before = loaded.get(&(scope.clone(), uid.clone())).copied();
                if doc.len() > MAX_RECORD_BYTES && before.is_none_or(|b| doc.len() > b) {
                    return Err(WriteError::RecordTooLarge {
                        uid: uid.to_string(),
                        bytes: doc.len(),
                        max: MAX_RECORD_BYTES,
                    });
                }
            }
        }
        written
            .output
            .effects
            .push(Effect::LocalHead { seq, hlc: last_hlc });
        self.clock = clock;
        self.last_seq = seq;
        for (scope, batches) in pushes {
            self.push(&scope, batches, None, access, &mut written.output);
        }
        Ok(written)
    }

    /// Eager push of new batches to every peer that may read the scope.
    pub(super) fn push(
        &self,
        scope: &ScopeId,
        batches: Vec<SignedBatch>,
        except: Option<&PublicKey>,
        access: &dyn Access,
        out: &mut Output,
    ) {
        let readers = self.readers(scope, except, access);
        if readers.is_empty() {
            return;
        }
        // Messages within the response budget (a large batch alone).
        let mut groups: Vec<Vec<SignedBatch>> = Vec::new();
        let mut used = 0;
        for batch in batches {
            let len = batch.encoded_len();
            match groups.last_mut() {
                Some(g)
                    if g.len() < MAX_BATCHES_PER_MESSAGE
                        && used + len <= self.config.max_response_bytes =>
                {
                    used += len;
                    g.push(batch);
                }
                _ => {
                    used = len;
                    groups.push(vec![batch]);
                }
            }
        }
        for group in groups {
            let message = Message::Batches {
                scope: scope.clone(),
                more: false,
                batches: group,
            };
            let bytes = message.encode();
            for peer in &readers {
                out.messages.push(super::Outgoing {
                    to: *peer,
                    bytes: bytes.clone(),
                });
            }
        }
    }
}

/// Splits a scope's entries into batches by count and bytes.
fn chunks(list: Vec<(Entry, [u8; 32])>) -> Vec<Vec<(Entry, [u8; 32])>> {
    let mut out: Vec<Vec<(Entry, [u8; 32])>> = vec![Vec::new()];
    let mut bytes = 0;
    for item in list {
        let size = item.0.change.len() + 64;
        let current = out.last().map_or(0, Vec::len);
        if current > 0 && (current == MAX_BATCH_ENTRIES || bytes + size > BATCH_CHANGE_BYTES) {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(last) = out.last_mut() {
            last.push(item);
        }
    }
    out.retain(|c| !c.is_empty());
    out
}
