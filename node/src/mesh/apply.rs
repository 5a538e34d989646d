//! Applying the engine's output: its storage effects in the caller's
//! transaction (documents with their rows, batches, marks, the feed head),
//! its events into `sync_event`, and its messages back to the caller.

use labmesh_sync::{Effect, Event, Outgoing, Output, RecordDoc, ScopeId};
use rusqlite::{Connection, OptionalExtension, params};

use super::records::{self, kind_of};
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::time::now_ms;

/// Events kept in `sync_event` for `labmesh status`.
const EVENTS_KEPT: i64 = 1000;

impl Instance {
    /// Applies an engine output's effects in `conn`'s transaction, logs its
    /// events, and returns the messages to send.
    pub fn apply_sync_output(&self, conn: &Connection, output: Output) -> Result<Vec<Outgoing>> {
        let db = self.db_path();
        let mut artifacts_arrived = false;
        // Bucket digests are XORs: fold every change of this output in
        // memory and write each touched bucket once.
        let mut buckets: std::collections::BTreeMap<(ScopeId, i64), [u8; 16]> =
            std::collections::BTreeMap::new();
        let mut toggle = |scope: &ScopeId, bucket: i64, digest: &[u8]| {
            let acc = buckets.entry((scope.clone(), bucket)).or_insert([0; 16]);
            for (a, d) in acc.iter_mut().zip(digest) {
                *a ^= d;
            }
        };
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
                        toggle(&scope, old_bucket, &old_digest);
                    }
                    toggle(&scope, bucket as i64, &digest);
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
                Effect::RaiseClock { hlc } => {
                    // HLC bytes sort like clocks, so max() raises it.
                    conn.prepare_cached(
                        "INSERT INTO sync_head (id, seq, hlc) VALUES (1, 0, ?1)
                         ON CONFLICT (id) DO UPDATE SET hlc = max(hlc, excluded.hlc)",
                    )
                    .and_then(|mut s| s.execute(params![hlc.to_bytes().to_vec()]))
                    .db(&db)?;
                }
                Effect::RefuseChanges { scope, changes } => {
                    let mut insert = conn
                        .prepare_cached(
                            "INSERT OR IGNORE INTO sync_refused (scope, change) VALUES (?1, ?2)",
                        )
                        .db(&db)?;
                    for change in changes {
                        insert
                            .execute(params![scope.as_str(), change.as_slice()])
                            .db(&db)?;
                    }
                }
            }
        }
        for ((scope, bucket), delta) in &buckets {
            if delta.iter().any(|b| *b != 0) {
                toggle_bucket(conn, scope, *bucket, delta).db(&db)?;
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
                    change: _,
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
                Event::Oversized { scope, uid, bytes } => (
                    "oversized",
                    None,
                    Some(scope.to_string()),
                    format!("{uid}: {bytes} bytes, too large to serve in a snapshot or repair"),
                ),
                Event::Rebuilt {
                    scope,
                    records,
                    changes,
                } => (
                    "rebuilt",
                    None,
                    Some(scope.to_string()),
                    format!("{records} records without {changes} revoked changes"),
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
