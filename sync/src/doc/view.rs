//! What a document looks like to the node: the materialized row and its
//! conflicts.

use std::collections::BTreeMap;

use super::value::FieldValue;
use crate::hlc::Hlc;

/// The materialized state of a record: what the node writes into its SQLite
/// row, in the same transaction as the document.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RecordView {
    /// Each field's current value (for a conflicted field, the default
    /// winner). Reserved `$` fields are not included.
    pub fields: BTreeMap<String, FieldValue>,
    /// Whether the record carries a tombstone.
    pub deleted: bool,
    /// When the record was created (its first write), if known: the key of
    /// the version-family and duplicate rules ([`crate::rules`]).
    pub created: Option<Hlc>,
    /// Fields (including `$deleted`) that hold concurrently written values.
    pub conflicted: Vec<String>,
}

/// A field written concurrently on several replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// The field.
    pub field: String,
    /// The value every replica shows until someone resolves the conflict:
    /// automerge's default, the value of the operation with the greatest
    /// (counter, actor) id — the same on every replica.
    pub winner: FieldValue,
    /// Every concurrently written value, the winner included, in a canonical
    /// order (by type, then bytes).
    pub values: Vec<FieldValue>,
}
