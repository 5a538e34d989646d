//! Annotating artifacts with labels and typed feature values.
//!
//! One call is one transaction: every label and value is resolved and
//! checked first (unknown feature, wrong dtype, label not in the
//! categorical registry), and nothing is written unless all are valid.

use rusqlite::params;
use serde::Serialize;

use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::registry::dtype::{Dtype, Scalar, parse_value};
use crate::time::now_ms;

/// The labels and feature values of an artifact.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Annotations {
    /// `type:name` (or `name` for untyped labels).
    pub labels: Vec<String>,
    /// Feature name -> value(s) as text.
    pub features: Vec<(String, Vec<String>)>,
}

/// (feature, dtype, int, number, text, label name, json) as stored.
type ValueRow = (
    String,
    String,
    Option<i64>,
    Option<f64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A feature value resolved and ready to store.
enum Stored {
    Int(i64),
    Num(f64),
    Text(String),
    Label(i64),
    Json(String),
}

impl Instance {
    /// Links labels (`name`, `type:name` or uid) and sets feature values
    /// (`feature=value`; lists comma-separated) on an artifact. Setting a
    /// feature replaces its previous value on that artifact, and with it
    /// the label links a categorical value made.
    pub fn annotate(
        &self,
        artifact: &str,
        labels: &[String],
        features: &[(String, String)],
    ) -> Result<Annotations> {
        let target = self.get(artifact)?;
        if target.is_trashed() {
            return Err(Error::Trashed { uid: target.uid });
        }
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let mut label_ids = Vec::new();
        for l in labels {
            label_ids.push(self.label_id_in(&tx, l)?);
        }
        let mut values: Vec<(i64, Vec<Stored>)> = Vec::new();
        for (name, raw) in features {
            let feature_id = self.feature_id_in(&tx, name)?;
            let feature = self.feature_by_id(feature_id)?;
            let dtype: Dtype = feature.dtype()?;
            let mut stored = Vec::new();
            for scalar in parse_value(&feature.name, &dtype, raw)? {
                stored.push(match scalar {
                    Scalar::Int(n) => Stored::Int(n),
                    Scalar::Num(x) => Stored::Num(x),
                    Scalar::Text(t) => Stored::Text(t),
                    Scalar::Json(j) => Stored::Json(j),
                    Scalar::Label(l) => {
                        let Dtype::CatLabel { type_ } = dtype.element() else {
                            return Err(Error::InvalidArgument(format!(
                                "feature {} is not categorical",
                                feature.name
                            )));
                        };
                        // Within the feature's type first; then as written
                        // (a uid, or a name that itself contains ':').
                        let explain = |e: Error| {
                            Error::InvalidArgument(format!(
                                "feature {} takes {}: {e}",
                                feature.name, dtype
                            ))
                        };
                        let id = match type_ {
                            Some(t) => match self.label_id_in(&tx, &format!("{t}:{l}")) {
                                Ok(id) => id,
                                Err(typed) => {
                                    self.label_id_in(&tx, &l).map_err(|_| explain(typed))?
                                }
                            },
                            None => self.label_id_in(&tx, &l).map_err(explain)?,
                        };
                        if let Some(t) = type_ {
                            let label = self.label_by_id(id)?;
                            if label.type_.as_deref() != Some(t.as_str()) {
                                return Err(Error::InvalidArgument(format!(
                                    "feature {} takes labels of type {t}; {l:?} is of type {}",
                                    feature.name,
                                    label.type_.as_deref().unwrap_or("(none)")
                                )));
                            }
                        }
                        Stored::Label(id)
                    }
                });
            }
            values.push((feature_id, stored));
        }

        let now = now_ms();
        {
            // A direct link stays direct even if a categorical value names
            // the same label, so replacing the value does not remove it.
            let mut link = tx
                .prepare_cached(
                    "INSERT INTO artifact_label (artifact_id, label_id, feature_id, created_at) VALUES (?1, ?2, NULL, ?3)
                     ON CONFLICT (artifact_id, label_id) DO UPDATE SET feature_id = NULL",
                )
                .db(&db)?;
            for label_id in &label_ids {
                link.execute(params![target.id, label_id, now]).db(&db)?;
            }
            let mut clear = tx
                .prepare_cached(
                    "DELETE FROM artifact_feature_value WHERE artifact_id = ?1 AND feature_id = ?2",
                )
                .db(&db)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO artifact_feature_value (artifact_id, feature_id, position, value_int, value_num, value_text, value_label, value_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .db(&db)?;
            for (feature_id, stored) in &values {
                clear.execute(params![target.id, feature_id]).db(&db)?;
                for (pos, v) in stored.iter().enumerate() {
                    let (int, num, text, label, json) = match v {
                        Stored::Int(n) => (Some(*n), None, None, None, None),
                        Stored::Num(x) => (None, Some(*x), None, None, None),
                        Stored::Text(t) => (None, None, Some(t.as_str()), None, None),
                        Stored::Label(id) => (None, None, None, Some(*id), None),
                        Stored::Json(j) => (None, None, None, None, Some(j.as_str())),
                    };
                    insert
                        .execute(params![
                            target.id, feature_id, pos as i64, int, num, text, label, json
                        ])
                        .db(&db)?;
                }
            }
        }
        if !values.is_empty() {
            relink_categorical(&tx, target.id, now).db(&db)?;
        }
        tx.commit().db(&db)?;
        self.annotations(&target.uid)
    }

    /// Links many (artifact id, label id) pairs in one transaction; for bulk
    /// loads where both sides are known to exist. Returns the new links.
    pub fn link_labels_bulk(&self, pairs: &[(String, String)]) -> Result<usize> {
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let now = now_ms();
        let mut n = 0;
        {
            let mut link = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO artifact_label (artifact_id, label_id, created_at)
                     SELECT a.id, l.id, ?3 FROM artifact a, ulabel l WHERE a.uid = ?1 AND l.uid = ?2",
                )
                .db(&db)?;
            for (artifact_uid, label_uid) in pairs {
                n += link
                    .execute(params![artifact_uid, label_uid, now])
                    .db(&db)?;
            }
        }
        tx.commit().db(&db)?;
        Ok(n)
    }

    /// An artifact's labels and feature values.
    pub fn annotations(&self, artifact: &str) -> Result<Annotations> {
        let target = self.get(artifact)?;
        let db = self.db_path();
        let labels = self
            .conn
            .prepare_cached(
                "SELECT CASE WHEN l.type = '' THEN l.name ELSE l.type || ':' || l.name END
                 FROM artifact_label al JOIN ulabel l ON l.id = al.label_id
                 WHERE al.artifact_id = ?1 ORDER BY l.type, l.name_fold",
            )
            .and_then(|mut s| {
                s.query_map([target.id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .db(&db)?;
        let rows: Vec<ValueRow> = self
            .conn
            .prepare_cached(
                "SELECT f.name, f.dtype, v.value_int, v.value_num, v.value_text, l.name, v.value_json
                 FROM artifact_feature_value v JOIN feature f ON f.id = v.feature_id
                 LEFT JOIN ulabel l ON l.id = v.value_label
                 WHERE v.artifact_id = ?1 ORDER BY f.name_fold, v.position",
            )
            .and_then(|mut s| {
                s.query_map([target.id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?
                .collect()
            })
            .db(&db)?;
        let mut features: Vec<(String, Vec<String>)> = Vec::new();
        for (name, dtype, int, num, text, label, json) in rows {
            let shown = match (num, text, label, json) {
                _ if int.is_some() => int.map(|n| n.to_string()).unwrap_or_default(),
                (Some(x), ..) => show_number(x, &dtype),
                (_, Some(t), ..) => t,
                (_, _, Some(l), _) => l,
                (.., Some(j)) => j,
                _ => String::new(),
            };
            match features.last_mut() {
                Some((n, vs)) if *n == name => vs.push(shown),
                _ => features.push((name, vec![shown])),
            }
        }
        Ok(Annotations { labels, features })
    }
}

/// Makes the label links of an artifact's categorical values match the
/// values: links whose value was replaced go, links of new values come.
/// Direct links (no feature) are left alone.
fn relink_categorical(
    tx: &rusqlite::Transaction<'_>,
    artifact_id: i64,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "DELETE FROM artifact_label WHERE artifact_id = ?1 AND feature_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM artifact_feature_value v
                         WHERE v.artifact_id = ?1 AND v.feature_id = artifact_label.feature_id
                           AND v.value_label = artifact_label.label_id)",
    )?
    .execute([artifact_id])?;
    tx.prepare_cached(
        "INSERT INTO artifact_label (artifact_id, label_id, feature_id, created_at)
         SELECT artifact_id, value_label, min(feature_id), ?2 FROM artifact_feature_value
         WHERE artifact_id = ?1 AND value_label IS NOT NULL GROUP BY value_label
         ON CONFLICT (artifact_id, label_id) DO NOTHING",
    )?
    .execute(params![artifact_id, now])?;
    Ok(())
}

/// Renders a stored number by its dtype (dates back to text).
fn show_number(x: f64, dtype: &str) -> String {
    let element = dtype.trim_start_matches("list[").trim_end_matches(']');
    match element {
        // Ints written before they were stored exactly.
        "int" => format!("{}", x as i64),
        "bool" => (x != 0.0).to_string(),
        "date" => jiff::Timestamp::from_millisecond(x as i64)
            .map(|t| t.strftime("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        "datetime" => crate::time::rfc3339(x as i64),
        _ => x.to_string(),
    }
}
