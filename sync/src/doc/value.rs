//! Field values and edits: what a record document holds and how it changes.

use automerge::ScalarValue;

use crate::error::DocError;

/// Longest field name accepted.
pub const MAX_FIELD_NAME: usize = 64;

/// The value of one field of a record.
///
/// `Text` is long free text (a description, notes) kept as an automerge
/// Text object: concurrent splices interleave instead of one overwriting the
/// other. Everything else is a scalar that is replaced whole.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    F64(f64),
    /// A short string, replaced whole.
    Str(String),
    /// Bytes (hashes, small blobs).
    Bytes(Vec<u8>),
    /// Collaborative text.
    Text(String),
}

impl FieldValue {
    pub(crate) fn to_scalar(&self) -> Option<ScalarValue> {
        Some(match self {
            FieldValue::Null => ScalarValue::Null,
            FieldValue::Bool(b) => ScalarValue::Boolean(*b),
            FieldValue::Int(i) => ScalarValue::Int(*i),
            FieldValue::F64(f) => ScalarValue::F64(*f),
            FieldValue::Str(s) => ScalarValue::Str(s.as_str().into()),
            FieldValue::Bytes(b) => ScalarValue::Bytes(b.clone()),
            FieldValue::Text(_) => return None,
        })
    }

    /// Reads any automerge scalar. Documents written by labmesh only hold
    /// the types above; other types (from a hostile or future peer) are
    /// mapped to the nearest one rather than refused, so reading never fails.
    pub(crate) fn from_scalar(value: &ScalarValue) -> FieldValue {
        match value {
            ScalarValue::Null => FieldValue::Null,
            ScalarValue::Boolean(b) => FieldValue::Bool(*b),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => FieldValue::Int(*i),
            ScalarValue::Uint(u) => {
                i64::try_from(*u).map_or(FieldValue::F64(*u as f64), FieldValue::Int)
            }
            ScalarValue::Counter(c) => FieldValue::Int(i64::from(c)),
            ScalarValue::F64(f) => FieldValue::F64(*f),
            ScalarValue::Str(s) => FieldValue::Str(s.to_string()),
            ScalarValue::Bytes(b) => FieldValue::Bytes(b.clone()),
            ScalarValue::Unknown { .. } => FieldValue::Null,
        }
    }

    /// A total order used to list conflicting values identically everywhere.
    pub(crate) fn sort_key(&self) -> (u8, Vec<u8>) {
        match self {
            FieldValue::Null => (0, vec![]),
            FieldValue::Bool(b) => (1, vec![u8::from(*b)]),
            FieldValue::Int(i) => (2, (*i as u64 ^ (1 << 63)).to_be_bytes().to_vec()),
            FieldValue::F64(f) => (3, f.to_bits().to_be_bytes().to_vec()),
            FieldValue::Str(s) => (4, s.as_bytes().to_vec()),
            FieldValue::Bytes(b) => (5, b.clone()),
            FieldValue::Text(s) => (6, s.as_bytes().to_vec()),
        }
    }
}

/// One edit of a record; a local write is a list of them, committed as one
/// automerge change.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Sets a field. The new value supersedes every value of the field this
    /// replica can see — which is also how a conflict is resolved.
    Set(String, FieldValue),
    /// Removes a field (a later `Set` brings it back).
    Delete(String),
    /// Splices a text field at a character position: deletes `delete`
    /// characters, inserts `insert`. Positions past the end are clamped, so
    /// an edit made against an older text still applies.
    Splice {
        /// The text field (created empty if absent).
        field: String,
        /// Character position.
        pos: usize,
        /// Characters to delete.
        delete: usize,
        /// Text to insert.
        insert: String,
    },
    /// Brings a text field to `text` by splicing only the part that differs
    /// from the document's current text (one splice between the common
    /// prefix and suffix), so concurrent updates of different parts of a
    /// long text interleave instead of conflicting. A field that is absent,
    /// holds a scalar or holds concurrent values becomes a new Text.
    UpdateText {
        /// The text field.
        field: String,
        /// Its new content.
        text: String,
    },
    /// Marks the record deleted (a tombstone: the document stays).
    Tombstone,
    /// Clears the tombstone.
    Restore,
}

impl Edit {
    /// Resolves a conflict on `field` by writing `value`, which supersedes
    /// all concurrently written values (they were all visible to this write).
    /// A conflict on the tombstone is resolved with `resolve("$deleted",
    /// FieldValue::Bool(deleted))`, which is [`Edit::resolve_deleted`].
    pub fn resolve(field: impl Into<String>, value: FieldValue) -> Edit {
        let field = field.into();
        match value {
            FieldValue::Bool(deleted) if field == super::DELETED => Edit::resolve_deleted(deleted),
            value => Edit::Set(field, value),
        }
    }

    /// Resolves a conflict on `$deleted` (a concurrent delete and restore):
    /// a tombstone or a restore supersedes every value of the tombstone this
    /// replica can see.
    pub fn resolve_deleted(deleted: bool) -> Edit {
        if deleted {
            Edit::Tombstone
        } else {
            Edit::Restore
        }
    }

    /// Shorthand for [`Edit::UpdateText`].
    pub fn update_text(field: impl Into<String>, text: impl Into<String>) -> Edit {
        Edit::UpdateText {
            field: field.into(),
            text: text.into(),
        }
    }

    /// Shorthand for [`Edit::Set`].
    pub fn set(field: impl Into<String>, value: FieldValue) -> Edit {
        Edit::Set(field.into(), value)
    }
}

/// Checks a user field name: 1..=64 bytes, not starting with `$` (reserved
/// for the document's own bookkeeping, e.g. the tombstone).
pub fn check_field_name(name: &str) -> Result<(), DocError> {
    let bad = |reason| DocError::InvalidField {
        name: name.chars().take(80).collect(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_FIELD_NAME {
        return Err(bad("a field name is 1..=64 bytes"));
    }
    if name.starts_with('$') {
        return Err(bad("names starting with `$` are reserved"));
    }
    Ok(())
}
