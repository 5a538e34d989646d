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
    /// or appends them to its latest version, making a new version. A new
    /// key close to an existing one (case, a typo) is refused unless
    /// `force`.
    pub fn add_collection(
        &self,
        key: &str,
        artifacts: &[String],
        description: Option<&str>,
        force: bool,
    ) -> Result<Added<Collection>> {
        let key = clean_key(key)?;
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
        let previous = latest_version(&tx, key).db(&db)?;
        if previous.is_none()
            && !force
            && let Some(existing) = near_key(&tx, key).db(&db)?
        {
            return Err(Error::InvalidArgument(format!(
                "collection key {key:?} is close to the existing {existing:?}; did you mean {existing:?}?\n  \
                 hint: pass --force to create {key:?} anyway"
            )));
        }
        let mut members = match &previous {
            Some(p) => members_of(&tx, p.id).db(&db)?,
            None => Vec::new(),
        };
        let before = members.len();
        for a in &add {
            if !members.iter().any(|(id, _)| *id == a.id) {
                members.push((a.id, a.hash.to_hex().to_string()));
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
        let id = self.write_version(&tx, key, previous.as_ref(), &members, description)?;
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

    /// Removes `artifacts` from collection `key`, making a new version.
    pub fn remove_from_collection(
        &self,
        key: &str,
        artifacts: &[String],
    ) -> Result<Added<Collection>> {
        let key = clean_key(key)?;
        let mut remove = Vec::new();
        for a in artifacts {
            remove.push(self.get(a)?);
        }
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let previous = self.existing_version(&tx, key)?;
        let mut members = members_of(&tx, previous.id).db(&db)?;
        for a in &remove {
            if !members.iter().any(|(id, _)| *id == a.id) {
                return Err(Error::InvalidArgument(format!(
                    "artifact {} ({}) is not in collection {key:?}; `labmesh collection show {key}` lists its members",
                    a.uid,
                    a.label()
                )));
            }
        }
        members.retain(|(id, _)| !remove.iter().any(|a| a.id == *id));
        if members.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "removing them would leave collection {key:?} empty; a collection has at least one artifact"
            )));
        }
        let id = self.write_version(&tx, key, Some(&previous), &members, None)?;
        tx.commit().db(&db)?;
        Ok(Added {
            record: self.collection_by_id(id)?,
            created: true,
            notices: vec![format!(
                "new version of {} without {} artifact(s)",
                previous.uid,
                remove.len()
            )],
        })
    }

    /// Puts the members of collection `key` in the order of `artifacts`
    /// (every member, once), making a new version.
    pub fn reorder_collection(&self, key: &str, artifacts: &[String]) -> Result<Added<Collection>> {
        let key = clean_key(key)?;
        let mut order: Vec<Artifact> = Vec::new();
        for a in artifacts {
            let artifact = self.get(a)?;
            if order.iter().any(|x| x.id == artifact.id) {
                return Err(Error::InvalidArgument(format!(
                    "artifact {} is listed twice; give each member once, in the new order",
                    artifact.uid
                )));
            }
            order.push(artifact);
        }
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let previous = self.existing_version(&tx, key)?;
        let members = members_of(&tx, previous.id).db(&db)?;
        if let Some(stranger) = order
            .iter()
            .find(|a| !members.iter().any(|(id, _)| *id == a.id))
        {
            return Err(Error::InvalidArgument(format!(
                "artifact {} is not in collection {key:?}; `labmesh collection add` adds it",
                stranger.uid
            )));
        }
        if order.len() != members.len() {
            let missing: Vec<String> = members
                .iter()
                .filter(|(id, _)| !order.iter().any(|a| a.id == *id))
                .map(|(id, _)| self.artifact_by_id(*id).map(|a| a.uid))
                .collect::<Result<_>>()?;
            return Err(Error::InvalidArgument(format!(
                "give every member of collection {key:?} in the new order; missing: {}",
                missing.join(", ")
            )));
        }
        let reordered: Vec<(i64, String)> = order
            .iter()
            .map(|a| (a.id, a.hash.to_hex().to_string()))
            .collect();
        if reordered == members {
            tx.commit().db(&db)?;
            return Ok(Added {
                record: self.collection_by_id(previous.id)?,
                created: false,
                notices: vec![format!("collection {key:?} is already in this order")],
            });
        }
        let id = self.write_version(&tx, key, Some(&previous), &reordered, None)?;
        tx.commit().db(&db)?;
        Ok(Added {
            record: self.collection_by_id(id)?,
            created: true,
            notices: vec![format!("new version of {} in the new order", previous.uid)],
        })
    }

    /// Every version of a collection (by key, uid or uid prefix), oldest first.
    pub fn collection_versions(&self, query: &str) -> Result<Vec<Collection>> {
        let c = self.collection(query)?;
        self.conn
            .prepare_cached(&format!(
                "{SELECT} WHERE substr(c.uid, 1, {STEM_LEN}) = ?1 ORDER BY c.created_at, c.id"
            ))
            .and_then(|mut s| s.query_map([uid::stem(&c.uid)], from_row)?.collect())
            .db(&self.db_path())
    }

    /// The latest live version of `key`, or an error saying there is none.
    fn existing_version(&self, tx: &rusqlite::Transaction<'_>, key: &str) -> Result<Collection> {
        latest_version(tx, key).db(&self.db_path())?.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "no collection {key:?}; `labmesh collection ls` lists them"
            ))
        })
    }

    /// Writes a new version of `key` with `members` (id, hash), after
    /// `previous` if any; moves `is_latest`, the search index and the
    /// shared document with it. Returns the new row's id.
    fn write_version(
        &self,
        tx: &rusqlite::Transaction<'_>,
        key: &str,
        previous: Option<&Collection>,
        members: &[(i64, String)],
        description: Option<&str>,
    ) -> Result<i64> {
        let db = self.db_path();
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
        let (uid, revises_id, created_at) = match previous {
            Some(p) => (
                uid::new_version(uid::stem(&p.uid)),
                Some(p.id),
                now_ms().max(p.created_at + 1),
            ),
            None => (uid::new_family(), None, now_ms()),
        };
        let description = description.or(previous.and_then(|p| p.description.as_deref()));
        tx.execute(
            "INSERT INTO collection (uid, key, description, hash, n_artifacts, revises_id, is_latest, created_at, created_by, origin_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9)",
            params![
                uid,
                key,
                description,
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
        if let Some(p) = previous {
            let mut texts = vec![("key", p.key.as_str())];
            if let Some(d) = &p.description {
                texts.push(("description", d.as_str()));
            }
            unindex(tx, "collection", p.id, &texts).db(&db)?;
        }
        index_text(tx, "collection", id, "key", key).db(&db)?;
        if let Some(d) = description {
            index_text(tx, "collection", id, "description", d).db(&db)?;
        }
        self.share_collection(tx, id)?;
        Ok(id)
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

/// A collection key, trimmed and checked.
fn clean_key(key: &str) -> Result<&str> {
    let key = key.trim().trim_end_matches('/');
    validate_key(key)?;
    Ok(key)
}

/// The latest live version of `key`.
fn latest_version(conn: &rusqlite::Connection, key: &str) -> rusqlite::Result<Option<Collection>> {
    conn.prepare_cached(&format!(
        "{SELECT} WHERE c.key = ?1 AND c.trashed_at IS NULL ORDER BY c.is_latest DESC, c.created_at DESC, c.id DESC LIMIT 1"
    ))?
    .query_row([key], from_row)
    .optional()
}

/// A version's members in order, as (artifact id, content hash).
fn members_of(
    conn: &rusqlite::Connection,
    collection_id: i64,
) -> rusqlite::Result<Vec<(i64, String)>> {
    conn.prepare_cached(
        "SELECT a.id, a.hash FROM collection_artifact ca JOIN artifact a ON a.id = ca.artifact_id
         WHERE ca.collection_id = ?1 ORDER BY ca.position",
    )?
    .query_map([collection_id], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// A live collection key that differs from `key` only in case, or by a
/// typo (one edit; members of a series like `plate1`/`plate2` are not
/// typos). Every candidate is a look-up in the `lower(key)` index.
fn near_key(conn: &rusqlite::Connection, key: &str) -> rusqlite::Result<Option<String>> {
    let lower = key.to_lowercase();
    let mut probe = conn.prepare_cached(
        "SELECT key FROM collection WHERE lower(key) = ?1 AND trashed_at IS NULL LIMIT 1",
    )?;
    if let Some(k) = probe.query_row([&lower], |r| r.get(0)).optional()? {
        return Ok(Some(k));
    }
    for candidate in crate::search::one_edit_variants(&lower) {
        if !crate::similar::is_near(&lower, &candidate) {
            continue;
        }
        if let Some(k) = probe.query_row([&candidate], |r| r.get(0)).optional()? {
            return Ok(Some(k));
        }
    }
    Ok(None)
}
