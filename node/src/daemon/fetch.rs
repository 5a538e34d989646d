//! Fetching content from peers: object references resolve locally first,
//! then at peers known to hold the hash — the location table, which syncs
//! between peers, then the owners of the scopes whose records reference
//! it — streamed and verified against BLAKE3 by the transport, written
//! crash-safely into local storage (a resumable staging file, renamed when
//! whole). A holder that sends wrong bytes is dropped for that object and
//! the next one is tried.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use labmesh_crypto::PublicKey;
use labmesh_sync::net::{Network, NoContent, PeerId};
use rusqlite::params;

use super::envelope::Envelope;
use crate::error::{DbContext, Error, Result};
use crate::hash::ContentHash;
use crate::instance::Instance;
use crate::time::now_ms;

/// How long to wait for a holder's connection before trying the next.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a holder may take to take our hello (our tokens) before the
/// fetch goes ahead without it.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

impl Instance {
    /// Peers that may hold `hash`, best first, with their addresses: those
    /// the location table names (newest sighting first), then the owners
    /// of the shared scopes whose records reference it.
    pub fn holders(&self, hash: &ContentHash) -> Result<Vec<(PublicKey, Vec<String>)>> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT peer_id FROM (
                     SELECT peer_id, 0 AS rank, seen_at FROM location WHERE hash = ?1
                     UNION ALL
                     SELECT s.owner, 1, 0 FROM artifact a
                     JOIN sync_document d ON d.uid = a.uid
                     JOIN share s ON s.scope = d.scope
                     WHERE a.hash = ?1 AND s.subscribed_from IS NOT NULL
                 ) ORDER BY rank, seen_at DESC",
            )
            .and_then(|mut s| s.query_map([hash.to_hex()], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        let mut out: Vec<(PublicKey, Vec<String>)> = Vec::new();
        for id in ids {
            let Ok(key) = id.parse::<PublicKey>() else {
                continue;
            };
            if id == self.peer_id || out.iter().any(|(k, _)| *k == key) {
                continue;
            }
            out.push((key, self.addresses_of(&key)?));
        }
        Ok(out)
    }

    /// Fetches an object from the peers that hold it into `dest`, verified.
    /// Returns the bytes received.
    pub(crate) fn fetch_object(&self, hash: &ContentHash, size: u64, dest: &Path) -> Result<u64> {
        let holders: Vec<(PublicKey, Vec<String>)> = self
            .holders(hash)?
            .into_iter()
            .filter(|(_, addrs)| !addrs.is_empty())
            .collect();
        if holders.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "no known peer with an address holds {hash}; `labmesh whereis` shows who holds it, \
                 `labmesh peer add <multiaddr>` adds an address"
            )));
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        }
        let key = self.node_key()?;
        let mut net_config = super::ephemeral(self.config().net()?);
        net_config.dial_timeout = DIAL_TIMEOUT;
        net_config.max_fetch_attempts = (2 * holders.len()).max(2);
        let hellos: Vec<(PeerId, Vec<u8>)> = holders
            .iter()
            .map(|(holder, _)| {
                let hello = self.hello(holder)?;
                Ok((
                    holder.to_peer_id(),
                    Envelope::Hello(Box::new(hello)).encode(),
                ))
            })
            .collect::<Result<_>>()?;
        let names: Vec<(PeerId, String)> = holders
            .iter()
            .map(|(k, _)| {
                let name = self.peer_info(k).ok().and_then(|p| p.name);
                (k.to_peer_id(), name.unwrap_or_else(|| k.to_string()))
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| {
                Error::InvalidArgument(format!("cannot start the network runtime: {e}"))
            })?;
        let dest = dest.to_path_buf();
        let report = runtime.block_on(async move {
            let (net, _events) = Network::start(&key, net_config, Arc::new(NoContent))
                .map_err(|e| Error::InvalidArgument(format!("network: {e}")))?;
            let mut peers: Vec<PeerId> = Vec::new();
            for (holder, addrs) in &holders {
                let peer = holder.to_peer_id();
                for a in addrs.iter().filter_map(|a| a.parse().ok()) {
                    let _ = net.add_address(peer, a).await;
                }
                peers.push(peer);
            }
            // Show our tokens first: a holder that is not the owner serves
            // only readers it can check. Unreachable ones are tried anyway.
            let shows = hellos.into_iter().map(|(peer, bytes)| {
                let net = net.clone();
                async move {
                    let _ = tokio::time::timeout(HELLO_TIMEOUT, net.send(peer, bytes)).await;
                }
            });
            futures::future::join_all(shows).await;
            let result = net.fetch_verified(&peers, hash.0, size, &dest).await;
            net.shutdown().await;
            result.map_err(|e| {
                let mut text = e.to_string();
                for (peer, name) in &names {
                    text = text.replace(&peer.to_string(), name);
                }
                Error::InvalidArgument(format!(
                    "fetching {hash} from {} peer(s) failed: {text}; what arrived is kept and \
                     the next `labmesh cache` resumes",
                    names.len()
                ))
            })
        })?;
        Ok(report.received.iter().map(|(_, n)| n).sum())
    }

    /// Notes that `peer` holds `hash` (this node, after a fetch).
    pub(crate) fn note_location(&self, hash: &ContentHash, peer: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO location (hash, peer_id, seen_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (hash, peer_id) DO UPDATE SET seen_at = excluded.seen_at",
                params![hash.to_hex(), peer, now_ms()],
            )
            .map(|_| ())
            .db(&self.db_path())
    }
}
