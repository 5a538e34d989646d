//! The engine's scratch space for one call: documents and marks as the
//! call's effects will leave them, so a second change to the same record, or
//! a second batch of the same origin, in the same call builds on the first.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use labmesh_crypto::PublicKey;

use super::traits::Store;
use crate::Effect;
use crate::digest::{bucket_of, record_digest};
use crate::doc::RecordDoc;
use crate::error::{DocError, StoreError};
use crate::ids::{RecordUid, ScopeId};
use crate::wire::Marks;

type Key = (ScopeId, RecordUid);

/// A document loaded in this call, and whether the call changed it.
struct Slot {
    doc: RecordDoc,
    /// Bytes of the stored document it was loaded from (0: new).
    loaded_len: usize,
    dirty: bool,
    /// Bytes to store as-is when the document came whole from a peer and
    /// nothing else changed it (saves a re-encode).
    verbatim: Option<Vec<u8>>,
}

/// Why a document could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    Store(StoreError),
    /// The stored bytes do not load: the store is corrupt.
    Doc(DocError),
}

#[derive(Default)]
pub(crate) struct Overlay {
    docs: BTreeMap<Key, Slot>,
    marks: BTreeMap<ScopeId, BTreeMap<PublicKey, u64>>,
    marks_dirty: BTreeMap<(ScopeId, PublicKey), u64>,
    /// Changes refused in this call, per scope.
    refused: BTreeMap<ScopeId, BTreeSet<[u8; 32]>>,
}

impl Overlay {
    /// The document of a record, loading it (or starting an empty one).
    pub(crate) fn doc(
        &mut self,
        store: &dyn Store,
        scope: &ScopeId,
        uid: &RecordUid,
    ) -> Result<&mut RecordDoc, LoadError> {
        match self.docs.entry((scope.clone(), uid.clone())) {
            Entry::Occupied(o) => Ok(&mut o.into_mut().doc),
            Entry::Vacant(v) => {
                let (doc, loaded_len) =
                    match store.document(scope, uid).map_err(LoadError::Store)? {
                        Some(bytes) => (
                            RecordDoc::load(&bytes).map_err(LoadError::Doc)?,
                            bytes.len(),
                        ),
                        None => (RecordDoc::new(), 0),
                    };
                Ok(&mut v
                    .insert(Slot {
                        doc,
                        loaded_len,
                        dirty: false,
                        verbatim: None,
                    })
                    .doc)
            }
        }
    }

    /// Whether the record has a document here (in this call or the store).
    pub(crate) fn exists(
        &self,
        store: &dyn Store,
        scope: &ScopeId,
        uid: &RecordUid,
    ) -> Result<bool, StoreError> {
        if self.docs.contains_key(&(scope.clone(), uid.clone())) {
            return Ok(true);
        }
        Ok(store.document(scope, uid)?.is_some())
    }

    /// Marks the record changed.
    pub(crate) fn touch(&mut self, scope: &ScopeId, uid: &RecordUid) {
        if let Some(slot) = self.docs.get_mut(&(scope.clone(), uid.clone())) {
            slot.dirty = true;
            slot.verbatim = None;
        }
    }

    /// Installs a document that arrived whole, to be stored byte for byte.
    pub(crate) fn put_verbatim(
        &mut self,
        scope: &ScopeId,
        uid: &RecordUid,
        doc: RecordDoc,
        bytes: Vec<u8>,
    ) {
        self.docs.insert(
            (scope.clone(), uid.clone()),
            Slot {
                doc,
                loaded_len: 0,
                dirty: true,
                verbatim: Some(bytes),
            },
        );
    }

    /// Remembers a refused change (stored with the call's effects).
    pub(crate) fn refuse(&mut self, scope: &ScopeId, change: [u8; 32]) {
        self.refused
            .entry(scope.clone())
            .or_default()
            .insert(change);
    }

    /// Whether the change was refused, in this call or before.
    pub(crate) fn is_refused(
        &self,
        store: &dyn Store,
        scope: &ScopeId,
        change: &[u8; 32],
    ) -> Result<bool, StoreError> {
        if self.refused.get(scope).is_some_and(|s| s.contains(change)) {
            return Ok(true);
        }
        store.refused(scope, change)
    }

    /// Replaces a record's document by a rebuilt one, to be stored.
    pub(crate) fn replace(&mut self, scope: &ScopeId, uid: &RecordUid, doc: RecordDoc) {
        self.docs.insert(
            (scope.clone(), uid.clone()),
            Slot {
                doc,
                loaded_len: 0,
                dirty: true,
                verbatim: None,
            },
        );
    }

    /// Stored size of each changed document before this call.
    pub(crate) fn loaded_lens(&self) -> BTreeMap<Key, usize> {
        self.docs
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, s)| (k.clone(), s.loaded_len))
            .collect()
    }

    /// Forgets a document (after automerge failed on it mid-change).
    pub(crate) fn discard(&mut self, scope: &ScopeId, uid: &RecordUid) {
        self.docs.remove(&(scope.clone(), uid.clone()));
    }

    /// A scope's marks as this call will leave them.
    pub(crate) fn marks(
        &mut self,
        store: &dyn Store,
        scope: &ScopeId,
    ) -> Result<&mut BTreeMap<PublicKey, u64>, StoreError> {
        if !self.marks.contains_key(scope) {
            let marks: BTreeMap<PublicKey, u64> = store.marks(scope)?.into_iter().collect();
            self.marks.insert(scope.clone(), marks);
        }
        Ok(self.marks.entry(scope.clone()).or_default())
    }

    pub(crate) fn mark(
        &mut self,
        store: &dyn Store,
        scope: &ScopeId,
        origin: &PublicKey,
    ) -> Result<u64, StoreError> {
        Ok(self.marks(store, scope)?.get(origin).copied().unwrap_or(0))
    }

    /// Advances a mark (never lowers it).
    pub(crate) fn set_mark(
        &mut self,
        store: &dyn Store,
        scope: &ScopeId,
        origin: &PublicKey,
        seq: u64,
    ) -> Result<(), StoreError> {
        let slot = self.marks(store, scope)?.entry(*origin).or_insert(0);
        if seq > *slot {
            *slot = seq;
            self.marks_dirty.insert((scope.clone(), *origin), seq);
        }
        Ok(())
    }

    /// The scope's marks in wire form.
    pub(crate) fn marks_list(
        &mut self,
        store: &dyn Store,
        scope: &ScopeId,
    ) -> Result<Marks, StoreError> {
        Ok(self
            .marks(store, scope)?
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect())
    }

    /// Marks advanced in this call, per scope.
    pub(crate) fn advanced(&self) -> BTreeMap<ScopeId, Marks> {
        let mut out: BTreeMap<ScopeId, Marks> = BTreeMap::new();
        for ((scope, origin), seq) in &self.marks_dirty {
            out.entry(scope.clone()).or_default().push((*origin, *seq));
        }
        out
    }

    /// The effects of this call's document and mark changes, in a
    /// deterministic order: documents by (scope, uid), then refused
    /// changes, then marks.
    pub(crate) fn into_effects(self, effects: &mut Vec<Effect>) {
        for ((scope, uid), mut slot) in self.docs {
            if !slot.dirty {
                continue;
            }
            let heads = slot.doc.heads();
            let doc = match slot.verbatim.take() {
                Some(bytes) => bytes,
                None => slot.doc.save(),
            };
            effects.push(Effect::PutDocument {
                digest: record_digest(&uid, &heads),
                bucket: bucket_of(&uid),
                view: slot.doc.view(),
                heads,
                scope,
                uid,
                doc,
            });
        }
        for (scope, changes) in self.refused {
            effects.push(Effect::RefuseChanges {
                scope,
                changes: changes.into_iter().collect(),
            });
        }
        for ((scope, origin), seq) in self.marks_dirty {
            effects.push(Effect::SetMark { scope, origin, seq });
        }
    }
}
