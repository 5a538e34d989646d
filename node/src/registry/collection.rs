//! Collections: ordered sets of artifacts under a key, versioned like
//! artifacts. Adding artifacts to an existing collection makes a new
//! version with the old members plus the new ones; the same members in
//! the same order is the same collection (its hash is over member hashes).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::artifact::Artifact;
use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::registry::Added;
use crate::search::index::{index_text, unindex};
use crate::suffix::validate_key;
use crate::time::now_ms;
use crate::uid::{self, STEM_LEN};

#[derive(Clone, Debug, Serialize)]
pub struct Collection {
    pub uid: String,
    pub key: String,
    pub description: Option<String>,
    pub hash: String,
    pub n_artifacts: u64,
    pub is_latest: bool,
    pub revises: Option<String>,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub created_at: i64,
    #[serde(skip)]
    pub(crate) id: i64,
}

const SELECT: &str = "SELECT c.id, c.uid, c.key, c.description, c.hash, c.n_artifacts, c.is_latest, r.uid, c.created_at
     FROM collection c LEFT JOIN collection r ON r.id = c.revises_id";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Collection> {
    Ok(Collection {
        id: r.get(0)?,
        uid: r.get(1)?,
        key: r.get(2)?,
        description: r.get(3)?,
        hash: r.get(4)?,
        n_artifacts: r.get::<_, i64>(5)? as u64,
        is_latest: r.get(6)?,
        revises: r.get(7)?,
        created_at: r.get(8)?,
    })
}

impl Instance {
    /// Creates collection `key` with `artifacts` (uids, prefixes or keys),
    /// or appends them to its latest version, making a new version.
    pub fn add_collection(
        &self,
        key: &str,
        artifacts: &[String],
        description: Option<&str>,
    ) -> Result<Added<Collection>> {
        let key = key.trim().trim_end_matches('/');
        validate_key(key)?;
        if artifacts.is_empty() {
            return Err(Error::InvalidArgument(
                "give at least one artifact (--artifact UID|KEY)".into(),
            ));
        }
        let mut add: Vec<Artifact> = Vec::new();
        for a in artifacts {
            let artifact = self.get(a)?;
            if artifact.is_trashed() {
                return Err(Error::Trashed { uid: artifact.uid });
            }
            if !add.iter().any(|x| x.id == artifact.id) {
                add.push(artifact);
            }
        }
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let previous: Option<Collection> = tx
            .prepare_cached(&format!("{SELECT} WHERE c.key = ?1 AND c.trashed_at IS NULL ORDER BY c.is_latest DESC, c.created_at DESC, c.id DESC LIMIT 1"))
            .and_then(|mut s| s.query_row([key], from_row).optional())
            .db(&db)?;
        let mut members: Vec<(i64, String)> = match &previous {
            Some(p) => tx
                .prepare_cached(
                    "SELECT a.id, a.hash FROM collection_artifact ca JOIN artifact a ON a.id = ca.artifact_id
                     WHERE ca.collection_id = ?1 ORDER BY ca.position",
                )
                .and_then(|mut s| s.query_map([p.id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .db(&db)?,
            None => Vec::new(),
        };
        let before = members.len();
        for a in &add {
            if !members.iter().any(|(id, _)| *id == a.id) {
                members.push((a.id, a.hash.to_hex()));
            }
        }
        if let Some(p) = &previous
            && members.len() == before
        {
            tx.commit().db(&db)?;
            return Ok(Added {
                record: self.collection_by_id(p.id)?,
                created: false,
                notices: vec![format!(
                    "collection {key:?} already has these artifacts; returning it"
                )],
            });
        }
        let hash = blake3::hash(
            members
                .iter()
                .map(|m| m.1.as_str())
                .collect::<Vec<_>>()
                .join("\n")
                .as_bytes(),
        )
        .to_hex()
        .to_string();
        let (uid, revises_id, created_at) = match &previous {
            Some(p) => (
                uid::new_version(uid::stem(&p.uid)),
                Some(p.id),
                now_ms().max(p.created_at + 1),
            ),
            None => (uid::new_family(), None, now_ms()),
        };
        tx.execute(
            "INSERT INTO collection (uid, key, description, hash, n_artifacts, revises_id, is_latest, created_at, created_by, origin_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9)",
            params![
                uid,
                key,
                description.or(previous.as_ref().and_then(|p| p.description.as_deref())),
                hash,
                members.len() as i64,
                revises_id,
                created_at,
                self.user_id,
                self.self_node_id
            ],
        )
        .db(&db)?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO collection_artifact (collection_id, position, artifact_id) VALUES (?1, ?2, ?3)")
                .db(&db)?;
            for (pos, (artifact_id, _)) in members.iter().enumerate() {
                insert
                    .execute(params![id, pos as i64, artifact_id])
                    .db(&db)?;
            }
        }
        tx.execute(
            &format!(
                "UPDATE collection SET is_latest = (id = ?2) WHERE substr(uid, 1, {STEM_LEN}) = ?1"
            ),
            params![uid::stem(&uid), id],
        )
        .db(&db)?;
        if let Some(p) = &previous {
            let mut texts = vec![("key", p.key.as_str())];
            if let Some(d) = &p.description {
                texts.push(("description", d.as_str()));
            }
            unindex(&tx, "collection", p.id, &texts).db(&db)?;
        }
        index_text(&tx, "collection", id, "key", key).db(&db)?;
        if let Some(d) = description {
            index_text(&tx, "collection", id, "description", d).db(&db)?;
        }
        self.share_collection(&tx, id)?;
        tx.commit().db(&db)?;
        let mut notices = Vec::new();
        if let Some(p) = &previous {
            notices.push(format!(
                "new version of {} with {} more artifact(s)",
                p.uid,
                members.len() - before
            ));
        }
        Ok(Added {
            record: self.collection_by_id(id)?,
            created: true,
            notices,
        })
    }

    /// A collection by uid, uid prefix (its family's latest version) or key.
    pub fn collection(&self, query: &str) -> Result<Collection> {
        let q = query.trim();
        let db = self.db_path();
        let found: Option<Collection> = if uid::is_base62(q)
            && q.len() >= uid::MIN_PREFIX_LEN
            && q.len() <= 20
        {
            self.conn
                .prepare_cached(&format!(
                    "{SELECT} WHERE c.uid >= ?1 AND c.uid < ?2 ORDER BY c.is_latest DESC, c.created_at DESC LIMIT 1"
                ))
                .and_then(|mut s| s.query_row(params![q, uid::prefix_upper_bound(q)], from_row).optional())
                .db(&db)?
        } else {
            None
        };
        let found = match found {
            Some(c) => Some(c),
            None => self
                .conn
                .prepare_cached(&format!(
                    "{SELECT} WHERE c.key = ?1 ORDER BY c.is_latest DESC, c.created_at DESC LIMIT 1"
                ))
                .and_then(|mut s| s.query_row([q], from_row).optional())
                .db(&db)?,
        };
        found.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "no collection {q:?}; `labmesh collection ls` lists them"
            ))
        })
    }

    /// The latest version of every live collection.
    pub fn collections(&self) -> Result<Vec<Collection>> {
        self.conn
            .prepare_cached(&format!(
                "{SELECT} WHERE c.is_latest = 1 AND c.trashed_at IS NULL ORDER BY c.created_at DESC"
            ))
            .and_then(|mut s| s.query_map([], from_row)?.collect())
            .db(&self.db_path())
    }

    /// The artifacts of a collection, in order.
    pub fn collection_members(&self, collection: &Collection) -> Result<Vec<Artifact>> {
        let ids: Vec<i64> = self
            .conn
            .prepare_cached("SELECT artifact_id FROM collection_artifact WHERE collection_id = ?1 ORDER BY position")
            .and_then(|mut s| s.query_map([collection.id], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        ids.into_iter().map(|id| self.artifact_by_id(id)).collect()
    }

    pub(crate) fn collection_by_id(&self, id: i64) -> Result<Collection> {
        self.conn
            .prepare_cached(&format!("{SELECT} WHERE c.id = ?1"))
            .and_then(|mut s| s.query_row([id], from_row))
            .db(&self.db_path())
    }
}
