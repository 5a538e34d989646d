//! Schemas: named feature sets, ordered or not, deduplicated by the hash of
//! their definition — defining the same set twice returns the first.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::registry::{Added, clean_name, near_names};
use crate::search::index::index_text;
use crate::similar::fold;
use crate::time::now_ms;
use crate::uid;

#[derive(Clone, Debug, Serialize)]
pub struct Schema {
    pub uid: String,
    pub name: String,
    pub ordered: bool,
    /// Feature names, in order (sorted by uid when unordered).
    pub features: Vec<String>,
    pub hash: String,
    pub description: Option<String>,
}

impl Instance {
    /// Adds a schema over `features` (names, synonyms or uids).
    pub fn add_schema(
        &self,
        name: &str,
        features: &[String],
        ordered: bool,
        description: Option<&str>,
        force: bool,
    ) -> Result<Added<Schema>> {
        let db = self.db_path();
        let name = clean_name("schema", name)?;
        if features.is_empty() {
            return Err(Error::InvalidArgument(
                "a schema needs at least one feature (--feature NAME)".into(),
            ));
        }
        let tx = write_txn(&self.conn).db(&db)?;
        let mut members: Vec<(i64, String)> = Vec::new();
        for f in features {
            let id = self.feature_id_in(&tx, f)?;
            let uid: String = tx
                .query_row("SELECT uid FROM feature WHERE id = ?1", [id], |r| r.get(0))
                .db(&db)?;
            if members.iter().any(|(m, _)| *m == id) {
                return Err(Error::InvalidArgument(format!(
                    "feature {f:?} is listed twice"
                )));
            }
            members.push((id, uid));
        }
        if !ordered {
            members.sort_by(|a, b| a.1.cmp(&b.1));
        }
        let definition = format!(
            "{}\n{}",
            if ordered { "ordered" } else { "unordered" },
            members
                .iter()
                .map(|m| m.1.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let hash = blake3::hash(definition.as_bytes()).to_hex().to_string();
        let same: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, name FROM schema WHERE hash = ?1",
                [&hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .db(&db)?;
        if let Some((id, existing)) = same {
            tx.commit().db(&db)?;
            return Ok(Added {
                record: self.schema_by_id(id)?,
                created: false,
                notices: vec![format!(
                    "schema {existing:?} has exactly this feature set; returning it"
                )],
            });
        }
        let taken: Option<String> = tx
            .query_row(
                "SELECT name FROM schema WHERE name_fold = ?1",
                [fold(&name)],
                |r| r.get(0),
            )
            .optional()
            .db(&db)?;
        if let Some(other) = taken {
            return Err(Error::InvalidArgument(format!(
                "schema {other:?} already exists with a different feature set; choose another name"
            )));
        }
        if !force && let Some(near) = near_names(&tx, "schema", "", None, &name).db(&db)?.first() {
            return Err(Error::InvalidArgument(format!(
                "schema {name:?} is close to the existing {near:?}; did you mean {near:?}?\n  hint: pass --force to create it anyway"
            )));
        }
        tx.execute(
            "INSERT INTO schema (uid, name, name_fold, hash, ordered, n_features, description, created_at, created_by, origin_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                uid::random(12),
                name,
                fold(&name),
                hash,
                ordered,
                members.len() as i64,
                description,
                now_ms(),
                self.user_id,
                self.self_node_id
            ],
        )
        .db(&db)?;
        let id = tx.last_insert_rowid();
        for (pos, (feature_id, _)) in members.iter().enumerate() {
            tx.execute(
                "INSERT INTO schema_feature (schema_id, feature_id, position) VALUES (?1, ?2, ?3)",
                params![id, feature_id, pos as i64],
            )
            .db(&db)?;
        }
        index_text(&tx, "schema", id, "name", &name).db(&db)?;
        if let Some(d) = description {
            index_text(&tx, "schema", id, "description", d).db(&db)?;
        }
        tx.commit().db(&db)?;
        Ok(Added {
            record: self.schema_by_id(id)?,
            created: true,
            notices: Vec::new(),
        })
    }

    /// A schema by uid or name.
    pub fn schema(&self, query: &str) -> Result<Schema> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM schema WHERE uid = ?1 OR name_fold = ?2",
                params![query.trim(), fold(query)],
                |r| r.get(0),
            )
            .optional()
            .db(&self.db_path())?;
        match id {
            Some(id) => self.schema_by_id(id),
            None => Err(Error::InvalidArgument(format!(
                "no schema {query:?}; `labmesh schema add` creates one"
            ))),
        }
    }

    /// Every schema, by name.
    pub fn schemas(&self) -> Result<Vec<Schema>> {
        let ids: Vec<i64> = self
            .conn
            .prepare_cached("SELECT id FROM schema ORDER BY name_fold")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        ids.into_iter().map(|id| self.schema_by_id(id)).collect()
    }

    fn schema_by_id(&self, id: i64) -> Result<Schema> {
        let db = self.db_path();
        let (uid, name, ordered, hash, description): (
            String,
            String,
            bool,
            String,
            Option<String>,
        ) = self
            .conn
            .query_row(
                "SELECT uid, name, ordered, hash, description FROM schema WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .db(&db)?;
        let features = self
            .conn
            .prepare_cached(
                "SELECT f.name FROM schema_feature sf JOIN feature f ON f.id = sf.feature_id
                 WHERE sf.schema_id = ?1 ORDER BY sf.position",
            )
            .and_then(|mut s| {
                s.query_map([id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .db(&db)?;
        Ok(Schema {
            uid,
            name,
            ordered,
            features,
            hash,
            description,
        })
    }
}
