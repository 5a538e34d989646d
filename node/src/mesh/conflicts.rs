//! Concurrent values: listing conflicted fields and resolving them.

use labmesh_sync::{Edit, FieldValue, LocalWrite, RecordDoc, RecordUid};

use super::{ConflictInfo, field_text, parse_scope};
use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;

impl Instance {
    /// Fields of shared records that hold concurrently written values.
    pub fn conflicts(&self) -> Result<Vec<ConflictInfo>> {
        let rows: Vec<(String, String, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT scope, uid, doc FROM sync_document WHERE conflicted IS NOT NULL ORDER BY scope, uid")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
            .db(&self.db_path())?;
        let mut out = Vec::new();
        for (scope, uid, doc) in rows {
            let Ok(doc) = RecordDoc::load(&doc) else {
                continue;
            };
            for c in doc.conflicts() {
                out.push(ConflictInfo {
                    scope: scope.clone(),
                    uid: uid.clone(),
                    field: c.field.clone(),
                    values: c.values.iter().map(field_text).collect(),
                    winner: field_text(&c.winner),
                });
            }
        }
        Ok(out)
    }

    /// Resolves a conflict by writing `value` to `field` of record `uid` in
    /// every scope where it is conflicted; the value supersedes all others.
    pub fn resolve(&self, uid: &str, field: &str, value: &str) -> Result<usize> {
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let rows: Vec<(String, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT scope, doc FROM sync_document WHERE uid = ?1 AND conflicted IS NOT NULL",
            )
            .and_then(|mut s| {
                s.query_map([uid], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .db(&db)?;
        let record = RecordUid::new(uid).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let mut writes = Vec::new();
        for (scope, doc) in rows {
            let Ok(doc) = RecordDoc::load(&doc) else {
                continue;
            };
            let Some(conflict) = doc.conflicts().into_iter().find(|c| c.field == field) else {
                continue;
            };
            let edit = if field == "$deleted" {
                // A delete and a restore made concurrently.
                let deleted = match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "deleted" | "trashed" | "yes" => true,
                    "false" | "restored" | "live" | "no" => false,
                    _ => {
                        return Err(Error::InvalidArgument(format!(
                            "{value:?} for $deleted: say true (keep it deleted) or false (keep it)"
                        )));
                    }
                };
                Edit::resolve_deleted(deleted)
            } else {
                Edit::resolve(field, typed_like(&conflict.winner, field, value)?)
            };
            writes.push(LocalWrite {
                scope: parse_scope(&scope)?,
                uid: record.clone(),
                edits: vec![edit],
            });
        }
        if writes.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "record {uid} has no conflict on {field:?}; `labmesh conflicts` lists them"
            )));
        }
        let n = writes.len();
        self.write_shared(&tx, writes)?;
        tx.commit().db(&db)?;
        Ok(n)
    }
}

/// `value` with the type the field holds: text stays text, numbers stay
/// numbers.
fn typed_like(winner: &FieldValue, field: &str, value: &str) -> Result<FieldValue> {
    match winner {
        FieldValue::Int(_) => value
            .parse()
            .map(FieldValue::Int)
            .map_err(|_| format!("{field} holds integers")),
        FieldValue::F64(_) => value
            .parse()
            .map(FieldValue::F64)
            .map_err(|_| format!("{field} holds numbers")),
        FieldValue::Bool(_) => value
            .parse()
            .map(FieldValue::Bool)
            .map_err(|_| format!("{field} holds true/false")),
        FieldValue::Text(_) => Ok(FieldValue::Text(value.into())),
        _ => Ok(FieldValue::Str(value.into())),
    }
    .map_err(Error::InvalidArgument)
}
