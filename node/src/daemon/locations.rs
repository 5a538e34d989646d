//! The location table syncs: like git-annex's whereis, each node tells its
//! peers which content it and others hold, so a fetch can go to a second
//! holder when the first is away.
//!
//! A node sends a peer only locations of content referenced by records of
//! scopes the peer may read (nothing about other data leaks), first in
//! full after the hello, then as deltas (`seen_at` newer than what it sent
//! before). A receiver keeps locations only for content of records it has,
//! never takes a peer's word about this node itself, and never refreshes
//! an existing row from hearsay, so locations do not bounce back and forth.

use labmesh_crypto::PublicKey;
use labmesh_sync::Access;
use labmesh_sync::net::PeerId;
use rusqlite::params;

use super::envelope::{Envelope, Location, MAX_LOCATIONS};
use super::node::Daemon;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::mesh::access::SessionAccess;
use crate::time::now_ms;

impl Instance {
    /// Locations of content in `scope`'s records seen after `since`, oldest
    /// first: (hash, holder, seen_at).
    fn locations_in_scope(&self, scope: &str, since: i64) -> Result<Vec<(String, String, i64)>> {
        let mut rows: Vec<(String, String, i64)> = self
            .conn
            .prepare_cached(
                "SELECT l.hash, l.peer_id, l.seen_at FROM sync_document d
                 JOIN artifact a ON a.uid = d.uid
                 JOIN location l ON l.hash = a.hash
                 WHERE d.scope = ?1 AND l.seen_at > ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![scope, since], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .db(&self.db_path())?;
        rows.sort_by_key(|r| r.2);
        Ok(rows)
    }

    /// Keeps locations a peer sent. Returns how many were new.
    pub(crate) fn accept_locations(&self, from: &PublicKey, list: &[Location]) -> Result<usize> {
        let db = self.db_path();
        let tx = crate::db::write_txn(&self.conn).db(&db)?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO location (hash, peer_id, seen_at)
                     SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM artifact WHERE hash = ?1)
                     ON CONFLICT (hash, peer_id) DO NOTHING",
                )
                .db(&db)?;
            for l in list.iter().take(MAX_LOCATIONS) {
                let valid_hash =
                    l.hash.len() == 64 && l.hash.bytes().all(|b| b.is_ascii_hexdigit());
                let Ok(holder) = l.holder.parse::<PublicKey>() else {
                    continue;
                };
                // What this node holds, it knows better than any peer.
                if !valid_hash || holder.to_string() == self.peer_id {
                    continue;
                }
                added += insert
                    .execute(params![
                        l.hash.to_ascii_lowercase(),
                        holder.to_string(),
                        now_ms()
                    ])
                    .db(&db)?;
            }
        }
        tx.commit().db(&db)?;
        let _ = from;
        Ok(added)
    }
}

impl Daemon<'_> {
    /// Sends `peer` the locations it has not had yet, of content in the
    /// scopes it syncs with this node and may read.
    pub(super) fn send_locations(&mut self, peer: PeerId) -> Result<()> {
        let Some(p) = self.peers.get(&peer) else {
            return Ok(());
        };
        if !p.hello {
            return Ok(());
        }
        let (key, since) = (p.key, p.locations_sent_at);
        let scopes: Vec<_> = p.scopes.iter().cloned().collect();
        let base = self.instance.sync_access(self.instance.connection())?;
        let presented = self.presented.lock().map(|p| p.clone()).unwrap_or_default();
        let access = SessionAccess {
            base: &base,
            presented: &presented,
            arriving: &[],
        };
        let mut newest = since;
        let mut list: Vec<Location> = Vec::new();
        for scope in scopes.iter().filter(|s| access.may_read(&key, s)) {
            for (hash, holder, seen_at) in
                self.instance.locations_in_scope(scope.as_str(), since)?
            {
                newest = newest.max(seen_at);
                if holder != key.to_string() {
                    list.push(Location { hash, holder });
                }
            }
        }
        list.sort_by(|a, b| (&a.hash, &a.holder).cmp(&(&b.hash, &b.holder)));
        list.dedup();
        for chunk in list.chunks(MAX_LOCATIONS) {
            self.send_to(peer, Envelope::Locations(chunk.to_vec()).encode());
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.locations_sent_at = newest;
        }
        Ok(())
    }
}
