//! Features: typed dimensions of annotation (`temperature`, float, °C;
//! `tissue`, cat[label:tissue]), with synonyms.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::registry::dtype::Dtype;
use crate::registry::{Added, clean_name, near_names, set_synonyms, synonyms_of};
use crate::search::index::index_text;
use crate::similar::fold;
use crate::time::now_ms;
use crate::uid;

pub(crate) const TAG: &str = "feature";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Feature {
    pub uid: String,
    pub name: String,
    pub dtype: String,
    pub unit: Option<String>,
    pub description: Option<String>,
    pub synonyms: Vec<String>,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub created_at: i64,
    #[serde(skip)]
    pub(crate) id: i64,
}

impl Feature {
    pub fn dtype(&self) -> Result<Dtype> {
        self.dtype.parse()
    }
}

/// (id, name, dtype, unit, description) of a stored feature.
type StoredRow = (i64, String, String, Option<String>, Option<String>);

#[derive(Clone, Debug, Default)]
pub struct FeatureSpec {
    pub name: String,
    pub dtype: String,
    pub unit: Option<String>,
    pub description: Option<String>,
    pub synonyms: Vec<String>,
    pub force: bool,
}

impl Instance {
    /// Adds a feature, or returns the existing one with the same name if
    /// it agrees: a different dtype, unit or description is refused (values
    /// recorded under the old ones would change meaning), new synonyms are
    /// added to it.
    pub fn add_feature(&self, spec: &FeatureSpec) -> Result<Added<Feature>> {
        let db = self.db_path();
        let name = clean_name("feature", &spec.name)?;
        let dtype: Dtype = spec.dtype.parse()?;
        let unit = spec
            .unit
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let description = spec
            .description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty());
        let tx = write_txn(&self.conn).db(&db)?;
        let existing: Option<StoredRow> = tx
            .prepare_cached(
                "SELECT id, name, dtype, unit, description FROM feature WHERE name_fold = ?1",
            )
            .and_then(|mut s| {
                s.query_row([fold(&name)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()
            })
            .db(&db)?;
        if let Some((id, stored, stored_dtype, stored_unit, stored_description)) = existing {
            let differs = |what: &str, old: &str, new: &str, flag: &str| {
                Error::InvalidArgument(format!(
                    "feature {stored:?} already exists with {what} {old}, not {new}; values recorded \
                     under it would change meaning\n  hint: leave out {flag} to use it as it is, \
                     or choose another name for a different kind of value"
                ))
            };
            if stored_dtype != dtype.to_string() {
                return Err(differs(
                    "dtype",
                    &stored_dtype,
                    &dtype.to_string(),
                    "--dtype",
                ));
            }
            if let Some(new) = unit
                && stored_unit.as_deref() != Some(new)
            {
                let old = stored_unit
                    .as_deref()
                    .map_or("(none)".to_string(), |u| format!("{u:?}"));
                return Err(differs("unit", &old, &format!("{new:?}"), "--unit"));
            }
            let mut notices = vec![format!("feature {stored:?} already exists; returning it")];
            match (stored_description.as_deref(), description) {
                (Some(old), Some(new)) if old != new => {
                    return Err(differs(
                        "description",
                        &format!("{old:?}"),
                        &format!("{new:?}"),
                        "--description",
                    ));
                }
                (None, Some(new)) => {
                    tx.execute(
                        "UPDATE feature SET description = ?1 WHERE id = ?2",
                        params![new, id],
                    )
                    .db(&db)?;
                    index_text(&tx, TAG, id, "description", new).db(&db)?;
                    notices.push("added its description".into());
                }
                _ => {}
            }
            let known = synonyms_of(&tx, TAG, id).db(&db)?;
            let new: Vec<String> = spec
                .synonyms
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && !known.iter().any(|k| fold(k) == fold(s)))
                .collect();
            if !new.is_empty() {
                self.check_feature_synonyms(&tx, id, &new)?;
                notices.push(format!("added synonym(s) {}", new.join(", ")));
                let mut all = known;
                all.extend(new);
                set_synonyms(&tx, TAG, id, &all).db(&db)?;
            }
            tx.commit().db(&db)?;
            return Ok(Added {
                record: self.feature_by_id(id)?,
                created: false,
                notices,
            });
        }
        // A new name that is an existing feature's synonym would mean two
        // features: refused even with --force.
        let by_synonym: Option<String> = tx
            .prepare_cached(
                "SELECT f.name FROM synonym s JOIN feature f ON f.id = s.record_id WHERE s.registry = 'feature' AND s.fold = ?1",
            )
            .and_then(|mut s| s.query_row([fold(&name)], |r| r.get(0)).optional())
            .db(&db)?;
        if let Some(other) = by_synonym {
            return Err(Error::InvalidArgument(format!(
                "{name:?} is already a synonym of feature {other:?}; one name cannot mean two features\n  \
                 hint: use {other:?} (`labmesh feature ls`)"
            )));
        }
        if !spec.force
            && let Some(first) = near_names(&tx, "feature", "", None, &name).db(&db)?.first()
        {
            return Err(Error::InvalidArgument(format!(
                "feature {name:?} is close to the existing {first:?}; did you mean {first:?}?\n  \
                 hint: pass --force to create {name:?} anyway"
            )));
        }
        self.check_feature_synonyms(&tx, 0, &spec.synonyms)?;
        tx.prepare_cached(
            "INSERT INTO feature (uid, name, name_fold, dtype, unit, description, created_at, created_by, origin_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                uid::random(12),
                name,
                fold(&name),
                dtype.to_string(),
                unit,
                description,
                now_ms(),
                self.user_id,
                self.self_node_id
            ])
        })
        .db(&db)?;
        let id = tx.last_insert_rowid();
        index_text(&tx, TAG, id, "name", &name).db(&db)?;
        if let Some(d) = description {
            index_text(&tx, TAG, id, "description", d).db(&db)?;
        }
        set_synonyms(&tx, TAG, id, &spec.synonyms).db(&db)?;
        tx.commit().db(&db)?;
        Ok(Added {
            record: self.feature_by_id(id)?,
            created: true,
            notices: Vec::new(),
        })
    }

    /// A synonym must not be another feature's name or synonym (`id`: the
    /// feature the synonyms are for, 0 for a new one).
    fn check_feature_synonyms(
        &self,
        tx: &rusqlite::Transaction<'_>,
        id: i64,
        synonyms: &[String],
    ) -> Result<()> {
        for s in synonyms.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let taken: Option<String> = tx
                .prepare_cached(
                    "SELECT name FROM feature WHERE name_fold = ?1 AND id != ?2
                     UNION SELECT f.name FROM synonym y JOIN feature f ON f.id = y.record_id
                     WHERE y.registry = 'feature' AND y.fold = ?1 AND f.id != ?2",
                )
                .and_then(|mut st| st.query_row(params![fold(s), id], |r| r.get(0)).optional())
                .db(&self.db_path())?;
            if let Some(other) = taken {
                return Err(Error::InvalidArgument(format!(
                    "synonym {s:?} already names feature {other:?}; one name cannot mean two features"
                )));
            }
        }
        Ok(())
    }

    /// A feature by uid, name or synonym.
    pub fn feature(&self, query: &str) -> Result<Feature> {
        let id = self.feature_id_in(&self.conn, query)?;
        self.feature_by_id(id)
    }

    /// All features by name.
    pub fn features(&self) -> Result<Vec<Feature>> {
        let ids: Vec<i64> = self
            .conn
            .prepare_cached("SELECT id FROM feature WHERE trashed_at IS NULL ORDER BY name_fold")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        ids.into_iter().map(|id| self.feature_by_id(id)).collect()
    }

    pub(crate) fn feature_id_in(&self, conn: &rusqlite::Connection, query: &str) -> Result<i64> {
        let q = query.trim();
        // A name wins over a synonym.
        let found: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM (
                     SELECT id, 0 AS rank FROM feature WHERE uid = ?1 OR name_fold = ?2
                     UNION ALL SELECT record_id, 1 FROM synonym WHERE registry = 'feature' AND fold = ?2)
                 ORDER BY rank LIMIT 1",
            )
            .and_then(|mut s| s.query_row(params![q, fold(q)], |r| r.get(0)).optional())
            .db(&self.db_path())?;
        found.ok_or_else(|| {
            let names: Vec<String> = self
                .features()
                .map(|f| f.into_iter().map(|f| f.name).collect())
                .unwrap_or_default();
            let hint = crate::similar::closest(q, names.iter().map(String::as_str))
                .map(|n| format!("; did you mean {n:?}?"))
                .unwrap_or_else(|| "; `labmesh feature add` creates one".into());
            Error::InvalidArgument(format!("no feature {q:?}{hint}"))
        })
    }

    pub(crate) fn feature_by_id(&self, id: i64) -> Result<Feature> {
        let db = self.db_path();
        let mut f = self
            .conn
            .prepare_cached(
                "SELECT uid, name, dtype, unit, description, created_at FROM feature WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(Feature {
                        uid: r.get(0)?,
                        name: r.get(1)?,
                        dtype: r.get(2)?,
                        unit: r.get(3)?,
                        description: r.get(4)?,
                        synonyms: Vec::new(),
                        created_at: r.get(5)?,
                        id,
                    })
                })
            })
            .db(&db)?;
        f.synonyms = synonyms_of(&self.conn, TAG, id).db(&db)?;
        Ok(f)
    }
}
