//! Fetching content from peers: object references resolve locally first,
//! then at peers known to hold the hash (the location table), streamed and
//! verified against BLAKE3 by the transport, written crash-safely into
//! local storage (a resumable staging file, renamed when whole).

use std::path::Path;
use std::sync::Arc;

use labmesh_crypto::PublicKey;
use labmesh_sync::net::{NetConfig, Network, NoContent, PeerId};
use rusqlite::params;

use crate::error::{DbContext, Error, Result};
use crate::hash::ContentHash;
use crate::instance::Instance;
use crate::time::now_ms;

impl Instance {
    /// Peers that hold `hash` (newest sighting first), with their addresses.
    pub fn holders(&self, hash: &ContentHash) -> Result<Vec<(PublicKey, Vec<String>)>> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached("SELECT peer_id FROM location WHERE hash = ?1 ORDER BY seen_at DESC")
            .and_then(|mut s| s.query_map([hash.to_hex()], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        let mut out = Vec::new();
        for id in ids {
            let Ok(key) = id.parse::<PublicKey>() else {
                continue;
            };
            if id == self.peer_id {
                continue;
            }
            out.push((key, self.addresses_of(&key)?));
        }
        Ok(out)
    }

    /// Fetches an object from the peers that hold it into `dest`, verified.
    /// Returns the bytes received.
    pub(crate) fn fetch_object(&self, hash: &ContentHash, size: u64, dest: &Path) -> Result<u64> {
        let holders = self.holders(hash)?;
        if holders.iter().all(|(_, addrs)| addrs.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "no known peer with an address holds {hash}; `labmesh peer add <multiaddr>` adds one"
            )));
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        }
        let key = self.node_key()?;
        let mut net_config = NetConfig::loopback();
        net_config.listen = vec![
            "/ip4/0.0.0.0/udp/0/quic-v1"
                .parse()
                .map_err(|_| Error::InvalidArgument("listen address".into()))?,
            "/ip4/0.0.0.0/tcp/0"
                .parse()
                .map_err(|_| Error::InvalidArgument("listen address".into()))?,
        ];
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
            let result = net.fetch_verified(&peers, hash.0, size, &dest).await;
            net.shutdown().await;
            result.map_err(|e| Error::InvalidArgument(format!("fetching {hash} from peers: {e}")))
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
