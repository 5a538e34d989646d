//! Local writes of shared records: which shared scopes a record belongs
//! to, and the edits that bring its documents up to date with its row.

use labmesh_sync::{Edit, FieldValue, LocalWrite, RecordDoc, RecordUid, ScopeId};
use rusqlite::{Connection, params};

use super::records::{self, artifact_edits, collection_edits};
use super::store::SqlStore;
use super::{SqlStoreExt, parse_scope};
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;

impl Instance {
    /// The shared scopes an artifact belongs to: scopes that already hold
    /// its document (also other nodes' scopes we subscribe to), this node's
    /// shared instance (for its own records), and shared collections it is in.
    fn scopes_of_artifact(&self, conn: &Connection, artifact_id: i64) -> Result<Vec<ScopeId>> {
        let instance_scope = format!("instance:{}", self.instance_uid);
        let scopes: Vec<String> = conn
            .prepare_cached(
                "SELECT d.scope FROM sync_document d WHERE d.uid = (SELECT uid FROM artifact WHERE id = ?2)
                 UNION
                 SELECT s.scope FROM share s JOIN artifact a ON a.id = ?2
                 WHERE s.subscribed_from IS NULL AND s.scope = ?1 AND a.origin_id = ?3
                 UNION
                 SELECT s.scope FROM share s JOIN collection c ON s.scope = 'collection:' || substr(c.uid, 1, 16)
                 JOIN collection_artifact ca ON ca.collection_id = c.id
                 WHERE s.subscribed_from IS NULL AND ca.artifact_id = ?2",
            )
            .and_then(|mut s| s.query_map(params![instance_scope, artifact_id, self.self_node_id], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        scopes.iter().map(|s| parse_scope(s)).collect()
    }

    /// Writes an artifact's document into every shared scope it belongs to
    /// (first write: all fields; later: the changed state).
    pub(crate) fn share_artifact(&self, conn: &Connection, artifact_id: i64) -> Result<()> {
        if !self.shares_anything(conn)? {
            return Ok(());
        }
        let scopes = self.scopes_of_artifact(conn, artifact_id)?;
        if scopes.is_empty() {
            return Ok(());
        }
        let artifact = self.artifact_by_id(artifact_id)?;
        let creator: String = conn
            .query_row(
                "SELECT u.uid FROM artifact a JOIN user u ON u.id = a.created_by WHERE a.id = ?1",
                [artifact_id],
                |r| r.get(0),
            )
            .db(&self.db_path())?;
        let uid =
            RecordUid::new(&artifact.uid).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let mut writes = Vec::new();
        for scope in scopes {
            let current = labmesh_sync::Store::document(&SqlStore { conn }, &scope, &uid)
                .map_err(|e| Error::InvalidArgument(format!("sync store: {e}")))?
                .and_then(|d| RecordDoc::load(&d).ok())
                .map(|d| d.view());
            let edits = match current {
                None => {
                    let mut edits = artifact_edits(&artifact, &creator);
                    if artifact.kind == crate::artifact::ArtifactKind::Folder {
                        // Peers fetch the manifest first: they need its size.
                        let manifest =
                            crate::hash::manifest::Manifest::new(self.folder_entries(&artifact)?);
                        edits.push(Edit::set(
                            "manifest_size",
                            FieldValue::Int(manifest.to_text().len() as i64),
                        ));
                    }
                    edits
                }
                // Only what changed: a description edit must not also
                // "restore" a record someone trashed concurrently.
                Some(view) => {
                    let mut edits = Vec::new();
                    if view.deleted != artifact.is_trashed() {
                        if let Some(at) = artifact.trashed_at {
                            // Replicated, so every replica's row says the same.
                            edits.push(Edit::set("trashed_at", FieldValue::Int(at)));
                            edits.push(Edit::Tombstone);
                        } else {
                            edits.push(Edit::Restore);
                        }
                    }
                    if records::text(&view, "description") != artifact.description {
                        edits.push(match &artifact.description {
                            // A splice of what differs: concurrent edits of
                            // different parts of a description interleave.
                            Some(d) => Edit::update_text("description", d.clone()),
                            None => Edit::Delete("description".into()),
                        });
                    }
                    edits
                }
            };
            if !edits.is_empty() {
                writes.push(LocalWrite {
                    scope,
                    uid: uid.clone(),
                    edits,
                });
            }
        }
        self.write_shared(conn, writes)
    }

    /// Writes a collection version (and its members) into the shared scopes
    /// that contain it.
    pub(crate) fn share_collection(&self, conn: &Connection, collection_id: i64) -> Result<()> {
        if !self.shares_anything(conn)? {
            return Ok(());
        }
        let db = self.db_path();
        let c = self.collection_by_id(collection_id)?;
        let instance_scope = format!("instance:{}", self.instance_uid);
        let family_scope = format!("collection:{}", &c.uid[..16]);
        let scopes: Vec<String> = conn
            .prepare_cached(
                "SELECT scope FROM share WHERE subscribed_from IS NULL AND scope IN (?1, ?2)",
            )
            .and_then(|mut s| {
                s.query_map(params![instance_scope, family_scope], |r| r.get(0))?
                    .collect()
            })
            .db(&db)?;
        if scopes.is_empty() {
            return Ok(());
        }
        let members: Vec<(i64, String)> = conn
            .prepare_cached(
                "SELECT a.id, a.uid FROM collection_artifact ca JOIN artifact a ON a.id = ca.artifact_id
                 WHERE ca.collection_id = ?1 ORDER BY ca.position",
            )
            .and_then(|mut s| s.query_map([collection_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .db(&db)?;
        // Members first, so a subscriber can link them when the collection arrives.
        for (artifact_id, _) in &members {
            self.share_artifact(conn, *artifact_id)?;
        }
        let (handle, creator): (String, String) = conn
            .query_row(
                "SELECT u.handle, u.uid FROM collection c JOIN user u ON u.id = c.created_by WHERE c.id = ?1",
                [collection_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .db(&db)?;
        let member_uids: Vec<String> = members.into_iter().map(|m| m.1).collect();
        let uid = RecordUid::new(&c.uid).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let mut writes = Vec::new();
        for scope in scopes {
            let scope = parse_scope(&scope)?;
            if !SqlStoreExt::has_document(conn, &scope, &uid).db(&db)? {
                writes.push(LocalWrite {
                    scope,
                    uid: uid.clone(),
                    edits: collection_edits(&c, &member_uids, &handle, &creator, &self.peer_id),
                });
            }
        }
        self.write_shared(conn, writes)
    }
}
