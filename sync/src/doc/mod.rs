//! Record documents: one automerge document per shared record.
//!
//! A record's fields are the root map's entries; long text is an automerge
//! Text object. Two reserved entries keep bookkeeping: `$created` (the HLC of
//! the record's first write, 20 bytes) and `$deleted` (the tombstone).
//!
//! Every change is made by an actor that *is* the origin node's public key
//! (32 bytes). So a merge is the same on every replica (automerge's default
//! winner compares actor ids), and a receiver can check that a change shipped
//! in origin O's feed was made by O ([`RecordDoc::apply_change`]).
//!
//! automerge is 0.6.1 on purpose (see the crate docs for the measurements);
//! nothing outside this module names an automerge type, so the version can
//! change behind this API.

mod edit;
mod history;
mod value;
mod view;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, Automerge, ChangeHash, LoadOptions, ObjType, ROOT, ReadDoc, TextEncoding, Value,
};
use labmesh_crypto::PublicKey;

use edit::{apply_edit, field_name};
pub use history::{Authorship, InvalidChange};
pub use value::{Edit, FieldValue, MAX_FIELD_NAME, check_field_name};
pub use view::{Conflict, RecordView};

use crate::error::DocError;
use crate::hlc::Hlc;

/// Reserved field: the tombstone.
pub const DELETED: &str = "$deleted";
/// Reserved field: the HLC of the record's first write.
pub const CREATED: &str = "$created";

/// The heads of a document: the hashes of the changes nothing else depends
/// on, sorted. Equal heads mean equal documents.
pub type Heads = Vec<[u8; 32]>;

/// A change just made locally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalChange {
    /// The change's bytes, for the feed.
    pub bytes: Vec<u8>,
    /// Its hash (ask a replica's document whether it has it).
    pub hash: [u8; 32],
}

/// One shared record's CRDT document.
#[derive(Debug, Clone)]
pub struct RecordDoc {
    doc: Automerge,
    saved_heads: Vec<ChangeHash>,
}

impl Default for RecordDoc {
    fn default() -> Self {
        RecordDoc::new()
    }
}

fn actor_of(key: &PublicKey) -> ActorId {
    ActorId::from(key.as_bytes().as_slice())
}

/// Runs automerge on untrusted bytes: a panic becomes an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, DocError>) -> Result<T, DocError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(DocError::Panicked))
}

impl RecordDoc {
    /// An empty document (a record about to arrive from a peer).
    pub fn new() -> RecordDoc {
        RecordDoc {
            doc: Automerge::new_with_encoding(TextEncoding::UnicodeCodePoint),
            saved_heads: Vec::new(),
        }
    }

    /// A new record with `fields`, written by `author` at `at`. Returns the
    /// document and the change bytes for the feed.
    pub fn create(
        author: &PublicKey,
        at: Hlc,
        fields: impl IntoIterator<Item = (String, FieldValue)>,
    ) -> Result<(RecordDoc, Vec<u8>), DocError> {
        let mut doc = RecordDoc::new();
        let mut edits: Vec<Edit> = fields.into_iter().map(|(k, v)| Edit::Set(k, v)).collect();
        edits.sort_by(|a, b| field_of(a).cmp(field_of(b)));
        let LocalChange { bytes: change, .. } = doc
            .commit(author, at, &edits, true)?
            .ok_or(DocError::Automerge("empty change".into()))?;
        Ok((doc, change))
    }

    /// Applies `edits` as one change by `author` at `at`; returns the change
    /// bytes, or `None` when there was nothing to do.
    pub fn edit(
        &mut self,
        author: &PublicKey,
        at: Hlc,
        edits: &[Edit],
    ) -> Result<Option<Vec<u8>>, DocError> {
        Ok(self.edit_hashed(author, at, edits)?.map(|c| c.bytes))
    }

    /// [`RecordDoc::edit`], also returning the change's hash.
    pub fn edit_hashed(
        &mut self,
        author: &PublicKey,
        at: Hlc,
        edits: &[Edit],
    ) -> Result<Option<LocalChange>, DocError> {
        let first = self.doc.get_heads().is_empty();
        self.commit(author, at, edits, first)
    }

    fn commit(
        &mut self,
        author: &PublicKey,
        at: Hlc,
        edits: &[Edit],
        stamp_created: bool,
    ) -> Result<Option<LocalChange>, DocError> {
        for edit in edits {
            if let Some(name) = field_name(edit) {
                check_field_name(name)?;
            }
        }
        if edits.is_empty() && !stamp_created {
            return Ok(None);
        }
        self.doc.set_actor(actor_of(author));
        let mut tx = self.doc.transaction();
        let result = (|| {
            if stamp_created {
                tx.put(ROOT, CREATED, at.to_bytes().to_vec())
                    .map_err(DocError::am)?;
            }
            for edit in edits {
                apply_edit(&mut tx, edit)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tx.rollback();
            return Err(e);
        }
        let time = i64::try_from(at.ms).unwrap_or(i64::MAX);
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(time));
        let Some(hash) = hash else { return Ok(None) };
        Ok(self.doc.get_last_local_change().map(|c| LocalChange {
            bytes: c.raw_bytes().to_vec(),
            hash: hash.0,
        }))
    }

    /// Loads saved bytes (a whole document, or a document followed by
    /// incremental saves). Panics inside automerge on hostile bytes are
    /// caught and reported. Bytes that carry changes whose dependencies are
    /// missing are refused: automerge would keep those changes aside and
    /// apply them later, unchecked, once the dependencies arrived.
    pub fn load(bytes: &[u8]) -> Result<RecordDoc, DocError> {
        guarded(|| {
            let opts = LoadOptions::new().text_encoding(TextEncoding::UnicodeCodePoint);
            let doc = Automerge::load_with_options(bytes, opts).map_err(DocError::am)?;
            let missing = doc.get_missing_deps(&[]).len();
            if missing > 0 {
                return Err(DocError::MissingDeps { missing });
            }
            let saved_heads = doc.get_heads();
            Ok(RecordDoc { doc, saved_heads })
        })
    }

    /// The whole document, compacted (automerge's columnar, compressed form).
    pub fn save(&mut self) -> Vec<u8> {
        self.saved_heads = self.doc.get_heads();
        self.doc.save()
    }

    /// The changes since the last `save`/`save_incremental`/`load`; appending
    /// them to the saved bytes gives a loadable document.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        let bytes = self.doc.save_after(&self.saved_heads);
        self.saved_heads = self.doc.get_heads();
        bytes
    }

    /// The heads, sorted.
    pub fn heads(&self) -> Heads {
        let mut heads: Heads = self.doc.get_heads().iter().map(|h| h.0).collect();
        heads.sort_unstable();
        heads
    }

    /// One field's current value (the default winner if conflicted).
    pub fn get(&self, field: &str) -> Option<FieldValue> {
        let (value, id) = self.doc.get(ROOT, field).ok()??;
        self.read_value(&value, &id)
    }

    fn read_value(&self, value: &Value<'_>, id: &automerge::ObjId) -> Option<FieldValue> {
        match value {
            Value::Scalar(s) => Some(FieldValue::from_scalar(s)),
            Value::Object(ObjType::Text) => self.doc.text(id).ok().map(FieldValue::Text),
            Value::Object(_) => None,
        }
    }

    /// Whether the record carries a tombstone.
    pub fn is_deleted(&self) -> bool {
        self.get(DELETED) == Some(FieldValue::Bool(true))
    }

    /// The HLC of the record's first write.
    pub fn created(&self) -> Option<Hlc> {
        match self.get(CREATED)? {
            FieldValue::Bytes(b) => Hlc::from_bytes(&b),
            _ => None,
        }
    }

    /// The user fields (reserved `$` fields excluded).
    pub fn fields(&self) -> BTreeMap<String, FieldValue> {
        self.doc
            .keys(ROOT)
            .filter(|k| !k.starts_with('$'))
            .filter_map(|k| self.get(&k).map(|v| (k, v)))
            .collect()
    }

    /// Every field with concurrently written values, in field order.
    pub fn conflicts(&self) -> Vec<Conflict> {
        let mut out = Vec::new();
        for field in self.doc.keys(ROOT) {
            let Ok(all) = self.doc.get_all(ROOT, field.as_str()) else {
                continue;
            };
            if all.len() < 2 {
                continue;
            }
            let mut values: Vec<FieldValue> = all
                .iter()
                .filter_map(|(v, id)| self.read_value(v, id))
                .collect();
            values.sort_by_key(FieldValue::sort_key);
            let winner = self.get(&field).unwrap_or(FieldValue::Null);
            out.push(Conflict {
                field,
                winner,
                values,
            });
        }
        out
    }

    /// The materialized row.
    pub fn view(&self) -> RecordView {
        // One pass over the root map: each entry's winning value and
        // whether it holds concurrent values (a view is built for every
        // document a sync applies, so this is on the hot path).
        let mut view = RecordView {
            fields: BTreeMap::new(),
            deleted: false,
            created: None,
            conflicted: Vec::new(),
        };
        for key in self.doc.keys(ROOT) {
            // `get` is the last of `get_all` (the greatest op id): one seek
            // gives both the winner and whether there are others.
            let Ok(mut all) = self.doc.get_all(ROOT, key.as_str()) else {
                continue;
            };
            if all.len() > 1 {
                view.conflicted.push(key.clone());
            }
            let value = all.pop().and_then(|(v, id)| self.read_value(&v, &id));
            match key.as_str() {
                DELETED => view.deleted = value == Some(FieldValue::Bool(true)),
                CREATED => {
                    if let Some(FieldValue::Bytes(b)) = value {
                        view.created = Hlc::from_bytes(&b);
                    }
                }
                k if k.starts_with('$') => {}
                _ => {
                    if let Some(v) = value {
                        view.fields.insert(key, v);
                    }
                }
            }
        }
        view
    }
}

fn field_of(edit: &Edit) -> &str {
    field_name(edit).unwrap_or("")
}

#[cfg(test)]
mod tests;
