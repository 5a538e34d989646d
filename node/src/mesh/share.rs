//! Sharing and subscribing: which scopes this node offers and follows,
//! and the grants and revocations that travel with them.

use labmesh_crypto::token::Scope;
use labmesh_sync::{Edit, LocalWrite, RecordUid, ScopeId};
use rusqlite::{Connection, OptionalExtension, params};

use super::records;
use super::{ShareInfo, parse_scope};
use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::time::now_ms;

impl Instance {
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
        let revoked: Vec<(String, Option<String>, i64)> = tx
            .prepare("SELECT block_id, reason, revoked_at FROM revocation")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .db(&db)?;
        let mut writes = Vec::new();
        for text in grants {
            let Ok(token) = labmesh_crypto::Token::from_text(&text) else {
                continue;
            };
            if !concerns(token.scope(), &scope) {
                continue;
            }
            let uid = RecordUid::new(&format!("g{}", &token.id().to_string()[..63]))
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            writes.push(LocalWrite {
                scope: scope.clone(),
                uid,
                edits: records::grant_edits(&text),
            });
        }
        for (block, reason, at) in revoked {
            // Only blocks this node knows to concern the scope: a revocation
            // of something unknown here changes nothing for its replicas.
            match self.scope_of_block(&tx, &block)? {
                Some(granted) if concerns(&granted, &scope) => {}
                _ => continue,
            }
            let uid = RecordUid::new(&format!("r{}", &block[..63.min(block.len())]))
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            writes.push(LocalWrite {
                scope: scope.clone(),
                uid,
                edits: records::revocation_edits(&block, reason.as_deref(), at),
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

    /// Subscribes to every scope of `owner` this node holds a token for
    /// (grants arrive in the hello of a first `labmesh sync`, or by
    /// `labmesh token add`). Returns the scopes.
    pub fn subscribe_granted(&self, owner: &str) -> Result<Vec<ScopeId>> {
        let owner_key = self.resolve_peer(owner)?;
        let texts: Vec<String> = self
            .conn
            .prepare("SELECT text FROM token WHERE kind = 'received' AND root = ?1 AND holder = ?2")
            .and_then(|mut s| {
                s.query_map(params![owner_key.to_string(), self.peer_id], |r| r.get(0))?
                    .collect()
            })
            .db(&self.db_path())?;
        let mut scopes: Vec<String> = Vec::new();
        for text in texts {
            let Ok(token) = labmesh_crypto::Token::from_text(&text) else {
                continue;
            };
            let scope = match token.scope() {
                Scope::Instance => "instance".to_string(),
                Scope::Collection(uid) => format!("collection:{}", uid.as_str()),
                // Artifact and registry grants are not sync scopes.
                _ => continue,
            };
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "this node holds no token of {owner} for an instance or a collection; \
                 `labmesh sync --peer {owner}` collects grants it made, `labmesh token add` takes one given to you, \
                 or name the scope: `labmesh subscribe {owner} collection:<uid>`"
            )));
        }
        scopes.iter().map(|s| self.subscribe(owner, s)).collect()
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
                        (SELECT count(*) FROM sync_document d WHERE d.scope = s.scope AND d.kind IN ('artifact', 'collection')),
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

    /// Writes a write grant into the scopes of this node it concerns, so
    /// every replica judges the holder's changes from the grant itself.
    pub(crate) fn share_grant(
        &self,
        conn: &Connection,
        token: &labmesh_crypto::Token,
    ) -> Result<()> {
        let id = token.id().to_string();
        self.write_to_covered_scopes(
            conn,
            Some(token.scope()),
            &format!("g{}", &id[..63]),
            records::grant_edits(&token.to_text()),
        )
    }

    /// Writes a revocation into the scopes of this node the revoked block
    /// concerns (all of them if the block is not known here).
    pub(crate) fn share_revocation(
        &self,
        conn: &Connection,
        block_id: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        let revoked_at: i64 = conn
            .query_row(
                "SELECT revoked_at FROM revocation WHERE block_id = ?1",
                [block_id],
                |r| r.get(0),
            )
            .optional()
            .db(&self.db_path())?
            .unwrap_or_else(now_ms);
        let scope = self.scope_of_block(conn, block_id)?;
        let edits = records::revocation_edits(block_id, reason, revoked_at);
        self.write_to_covered_scopes(
            conn,
            scope.as_ref(),
            &format!("r{}", &block_id[..63.min(block_id.len())]),
            edits,
        )
    }

    /// The scope a block of a token known here grants.
    fn scope_of_block(&self, conn: &Connection, block_id: &str) -> Result<Option<Scope>> {
        let texts: Vec<String> = conn
            .prepare_cached("SELECT text FROM token")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        Ok(texts
            .iter()
            .filter_map(|t| labmesh_crypto::Token::from_text(t).ok())
            .flat_map(|t| t.blocks().to_vec())
            .find(|b| b.id().to_string() == block_id)
            .map(|b| b.body().scope.clone()))
    }

    /// Writes a record into this node's own shared scopes that `scope`
    /// covers (every one for `None`).
    fn write_to_covered_scopes(
        &self,
        conn: &Connection,
        scope: Option<&Scope>,
        uid: &str,
        edits: Vec<Edit>,
    ) -> Result<()> {
        if !self.shares_anything(conn)? {
            return Ok(());
        }
        let scopes: Vec<String> = conn
            .prepare_cached("SELECT scope FROM share WHERE subscribed_from IS NULL")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        let uid = RecordUid::new(uid).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let mut writes = Vec::new();
        for s in scopes {
            let sync_scope = parse_scope(&s)?;
            if scope.is_none_or(|t| concerns(t, &sync_scope)) {
                writes.push(LocalWrite {
                    scope: sync_scope,
                    uid: uid.clone(),
                    edits: edits.clone(),
                });
            }
        }
        self.write_shared(conn, writes)
    }
}

/// Whether a token scope matters to the replicas of a sync scope: it
/// grants something there.
pub(crate) fn concerns(token_scope: &Scope, sync_scope: &ScopeId) -> bool {
    let Some(target) = super::access::token_scope(sync_scope) else {
        return false;
    };
    token_scope.covers(&target, &labmesh_crypto::token::NoMembership)
}
