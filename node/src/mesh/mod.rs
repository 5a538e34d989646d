//! The node side of sync: it drives `labmesh_sync`'s engine over SQLite.
//!
//! - `store`: the engine's reads, over the sync tables.
//! - `records`: records as documents, documents back as rows.
//! - `access`: read and write rights from capability tokens.
//! - here: applying the engine's effects in the caller's transaction,
//!   local writes of shared records, sharing, conflicts.
//!
//! Records that are not in a shared scope never reach the engine: the
//! only cost a save of an unshared record pays is one indexed look-up in
//! `share`.

pub mod access;
pub mod records;
pub mod session;
pub mod status;
pub mod store;

use std::cell::RefCell;

use labmesh_sync::{
    Config, Edit, Effect, Engine, Event, FieldValue, LocalWrite, Outgoing, Output, RecordDoc,
    RecordUid, ScopeId,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::time::now_ms;
use access::NodeAccess;
use records::{artifact_edits, collection_edits, kind_of};
use store::SqlStore;

/// Events kept in `sync_event` for `labmesh status`.
const EVENTS_KEPT: i64 = 1000;

/// A scope this node shares or subscribes to.
#[derive(Clone, Debug, Serialize)]
pub struct ShareInfo {
    pub scope: String,
    pub owner: String,
    /// The peer this node subscribes through (`None`: its own scope).
    pub subscribed_from: Option<String>,
    pub records: u64,
    pub conflicted: u64,
}

/// A record with concurrently written values.
#[derive(Clone, Debug, Serialize)]
pub struct ConflictInfo {
    pub scope: String,
    pub uid: String,
    pub field: String,
    /// Every value written concurrently, rendered as text.
    pub values: Vec<String>,
    /// The value every replica shows until someone resolves.
    pub winner: String,
}

/// Shared writes collected by `batch_shared`.
#[derive(Default)]
pub struct Pending(pub RefCell<Option<Vec<LocalWrite>>>);

/// Messages local writes produced, for a daemon to send (a CLI process
/// has no connections; peers catch up through anti-entropy).
#[derive(Default)]
pub struct Outbox(pub RefCell<Vec<Outgoing>>);

pub(crate) fn parse_scope(text: &str) -> Result<ScopeId> {
    ScopeId::new(text.trim()).map_err(|e| Error::InvalidArgument(format!("{e}")))
}

fn field_text(v: &FieldValue) -> String {
    match v {
        FieldValue::Null => "null".into(),
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::F64(f) => f.to_string(),
        FieldValue::Str(s) | FieldValue::Text(s) => s.clone(),
        FieldValue::Bytes(b) => format!("{} bytes", b.len()),
    }
}

impl Instance {
    /// The sync engine of this node, resuming from the stored feed head.
    pub fn sync_engine(&self, conn: &Connection) -> Result<Engine> {
        let key = self.node_key()?;
        Engine::new(key, Config::default(), &SqlStore { conn })
            .map_err(|e| Error::InvalidArgument(format!("sync store: {e}")))
    }

    /// Access decisions as of now.
    pub fn sync_access(&self, conn: &Connection) -> Result<NodeAccess> {
        NodeAccess::load(self, conn)
    }

    /// Applies an engine output's effects in `conn`'s transaction, logs its
    /// events, and returns the messages to send.
    pub fn apply_sync_output(&self, conn: &Connection, output: Output) -> Result<Vec<Outgoing>> {
        let db = self.db_path();
        let mut artifacts_arrived = false;
        for effect in output.effects {
            match effect {
                Effect::PutDocument {
                    scope,
                    uid,
                    doc,
                    view,
                    heads,
                    digest,
                    bucket,
                } => {
                    let old: Option<(Vec<u8>, i64)> = conn
                        .prepare_cached("SELECT digest, bucket FROM sync_document WHERE scope = ?1 AND uid = ?2")
                        .and_then(|mut s| s.query_row([scope.as_str(), uid.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                        .db(&db)?;
                    if let Some((old_digest, old_bucket)) = old {
                        toggle_bucket(conn, &scope, old_bucket, &old_digest).db(&db)?;
                    }
                    toggle_bucket(conn, &scope, bucket as i64, &digest).db(&db)?;
                    let kind = kind_of(&view);
                    let conflicted = (!view.conflicted.is_empty())
                        .then(|| serde_json::to_string(&view.conflicted).unwrap_or_default());
                    let heads = heads.concat();
                    conn.prepare_cached(
                        "INSERT INTO sync_document (scope, uid, doc, heads, digest, bucket, kind, conflicted)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (scope, uid) DO UPDATE SET doc = excluded.doc, heads = excluded.heads,
                             digest = excluded.digest, bucket = excluded.bucket, kind = excluded.kind,
                             conflicted = excluded.conflicted",
                    )
                    .and_then(|mut s| s.execute(params![scope.as_str(), uid.as_str(), doc, heads, digest.to_vec(), bucket as i64, kind, conflicted]))
                    .db(&db)?;
                    match kind.as_str() {
                        "artifact" => {
                            self.materialize_artifact(conn, uid.as_str(), &view)?;
                            artifacts_arrived = true;
                        }
                        "collection" => self.materialize_collection(conn, uid.as_str(), &view)?,
                        "revocation" => {
                            let origin = records::text(&view, "origin").unwrap_or_default();
                            let origin_id = if origin.is_empty() {
                                self.self_node_id
                            } else {
                                self.node_id_for(conn, &origin)?
                            };
                            self.materialize_revocation(conn, &view, origin_id)?;
                        }
                        _ => {}
                    }
                }
                Effect::StoreBatch {
                    scope,
                    origin,
                    first_seq,
                    last_seq,
                    bytes,
                } => {
                    conn.prepare_cached(
                        "INSERT OR IGNORE INTO sync_batch (scope, origin, last_seq, first_seq, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .and_then(|mut s| s.execute(params![scope.as_str(), origin.as_bytes().as_slice(), last_seq as i64, first_seq as i64, bytes]))
                    .db(&db)?;
                }
                Effect::SetMark { scope, origin, seq } => {
                    conn.prepare_cached(
                        "INSERT INTO sync_mark (scope, origin, seq) VALUES (?1, ?2, ?3)
                         ON CONFLICT (scope, origin) DO UPDATE SET seq = max(seq, excluded.seq)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            scope.as_str(),
                            origin.as_bytes().as_slice(),
                            seq as i64
                        ])
                    })
                    .db(&db)?;
                }
                Effect::LocalHead { seq, hlc } => {
                    conn.prepare_cached(
                        "INSERT INTO sync_head (id, seq, hlc) VALUES (1, ?1, ?2)
                         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hlc = excluded.hlc",
                    )
                    .and_then(|mut s| s.execute(params![seq as i64, hlc.to_bytes().to_vec()]))
                    .db(&db)?;
                }
            }
        }
        if artifacts_arrived {
            self.complete_collections(conn)?;
        }
        self.log_events(conn, &output.events)?;
        Ok(output.messages)
    }

    /// Links members that arrived after their collection.
    fn complete_collections(&self, conn: &Connection) -> Result<()> {
        let db = self.db_path();
        let incomplete: Vec<(i64, String)> = conn
            .prepare_cached(
                "SELECT c.id, c.uid FROM collection c
                 WHERE c.n_artifacts > (SELECT count(*) FROM collection_artifact WHERE collection_id = c.id)",
            )
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .db(&db)?;
        for (id, uid) in incomplete {
            let doc: Option<Vec<u8>> = conn
                .prepare_cached("SELECT doc FROM sync_document WHERE uid = ?1 LIMIT 1")
                .and_then(|mut s| s.query_row([&uid], |r| r.get(0)).optional())
                .db(&db)?;
            if let Some(view) = doc.and_then(|d| RecordDoc::load(&d).ok()).map(|d| d.view()) {
                let members: Vec<String> = records::text(&view, "members")
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                self.link_collection_members(conn, id, &members)?;
            }
        }
        Ok(())
    }

    fn log_events(&self, conn: &Connection, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let db = self.db_path();
        let mut insert = conn
            .prepare_cached("INSERT INTO sync_event (at, kind, peer, scope, detail) VALUES (?1, ?2, ?3, ?4, ?5)")
            .db(&db)?;
        for e in events {
            let (kind, peer, scope, detail) = match e {
                Event::Rejected {
                    origin,
                    scope,
                    uid,
                    reason,
                } => (
                    "rejected",
                    Some(origin.to_string()),
                    Some(scope.to_string()),
                    format!(
                        "{reason:?} {}",
                        uid.as_ref().map(|u| u.as_str()).unwrap_or("")
                    ),
                ),
                Event::ClockAhead { origin, ahead_ms } => (
                    "clock_ahead",
                    Some(origin.to_string()),
                    None,
                    format!("{ahead_ms} ms ahead"),
                ),
                Event::Denied { peer, scope } => (
                    "denied",
                    Some(peer.to_string()),
                    Some(scope.to_string()),
                    "refused to serve".into(),
                ),
                Event::RefusedBy { peer, scope } => (
                    "refused_by",
                    Some(peer.to_string()),
                    Some(scope.to_string()),
                    "peer refused".into(),
                ),
                Event::BadMessage { peer, error } => (
                    "bad_message",
                    Some(peer.to_string()),
                    None,
                    error.to_string(),
                ),
                Event::StoreFailed { error } => ("store_failed", None, None, error.clone()),
                Event::Bootstrapped { scope, records } => (
                    "bootstrapped",
                    None,
                    Some(scope.to_string()),
                    format!("{records} records"),
                ),
                Event::Repaired { scope, records } => (
                    "repaired",
                    None,
                    Some(scope.to_string()),
                    format!("{records} records"),
                ),
            };
            insert
                .execute(params![now_ms(), kind, peer, scope, detail])
                .db(&db)?;
        }
        conn.execute(
            "DELETE FROM sync_event WHERE id <= (SELECT max(id) FROM sync_event) - ?1",
            [EVENTS_KEPT],
        )
        .db(&db)?;
        Ok(())
    }

    /// Runs `f` with shared writes collected, then writes them all in one
    /// engine call (one signed batch per scope) in `conn`'s transaction.
    pub(crate) fn batch_shared<T>(
        &self,
        conn: &Connection,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let outer = self.pending.0.borrow().is_some();
        if !outer {
            *self.pending.0.borrow_mut() = Some(Vec::new());
        }
        let result = f();
        if outer {
            return result;
        }
        let writes = self.pending.0.borrow_mut().take().unwrap_or_default();
        let value = result?;
        self.write_shared(conn, writes)?;
        Ok(value)
    }

    /// Writes local edits of shared records inside `conn`'s transaction.
    pub(crate) fn write_shared(&self, conn: &Connection, writes: Vec<LocalWrite>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        if let Some(pending) = self.pending.0.borrow_mut().as_mut() {
            pending.extend(writes);
            return Ok(());
        }
        let mut engine = self.sync_engine(conn)?;
        let access = self.sync_access(conn)?;
        let store = SqlStore { conn };
        let written = engine
            .write(now_ms() as u64, &writes, &store, &access)
            .map_err(|e| Error::InvalidArgument(format!("sync: {e}")))?;
        let messages = self.apply_sync_output(conn, written.output)?;
        self.outbox.0.borrow_mut().extend(messages);
        Ok(())
    }

    /// Whether this node shares or subscribes to anything (one look-up).
    fn shares_anything(&self, conn: &Connection) -> Result<bool> {
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM share)")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .db(&self.db_path())
    }

    /// The shared scopes an artifact belongs to: scopes that already hold
    /// its document (also other nodes' scopes we subscribe to), this node's
    /// shared instance (for its own records), and shared collections it is in.
    fn scopes_of_artifact(&self, conn: &Connection, artifact_id: i64) -> Result<Vec<ScopeId>> {
        let instance_scope = format!("instance:{}", self.instance_uid);
        let scopes: Vec<String> = conn
            .prepare_cached(
                "SELECT d.scope FROM sync_document d JOIN artifact a ON a.uid = d.uid WHERE a.id = ?2
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
                        edits.push(if artifact.is_trashed() {
                            Edit::Tombstone
                        } else {
                            Edit::Restore
                        });
                    }
                    if records::text(&view, "description") != artifact.description {
                        edits.push(match &artifact.description {
                            Some(d) => Edit::set("description", FieldValue::Text(d.clone())),
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

    /// Shares a scope of this node (`instance`, `collection:<uid|key>`):
    /// from now on its records have documents and sync to peers allowed to
    /// read it. Existing records are written in (one transaction).
    pub fn share(&self, scope: &str) -> Result<ShareInfo> {
        let scope = self.canonical_scope(scope)?;
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        tx.execute(
            "INSERT INTO share (scope, owner, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (scope) DO NOTHING",
            params![scope.as_str(), self.peer_id, now_ms()],
        )
        .db(&db)?;
        // Backfill: every record of the scope gets its document.
        let (artifact_ids, collection_ids): (Vec<i64>, Vec<i64>) =
            if scope.as_str().starts_with("instance:") {
                (
                    tx.prepare("SELECT id FROM artifact WHERE origin_id = ?1 ORDER BY id")
                        .and_then(|mut s| s.query_map([self.self_node_id], |r| r.get(0))?.collect())
                        .db(&db)?,
                    tx.prepare("SELECT id FROM collection WHERE origin_id = ?1 ORDER BY id")
                        .and_then(|mut s| s.query_map([self.self_node_id], |r| r.get(0))?.collect())
                        .db(&db)?,
                )
            } else {
                let stem = &scope.as_str()["collection:".len()..];
                let ids: Vec<i64> = tx
                .prepare(
                    "SELECT id FROM collection WHERE substr(uid, 1, 16) = ?1 ORDER BY created_at",
                )
                .and_then(|mut s| s.query_map([stem], |r| r.get(0))?.collect())
                .db(&db)?;
                (Vec::new(), ids)
            };
        self.batch_shared(&tx, || {
            for id in artifact_ids {
                self.share_artifact(&tx, id)?;
            }
            for id in collection_ids {
                self.share_collection(&tx, id)?;
            }
            Ok(())
        })?;
        // Grants and revocations issued before the share travel with it.
        let grants: Vec<String> = tx
            .prepare("SELECT text FROM token WHERE kind = 'issued' AND role IN ('write', 'admin')")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&db)?;
        let revoked: Vec<(String, Option<String>)> = tx
            .prepare("SELECT block_id, reason FROM revocation WHERE origin_id = ?1")
            .and_then(|mut s| {
                s.query_map([self.self_node_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .db(&db)?;
        let mut writes = Vec::new();
        for text in grants {
            let Ok(token) = labmesh_crypto::Token::from_text(&text) else {
                continue;
            };
            let uid = RecordUid::new(&format!("g{}", &token.id().to_string()[..63]))
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            writes.push(LocalWrite {
                scope: scope.clone(),
                uid,
                edits: records::grant_edits(&text),
            });
        }
        for (block, reason) in revoked {
            let uid = RecordUid::new(&format!("r{}", &block[..63.min(block.len())]))
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            writes.push(LocalWrite {
                scope: scope.clone(),
                uid,
                edits: records::revocation_edits(&block, reason.as_deref()),
            });
        }
        self.write_shared(&tx, writes)?;
        tx.commit().db(&db)?;
        self.shares()?
            .into_iter()
            .find(|s| s.scope == scope.as_str())
            .ok_or_else(|| Error::InvalidArgument("the share vanished".into()))
    }

    /// Subscribes to `scope` of the node `owner` (its PeerId or name):
    /// records of that scope arriving from peers are accepted and kept.
    /// `scope` is `instance` (the owner's whole instance, once its uid is
    /// known from a hello), `instance:<uid>`, or `collection:<uid|stem>`.
    pub fn subscribe(&self, owner: &str, scope: &str) -> Result<ScopeId> {
        let owner_key = self.resolve_peer(owner)?;
        let scope = scope.trim();
        let scope = if scope == "instance" {
            let uid: Option<String> = self
                .conn
                .query_row(
                    "SELECT instance_uid FROM node WHERE peer_id = ?1",
                    [owner_key.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .db(&self.db_path())?
                .flatten();
            let uid = uid.ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{owner}'s instance uid is not known yet: connect once (`labmesh sync --peer {owner}`) \
                     or give the scope as instance:<uid>"
                ))
            })?;
            parse_scope(&format!("instance:{uid}"))?
        } else if let Some(uid) = scope.strip_prefix("collection:") {
            // Any version's uid names the family: its 16-character stem.
            parse_scope(&format!("collection:{}", &uid[..uid.len().min(16)]))?
        } else {
            parse_scope(scope)?
        };
        self.conn
            .execute(
                "INSERT INTO share (scope, owner, subscribed_from, created_at) VALUES (?1, ?2, ?2, ?3)
                 ON CONFLICT (scope) DO UPDATE SET subscribed_from = excluded.subscribed_from",
                params![scope.as_str(), owner_key.to_string(), now_ms()],
            )
            .db(&self.db_path())?;
        self.node_id_for(&self.conn, &owner_key.to_string())?;
        Ok(scope)
    }

    /// Maps a user's scope to the sync scope: `instance` -> this instance,
    /// `collection:<uid|prefix|key>` -> the collection's family stem.
    pub fn canonical_scope(&self, text: &str) -> Result<ScopeId> {
        let text = text.trim();
        if text == "instance" {
            return parse_scope(&format!("instance:{}", self.instance_uid));
        }
        if let Some(q) = text.strip_prefix("collection:") {
            let c = self.collection(q)?;
            return parse_scope(&format!("collection:{}", &c.uid[..16]));
        }
        if text.starts_with("instance:") {
            return parse_scope(text);
        }
        Err(Error::InvalidArgument(format!(
            "cannot share {text:?}: share `instance` or `collection:<uid|key>`"
        )))
    }

    /// Scopes this node shares or subscribes to.
    pub fn shares(&self) -> Result<Vec<ShareInfo>> {
        self.conn
            .prepare_cached(
                "SELECT s.scope, s.owner, s.subscribed_from,
                        (SELECT count(*) FROM sync_document d WHERE d.scope = s.scope),
                        (SELECT count(*) FROM sync_document d WHERE d.scope = s.scope AND d.conflicted IS NOT NULL)
                 FROM share s ORDER BY s.created_at",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(ShareInfo {
                        scope: r.get(0)?,
                        owner: r.get(1)?,
                        subscribed_from: r.get(2)?,
                        records: r.get::<_, i64>(3)? as u64,
                        conflicted: r.get::<_, i64>(4)? as u64,
                    })
                })?
                .collect()
            })
            .db(&self.db_path())
    }

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
            // Keep the field's type: text stays text, numbers stay numbers.
            let typed = match &conflict.winner {
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
            .map_err(Error::InvalidArgument)?;
            writes.push(LocalWrite {
                scope: parse_scope(&scope)?,
                uid: record.clone(),
                edits: vec![Edit::set(field, typed)],
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

    /// Writes a write grant into every scope this node shares.
    pub(crate) fn share_grant(
        &self,
        conn: &Connection,
        token: &labmesh_crypto::Token,
    ) -> Result<()> {
        let id = token.id().to_string();
        self.write_to_own_scopes(
            conn,
            &format!("g{}", &id[..63]),
            records::grant_edits(&token.to_text()),
        )
    }

    /// Writes a revocation into every scope this node shares.
    pub(crate) fn share_revocation(
        &self,
        conn: &Connection,
        block_id: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        let edits = records::revocation_edits(block_id, reason);
        self.write_to_own_scopes(
            conn,
            &format!("r{}", &block_id[..63.min(block_id.len())]),
            edits,
        )
    }

    fn write_to_own_scopes(&self, conn: &Connection, uid: &str, edits: Vec<Edit>) -> Result<()> {
        if !self.shares_anything(conn)? {
            return Ok(());
        }
        let scopes: Vec<String> = conn
            .prepare_cached("SELECT scope FROM share WHERE subscribed_from IS NULL")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        let uid = RecordUid::new(uid).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let writes = scopes
            .iter()
            .map(|s| {
                Ok(LocalWrite {
                    scope: parse_scope(s)?,
                    uid: uid.clone(),
                    edits: edits.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.write_shared(conn, writes)
    }

    /// Messages produced by local writes since the last call.
    pub fn take_outbox(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.outbox.0.borrow_mut())
    }
}

/// XORs a record digest into a scope's bucket digest.
fn toggle_bucket(
    conn: &Connection,
    scope: &ScopeId,
    bucket: i64,
    digest: &[u8],
) -> rusqlite::Result<()> {
    let old: Option<Vec<u8>> = conn
        .prepare_cached("SELECT digest FROM sync_bucket WHERE scope = ?1 AND bucket = ?2")?
        .query_row(params![scope.as_str(), bucket], |r| r.get(0))
        .optional()?;
    let mut new = old.unwrap_or_else(|| vec![0; 16]);
    new.resize(16, 0);
    for (n, d) in new.iter_mut().zip(digest) {
        *n ^= d;
    }
    conn.prepare_cached(
        "INSERT INTO sync_bucket (scope, bucket, digest) VALUES (?1, ?2, ?3)
         ON CONFLICT (scope, bucket) DO UPDATE SET digest = excluded.digest",
    )?
    .execute(params![scope.as_str(), bucket, new])
    .map(|_| ())
}

/// Small look-ups on the sync tables.
struct SqlStoreExt;

impl SqlStoreExt {
    fn has_document(conn: &Connection, scope: &ScopeId, uid: &RecordUid) -> rusqlite::Result<bool> {
        conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sync_document WHERE scope = ?1 AND uid = ?2)",
        )?
        .query_row([scope.as_str(), uid.as_str()], |r| r.get(0))
    }
}
