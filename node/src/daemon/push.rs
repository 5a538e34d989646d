//! Changes made by other processes (the CLI writes to the instance while
//! the daemon runs): seen as SQLite's `data_version` moving, they are
//! pushed to connected readers at once — the new signed batches of this
//! node's feed, announced by gossip to the rest of the mesh — and new
//! content locations follow. This is what makes an edit on one node show
//! up on a connected subscriber in tens of milliseconds rather than at the
//! next anti-entropy round.

use labmesh_sync::feed::SignedBatch;
use labmesh_sync::wire::Message;
use labmesh_sync::wire::limits::MAX_BATCHES_PER_MESSAGE;
use labmesh_sync::{Access, ScopeId, Store};
use rusqlite::OptionalExtension;

use super::envelope::Envelope;
use super::node::Daemon;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::mesh::access::SessionAccess;
use crate::mesh::parse_scope;
use crate::mesh::store::SqlStore;

/// Bytes of batches per pushed message (the transport takes 4 MiB).
const PUSH_BYTES: usize = 1 << 20;

/// The last sequence number of this node's own feed.
pub(super) fn own_head(instance: &Instance) -> Result<u64> {
    let seq: Option<i64> = instance
        .connection()
        .query_row("SELECT seq FROM sync_head WHERE id = 1", [], |r| r.get(0))
        .optional()
        .db(&instance.db_path())?;
    Ok(seq.unwrap_or(0).max(0) as u64)
}

/// Changes when another connection commits to the database.
fn data_version(instance: &Instance) -> Result<i64> {
    instance
        .connection()
        .query_row("PRAGMA data_version", [], |r| r.get(0))
        .db(&instance.db_path())
}

/// What the hello says, in short: when it changes, peers get a new one.
fn hello_fingerprint(instance: &Instance) -> Result<String> {
    instance
        .connection()
        .query_row(
            "SELECT (SELECT count(*) || '.' || coalesce(max(created_at), 0) FROM share)
                 || '/' || (SELECT count(*) || '.' || coalesce(max(id), 0) FROM token)
                 || '/' || (SELECT count(*) || '.' || coalesce(sum(revoked_at), 0) FROM revocation)",
            [],
            |r| r.get(0),
        )
        .db(&instance.db_path())
}

impl Daemon<'_> {
    /// Every few milliseconds: did another process change the instance?
    pub(super) async fn on_poll(&mut self) -> Result<()> {
        let version = data_version(&self.instance)?;
        if self.state.data_version == Some(version) {
            return Ok(());
        }
        let first = self.state.data_version.is_none();
        self.state.data_version = Some(version);
        let hello = hello_fingerprint(&self.instance)?;
        let hello_changed = self.state.hello_fingerprint.as_ref() != Some(&hello);
        self.state.hello_fingerprint = Some(hello);
        if first {
            return Ok(());
        }
        self.push_local().await?;
        if hello_changed {
            self.follow_topics().await;
            self.rehello()?;
            // A revocation made by another process (`labmesh revoke`).
            let out = self.session.revalidate_if_revoked(&self.instance)?;
            self.route(out);
        }
        let peers: Vec<_> = self.peers.keys().copied().collect();
        for peer in peers {
            self.send_locations(peer)?;
        }
        Ok(())
    }

    /// Pushes this node's feed batches written since the last push to the
    /// connected peers that may read their scope, and announces the new
    /// marks by gossip.
    async fn push_local(&mut self) -> Result<()> {
        let head = own_head(&self.instance)?;
        if head <= self.pushed_seq {
            return Ok(());
        }
        let me = self.session.id();
        let db = self.instance.db_path();
        let conn = self.instance.connection();
        let base = self.instance.sync_access(conn)?;
        let presented = self.presented.lock().map(|p| p.clone()).unwrap_or_default();
        let access = SessionAccess {
            base: &base,
            presented: &presented,
            arriving: &[],
        };
        let mut announcements = Vec::new();
        let mut outgoing = Vec::new();
        for share in self.instance.shares()? {
            let scope = parse_scope(&share.scope)?;
            let rows: Vec<Vec<u8>> = conn
                .prepare_cached(
                    "SELECT bytes FROM sync_batch WHERE scope = ?1 AND origin = ?2 AND last_seq > ?3
                     ORDER BY last_seq",
                )
                .and_then(|mut s| {
                    s.query_map(
                        rusqlite::params![
                            scope.as_str(),
                            me.as_bytes().as_slice(),
                            self.pushed_seq as i64
                        ],
                        |r| r.get(0),
                    )?
                    .collect()
                })
                .db(&db)?;
            if rows.is_empty() {
                continue;
            }
            let batches: Vec<SignedBatch> = rows
                .iter()
                .filter_map(|b| SignedBatch::decode(b).ok())
                .collect();
            let readers: Vec<_> = self
                .peers
                .iter()
                .filter(|(_, p)| p.scopes.contains(&scope) && access.may_read(&p.key, &scope))
                .map(|(peer, _)| *peer)
                .collect();
            for message in batch_messages(&scope, batches) {
                for peer in &readers {
                    outgoing.push((*peer, message.clone()));
                }
            }
            let marks = SqlStore { conn }
                .marks(&scope)
                .map_err(|e| crate::error::Error::InvalidArgument(format!("sync store: {e}")))?;
            let mine: Vec<_> = marks.into_iter().filter(|(o, _)| *o == me).collect();
            announcements.push((
                scope,
                Message::Announce {
                    scope: parse_scope(&share.scope)?,
                    marks: mine,
                },
            ));
        }
        self.pushed_seq = head;
        for (peer, bytes) in outgoing {
            self.stats.messages_out += 1;
            self.send_to(peer, Envelope::Engine(bytes).encode());
        }
        for (scope, message) in announcements {
            // Nobody listening is fine: connected readers got the batches.
            let _ = self.net.publish(scope.as_str(), message.encode()).await;
        }
        self.touch();
        Ok(())
    }

    /// Subscribes the gossip topics of every scope this node holds.
    pub(super) async fn follow_topics(&mut self) {
        let Ok(shares) = self.instance.shares() else {
            return;
        };
        for share in shares {
            if self.topics.insert(share.scope.clone()) {
                let _ = self.net.subscribe(&share.scope).await;
            }
        }
    }
}

/// `Batches` messages of at most `MAX_BATCHES_PER_MESSAGE` batches and
/// about `PUSH_BYTES` each.
fn batch_messages(scope: &ScopeId, batches: Vec<SignedBatch>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut group: Vec<SignedBatch> = Vec::new();
    let mut bytes = 0;
    let flush = |group: &mut Vec<SignedBatch>, out: &mut Vec<Vec<u8>>| {
        if !group.is_empty() {
            let message = Message::Batches {
                scope: scope.clone(),
                more: false,
                batches: std::mem::take(group),
            };
            out.push(message.encode());
        }
    };
    for batch in batches {
        let len = batch.encoded_len();
        if group.len() == MAX_BATCHES_PER_MESSAGE || (bytes + len > PUSH_BYTES && !group.is_empty())
        {
            flush(&mut group, &mut out);
            bytes = 0;
        }
        bytes += len;
        group.push(batch);
    }
    flush(&mut group, &mut out);
    out
}
