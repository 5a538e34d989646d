//! Shared records as documents, and documents back as rows.
//!
//! A shared artifact or collection is an automerge document whose fields
//! are the row's replicated columns; the SQLite row is the materialized
//! view, rebuilt from the document's view in the same transaction that
//! stores the document. Local-only columns (integer ids, storage, the
//! verification cache) never enter a document; derived ones (`is_latest`)
//! are recomputed from replicated data by the same rule on every replica.
//! Grants (write tokens) and revocations travel as records too, so every
//! replica judges a change's origin from the same facts.

use labmesh_sync::{Edit, FieldValue, RecordView};
use rusqlite::{Connection, OptionalExtension, params};

use crate::artifact::Artifact;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::registry::collection::Collection;
use crate::search::index::{index_text, unindex};
use crate::time::now_ms;

/// The field that says what a document is.
pub const TYPE: &str = "record_type";

fn opt_str(v: Option<&str>) -> FieldValue {
    v.map_or(FieldValue::Null, |s| FieldValue::Str(s.to_string()))
}

/// All replicated fields of an artifact, for its first write.
pub fn artifact_edits(a: &Artifact, creator_uid: &str) -> Vec<Edit> {
    let mut edits = vec![
        Edit::set(TYPE, FieldValue::Str("artifact".into())),
        Edit::set("key", opt_str(a.key.as_deref())),
        Edit::set("kind", FieldValue::Str(a.kind.as_str().into())),
        Edit::set("suffix", FieldValue::Str(a.suffix.clone())),
        Edit::set("hash", FieldValue::Str(a.hash.to_hex())),
        Edit::set("size", FieldValue::Int(a.size as i64)),
        Edit::set(
            "n_files",
            a.n_files
                .map_or(FieldValue::Null, |n| FieldValue::Int(n as i64)),
        ),
        Edit::set("version", opt_str(a.version.as_deref())),
        Edit::set("revises", opt_str(a.revises.as_deref())),
        Edit::set("created_at", FieldValue::Int(a.created_at)),
        Edit::set("created_by", FieldValue::Str(a.created_by.clone())),
        Edit::set("creator", FieldValue::Str(creator_uid.to_string())),
        Edit::set("origin", FieldValue::Str(a.origin.clone())),
    ];
    if let Some(d) = &a.description {
        edits.push(Edit::set("description", FieldValue::Text(d.clone())));
    }
    if let Some(at) = a.trashed_at {
        edits.push(Edit::set("trashed_at", FieldValue::Int(at)));
        edits.push(Edit::Tombstone);
    }
    edits
}

/// All replicated fields of a collection version.
pub fn collection_edits(
    c: &Collection,
    members: &[String],
    created_by: &str,
    creator_uid: &str,
    origin: &str,
) -> Vec<Edit> {
    let mut edits = vec![
        Edit::set(TYPE, FieldValue::Str("collection".into())),
        Edit::set("key", FieldValue::Str(c.key.clone())),
        Edit::set("hash", FieldValue::Str(c.hash.clone())),
        Edit::set("members", FieldValue::Str(members.join(","))),
        Edit::set("n_artifacts", FieldValue::Int(c.n_artifacts as i64)),
        Edit::set("revises", opt_str(c.revises.as_deref())),
        Edit::set("created_at", FieldValue::Int(c.created_at)),
        Edit::set("created_by", FieldValue::Str(created_by.to_string())),
        Edit::set("creator", FieldValue::Str(creator_uid.to_string())),
        Edit::set("origin", FieldValue::Str(origin.to_string())),
    ];
    if let Some(d) = &c.description {
        edits.push(Edit::set("description", FieldValue::Text(d.clone())));
    }
    edits
}

/// A write grant: the token, verified by every replica itself.
pub fn grant_edits(token_text: &str) -> Vec<Edit> {
    vec![
        Edit::set(TYPE, FieldValue::Str("grant".into())),
        Edit::set("token", FieldValue::Str(token_text.into())),
    ]
}

/// A revoked token block, and when it was revoked (unix ms): changes
/// stamped earlier stay valid.
pub fn revocation_edits(block_id: &str, reason: Option<&str>, revoked_at_ms: i64) -> Vec<Edit> {
    vec![
        Edit::set(TYPE, FieldValue::Str("revocation".into())),
        Edit::set("block", FieldValue::Str(block_id.into())),
        Edit::set("reason", opt_str(reason)),
        Edit::set("revoked_at", FieldValue::Int(revoked_at_ms)),
    ]
}

/// A text field of a view (`Str` or `Text`).
pub fn text(view: &RecordView, field: &str) -> Option<String> {
    match view.fields.get(field) {
        Some(FieldValue::Str(s)) | Some(FieldValue::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

fn int(view: &RecordView, field: &str) -> Option<i64> {
    match view.fields.get(field) {
        Some(FieldValue::Int(i)) => Some(*i),
        Some(FieldValue::F64(f)) => Some(*f as i64),
        _ => None,
    }
}

/// What a document is, from its view.
pub fn kind_of(view: &RecordView) -> String {
    text(view, TYPE).unwrap_or_else(|| "unknown".into())
}

impl Instance {
    /// The local id of a node, adding it to the address book if new.
    pub(crate) fn node_id_for(&self, conn: &Connection, peer_id: &str) -> Result<i64> {
        let db = self.db_path();
        let known: Option<i64> = conn
            .prepare_cached("SELECT id FROM node WHERE peer_id = ?1")
            .and_then(|mut s| s.query_row([peer_id], |r| r.get(0)).optional())
            .db(&db)?;
        if let Some(id) = known {
            return Ok(id);
        }
        conn.prepare_cached("INSERT INTO node (peer_id, created_at) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![peer_id, now_ms()]))
            .db(&db)?;
        Ok(conn.last_insert_rowid())
    }

    /// The local id of a (possibly remote) user, by its global uid.
    fn user_id_for(
        &self,
        conn: &Connection,
        uid: &str,
        handle: &str,
        origin_id: i64,
    ) -> Result<i64> {
        let db = self.db_path();
        let found: Option<i64> = conn
            .prepare_cached("SELECT id FROM user WHERE uid = ?1")
            .and_then(|mut s| s.query_row([uid], |r| r.get(0)).optional())
            .db(&db)?;
        if let Some(id) = found {
            return Ok(id);
        }
        conn.prepare_cached(
            "INSERT INTO user (uid, handle, created_at, origin_id) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![uid, handle, now_ms(), origin_id]))
        .db(&db)?;
        Ok(conn.last_insert_rowid())
    }

    /// Rebuilds an artifact's row from its document's view.
    pub(crate) fn materialize_artifact(
        &self,
        conn: &Connection,
        uid: &str,
        view: &RecordView,
    ) -> Result<()> {
        let db = self.db_path();
        // When it was trashed, as the node that trashed it recorded.
        let trashed_at = view
            .deleted
            .then(|| int(view, "trashed_at").unwrap_or_else(now_ms));
        type Existing = (i64, Option<i64>, Option<String>);
        let existing: Option<Existing> = conn
            .prepare_cached("SELECT id, trashed_at, description FROM artifact WHERE uid = ?1")
            .and_then(|mut s| {
                s.query_row([uid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .db(&db)?;
        let stem = &uid[..crate::uid::STEM_LEN.min(uid.len())];
        let description = text(view, "description");
        let (Some(hash), Some(kind), Some(created_at)) = (
            text(view, "hash"),
            text(view, "kind"),
            int(view, "created_at"),
        ) else {
            // Not (yet) a complete artifact: its first change has not arrived.
            return Ok(());
        };
        // Which version of the family is the latest changes only when a
        // version arrives beside others, or one is trashed or restored.
        let family_changed = match existing {
            Some((id, old_trash, old_description)) => {
                let new_trash = if view.deleted {
                    trashed_at.or(old_trash)
                } else {
                    None
                };
                conn.prepare_cached("UPDATE artifact SET description = ?2, version = ?3, trashed_at = ?4 WHERE id = ?1")
                    .and_then(|mut s| {
                        s.execute(params![id, description, text(view, "version"), new_trash])
                    })
                    .db(&db)?;
                if old_description != description {
                    // Search finds the description a replica now shows.
                    let old: Vec<(&str, &str)> = old_description
                        .iter()
                        .map(|d| ("description", d.as_str()))
                        .collect();
                    unindex(conn, "artifact", id, &old).db(&db)?;
                    if let Some(d) = &description {
                        index_text(conn, "artifact", id, "description", d).db(&db)?;
                    }
                }
                old_trash.is_some() != new_trash.is_some()
            }
            None => {
                let origin = text(view, "origin").unwrap_or_default();
                let origin_id = self.node_id_for(conn, &origin)?;
                let handle = text(view, "created_by").unwrap_or_else(|| "unknown".into());
                let creator = text(view, "creator").unwrap_or_else(|| crate::uid::random(8));
                let user_id = self.user_id_for(conn, &creator, &handle, origin_id)?;
                let revises_id: Option<i64> = match text(view, "revises") {
                    Some(r) => conn
                        .prepare_cached("SELECT id FROM artifact WHERE uid = ?1")
                        .and_then(|mut s| s.query_row([r], |row| row.get(0)).optional())
                        .db(&db)?,
                    None => None,
                };
                let key = text(view, "key");
                let siblings: bool = conn
                    .prepare_cached(&format!(
                        "SELECT EXISTS (SELECT 1 FROM artifact WHERE substr(uid, 1, {}) = ?1)",
                        crate::uid::STEM_LEN
                    ))
                    .and_then(|mut s| s.query_row([stem], |r| r.get(0)))
                    .db(&db)?;
                // Alone in its family, a live version is the latest.
                let latest = !siblings && !view.deleted;
                conn.prepare_cached(
                    "INSERT INTO artifact (uid, key, description, kind, suffix, hash, size, n_files, storage_id, revises_id,
                                           is_latest, version, created_at, created_by, origin_id, trashed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?16, ?11, ?12, ?13, ?14, ?15)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        uid,
                        key,
                        description,
                        if kind == "folder" { "folder" } else { "file" },
                        text(view, "suffix").unwrap_or_default(),
                        hash,
                        int(view, "size").unwrap_or(0),
                        int(view, "n_files"),
                        self.default_storage.id,
                        revises_id,
                        text(view, "version"),
                        created_at,
                        user_id,
                        origin_id,
                        trashed_at,
                        latest,
                    ])
                })
                .db(&db)?;
                let id = conn.last_insert_rowid();
                if let Some(k) = &key {
                    index_text(conn, "artifact", id, "key", k).db(&db)?;
                }
                if let Some(d) = &description {
                    index_text(conn, "artifact", id, "description", d).db(&db)?;
                }
                // The holder of this content is its origin, at least.
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO location (hash, peer_id, seen_at) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| s.execute(params![hash, origin, now_ms()]))
                .db(&db)?;
                siblings
            }
        };
        if family_changed {
            crate::artifact::refresh_family(conn, stem).db(&db)?;
        }
        Ok(())
    }

    /// Rebuilds a collection version's row and membership from its view.
    /// Members that have not arrived yet are linked when they do.
    pub(crate) fn materialize_collection(
        &self,
        conn: &Connection,
        uid: &str,
        view: &RecordView,
    ) -> Result<()> {
        let db = self.db_path();
        let (Some(key), Some(hash), Some(created_at)) = (
            text(view, "key"),
            text(view, "hash"),
            int(view, "created_at"),
        ) else {
            return Ok(());
        };
        let members: Vec<String> = text(view, "members")
            .map(|m| {
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let existing: Option<i64> = conn
            .prepare_cached("SELECT id FROM collection WHERE uid = ?1")
            .and_then(|mut s| s.query_row([uid], |r| r.get(0)).optional())
            .db(&db)?;
        let id = match existing {
            Some(id) => {
                conn.prepare_cached(
                    "UPDATE collection SET description = ?2, trashed_at = ?3 WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        text(view, "description"),
                        view.deleted
                            .then(|| int(view, "trashed_at").unwrap_or_else(now_ms))
                    ])
                })
                .db(&db)?;
                id
            }
            None => {
                let origin = text(view, "origin").unwrap_or_default();
                let origin_id = self.node_id_for(conn, &origin)?;
                let creator = text(view, "creator").unwrap_or_else(|| crate::uid::random(8));
                let user_id = self.user_id_for(
                    conn,
                    &creator,
                    &text(view, "created_by").unwrap_or_default(),
                    origin_id,
                )?;
                conn.prepare_cached(
                    "INSERT INTO collection (uid, key, description, hash, n_artifacts, is_latest, created_at, created_by, origin_id, trashed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)",
                )
                .and_then(|mut s| {
                    s.execute(params![uid, key, text(view, "description"), hash, members.len() as i64, created_at, user_id, origin_id, view.deleted.then(|| int(view, "trashed_at").unwrap_or_else(now_ms))])
                })
                .db(&db)?;
                let id = conn.last_insert_rowid();
                index_text(conn, "collection", id, "key", &key).db(&db)?;
                id
            }
        };
        self.link_collection_members(conn, id, &members)?;
        conn.prepare_cached(
            "UPDATE collection SET is_latest = (uid = (SELECT uid FROM collection WHERE substr(uid, 1, 16) = ?1 AND trashed_at IS NULL
                 ORDER BY created_at DESC, uid DESC LIMIT 1)) WHERE substr(uid, 1, 16) = ?1",
        )
        .and_then(|mut s| s.execute([&uid[..16.min(uid.len())]]))
        .db(&db)?;
        Ok(())
    }

    /// Links the members that exist locally, in order.
    pub(crate) fn link_collection_members(
        &self,
        conn: &Connection,
        collection_id: i64,
        members: &[String],
    ) -> Result<()> {
        let db = self.db_path();
        let mut insert = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO collection_artifact (collection_id, position, artifact_id)
                 SELECT ?1, ?2, id FROM artifact WHERE uid = ?3",
            )
            .db(&db)?;
        for (pos, m) in members.iter().enumerate() {
            insert
                .execute(params![collection_id, pos as i64, m])
                .db(&db)?;
        }
        Ok(())
    }

    /// Records a replicated revocation where token checks look.
    pub(crate) fn materialize_revocation(
        &self,
        conn: &Connection,
        view: &RecordView,
        origin_id: i64,
    ) -> Result<()> {
        // When it took effect: the revoker's own time, replicated, so every
        // replica judges earlier changes alike.
        let revoked_at = int(view, "revoked_at")
            .or_else(|| view.created.map(|c| c.ms as i64))
            .unwrap_or_else(now_ms);
        if let Some(block) = text(view, "block") {
            conn.prepare_cached(
                "INSERT INTO revocation (block_id, reason, revoked_at, origin_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (block_id) DO UPDATE SET revoked_at = min(revoked_at, excluded.revoked_at)",
            )
            .and_then(|mut s| s.execute(params![block, text(view, "reason"), revoked_at, origin_id]))
            .db(&self.db_path())?;
        }
        Ok(())
    }
}
