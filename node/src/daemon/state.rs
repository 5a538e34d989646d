//! What the daemon knows of its peers, kept where `labmesh peers` and
//! `labmesh status` read it: who is connected now (`node.connected_since`),
//! and per (scope, peer) when they last exchanged anything and since when
//! their summaries agree (`peer_sync`).
//!
//! "In sync" is judged by the node itself: a peer's anti-entropy summary
//! (BLAKE3 of its marks and of its document buckets) compared with this
//! node's own for the same scope. Equal digests mean equal feeds and equal
//! documents.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use labmesh_crypto::PublicKey;
use labmesh_sync::digest::marks_digest;
use labmesh_sync::wire::Message;
use labmesh_sync::{ScopeId, Store};
use rusqlite::params;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::mesh::store::SqlStore;
use crate::time::now_ms;

/// The wire format's version byte and the kind byte of a summary.
const WIRE_VERSION: u8 = 1;
const SUMMARY_KIND: u8 = 4;

/// How often an unchanged (scope, peer) state is written again, so
/// `status` can tell a quiet link from a dead one without a write per
/// summary.
const REFRESH: Duration = Duration::from_secs(30);

#[derive(Clone, Copy)]
struct Pair {
    equal: bool,
    written: Instant,
}

pub(super) struct SyncState {
    pairs: HashMap<(PublicKey, ScopeId), Pair>,
    /// Whether to persist (the long-running daemon; a one-shot round
    /// records only what it learnt at the end).
    persist: bool,
    /// The database's `data_version` at the last poll.
    pub data_version: Option<i64>,
    /// The hello's inputs at the last poll.
    pub hello_fingerprint: Option<String>,
}

/// If `bytes` is a summary, compares it with this node's own: returns the
/// scope and whether both digests are equal.
pub(super) fn compare_summary(
    instance: &Instance,
    bytes: &[u8],
) -> Result<Option<(ScopeId, bool)>> {
    if bytes.first() != Some(&WIRE_VERSION) || bytes.get(1) != Some(&SUMMARY_KIND) {
        return Ok(None);
    }
    let Ok(Message::Summary {
        scope,
        marks_digest: theirs_marks,
        docs_digest: theirs_docs,
    }) = Message::decode(bytes)
    else {
        return Ok(None);
    };
    let store = SqlStore {
        conn: instance.connection(),
    };
    let store_err = |e| Error::InvalidArgument(format!("sync store: {e}"));
    let marks = store.marks(&scope).map_err(store_err)?;
    let docs = store.bucket_digests(&scope).map_err(store_err)?;
    let equal = marks_digest(&marks) == theirs_marks && docs.root() == theirs_docs;
    Ok(Some((scope, equal)))
}

impl SyncState {
    pub fn new(instance: &Instance, persist: bool) -> Result<SyncState> {
        if persist {
            // A daemon that died left its peers marked connected.
            instance
                .connection()
                .execute("UPDATE node SET connected_since = NULL", [])
                .db(&instance.db_path())?;
        }
        Ok(SyncState {
            pairs: HashMap::new(),
            persist,
            data_version: None,
            hello_fingerprint: None,
        })
    }

    pub fn in_sync(&self, peer: &PublicKey, scope: &ScopeId) -> bool {
        self.pairs
            .get(&(*peer, scope.clone()))
            .is_some_and(|p| p.equal)
    }

    /// A comparison of summaries.
    pub fn observe(&mut self, instance: &Instance, peer: &PublicKey, scope: &ScopeId, equal: bool) {
        let key = (*peer, scope.clone());
        let changed = self.pairs.get(&key).is_none_or(|p| p.equal != equal);
        let stale = self
            .pairs
            .get(&key)
            .is_none_or(|p| p.written.elapsed() > REFRESH);
        self.pairs.insert(
            key,
            Pair {
                equal,
                written: if changed || stale {
                    Instant::now()
                } else {
                    self.pairs[&(*peer, scope.clone())].written
                },
            },
        );
        if self.persist && (changed || stale) {
            let _ = write_pair(instance, peer, scope, equal);
        }
    }

    pub fn connected(&self, instance: &Instance, peer: &PublicKey) {
        if self.persist {
            let _ = instance.connection().execute(
                "UPDATE node SET connected_since = ?1, last_seen = ?1 WHERE peer_id = ?2",
                params![now_ms(), peer.to_string()],
            );
        }
    }

    pub fn disconnected(&mut self, instance: &Instance, peer: &PublicKey) {
        self.pairs.retain(|(p, _), _| p != peer);
        if self.persist {
            let _ = instance.connection().execute(
                "UPDATE node SET connected_since = NULL, last_seen = ?1 WHERE peer_id = ?2",
                params![now_ms(), peer.to_string()],
            );
        }
    }

    /// At the end of a run: a one-shot round records what it learnt; a
    /// daemon marks its peers disconnected.
    pub fn finish(&self, instance: &Instance) {
        if self.persist {
            let _ = instance
                .connection()
                .execute("UPDATE node SET connected_since = NULL", []);
        } else {
            for ((peer, scope), pair) in &self.pairs {
                let _ = write_pair(instance, peer, scope, pair.equal);
            }
        }
    }

    /// (peer name, scope) pairs in or out of sync.
    pub fn pairs(&self, equal: bool, instance: &Instance) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(_, p)| p.equal == equal)
            .map(|((peer, scope), _)| {
                let name = instance
                    .peer_info(peer)
                    .ok()
                    .and_then(|p| p.name)
                    .unwrap_or_else(|| peer.to_string());
                (name, scope.to_string())
            })
            .collect();
        out.sort();
        out
    }
}

fn write_pair(instance: &Instance, peer: &PublicKey, scope: &ScopeId, equal: bool) -> Result<()> {
    let now = now_ms();
    instance
        .connection()
        .execute(
            "INSERT INTO peer_sync (scope, peer_id, last_exchange_at, in_sync_since, differs_since)
             VALUES (?1, ?2, ?3, CASE WHEN ?4 THEN ?3 END, CASE WHEN ?4 THEN NULL ELSE ?3 END)
             ON CONFLICT (scope, peer_id) DO UPDATE SET
                 last_exchange_at = excluded.last_exchange_at,
                 in_sync_since = CASE WHEN ?4 THEN coalesce(peer_sync.in_sync_since, ?3) END,
                 differs_since = CASE WHEN ?4 THEN NULL ELSE coalesce(peer_sync.differs_since, ?3) END",
            params![scope.as_str(), peer.to_string(), now, equal],
        )
        .db(&instance.db_path())?;
    Ok(())
}
