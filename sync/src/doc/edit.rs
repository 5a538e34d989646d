//! Applying one [`Edit`] inside an automerge transaction.

use automerge::transaction::{Transactable, Transaction};
use automerge::{ObjType, ROOT, ReadDoc, Value};

use super::value::{Edit, FieldValue};
use super::{DELETED, DocError};

/// The field an edit names, if any (checked against the reserved names).
pub(super) fn field_name(edit: &Edit) -> Option<&str> {
    match edit {
        Edit::Set(f, _)
        | Edit::Delete(f)
        | Edit::Splice { field: f, .. }
        | Edit::UpdateText { field: f, .. } => Some(f),
        Edit::Tombstone | Edit::Restore => None,
    }
}

pub(super) fn apply_edit(tx: &mut Transaction<'_>, edit: &Edit) -> Result<(), DocError> {
    match edit {
        Edit::Set(field, FieldValue::Text(text)) => {
            let obj = tx
                .put_object(ROOT, field.as_str(), ObjType::Text)
                .map_err(DocError::am)?;
            tx.splice_text(&obj, 0, 0, text).map_err(DocError::am)?;
        }
        Edit::Set(field, value) => {
            let scalar = value.to_scalar().unwrap_or(automerge::ScalarValue::Null);
            tx.put(ROOT, field.as_str(), scalar).map_err(DocError::am)?;
        }
        Edit::Delete(field) => {
            if tx
                .get(ROOT, field.as_str())
                .map_err(DocError::am)?
                .is_some()
            {
                tx.delete(ROOT, field.as_str()).map_err(DocError::am)?;
            }
        }
        Edit::Splice {
            field,
            pos,
            delete,
            insert,
        } => {
            let obj = match tx.get(ROOT, field.as_str()).map_err(DocError::am)? {
                Some((Value::Object(ObjType::Text), id)) => id,
                None => tx
                    .put_object(ROOT, field.as_str(), ObjType::Text)
                    .map_err(DocError::am)?,
                Some(_) => {
                    return Err(DocError::NotText {
                        field: field.clone(),
                    });
                }
            };
            let len = tx.length(&obj);
            let pos = (*pos).min(len);
            let delete = (*delete).min(len - pos);
            let delete = isize::try_from(delete).unwrap_or(isize::MAX);
            tx.splice_text(&obj, pos, delete, insert)
                .map_err(DocError::am)?;
        }
        Edit::UpdateText { field, text } => update_text(tx, field, text)?,
        Edit::Tombstone => tx.put(ROOT, DELETED, true).map_err(DocError::am)?,
        Edit::Restore => tx.put(ROOT, DELETED, false).map_err(DocError::am)?,
    }
    Ok(())
}

/// Brings a text field to `text` with one splice over the part that
/// differs (the common prefix and suffix stay), so concurrent updates of
/// different parts interleave. A field that is absent, or holds a scalar
/// or several concurrent values, becomes a new Text.
fn update_text(tx: &mut Transaction<'_>, field: &str, text: &str) -> Result<(), DocError> {
    let all = tx.get_all(ROOT, field).map_err(DocError::am)?;
    let current = match all.as_slice() {
        [(Value::Object(ObjType::Text), id)] => Some(id.clone()),
        _ => None,
    };
    let Some(obj) = current else {
        let obj = tx
            .put_object(ROOT, field, ObjType::Text)
            .map_err(DocError::am)?;
        return tx.splice_text(&obj, 0, 0, text).map_err(DocError::am);
    };
    let old: Vec<char> = tx.text(&obj).map_err(DocError::am)?.chars().collect();
    let new: Vec<char> = text.chars().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let delete = old.len() - prefix - suffix;
    let insert: String = new[prefix..new.len() - suffix].iter().collect();
    if delete == 0 && insert.is_empty() {
        return Ok(());
    }
    let delete = isize::try_from(delete).unwrap_or(isize::MAX);
    tx.splice_text(&obj, prefix, delete, &insert)
        .map_err(DocError::am)
}
