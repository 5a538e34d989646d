//! The address book's network side: where peers are reached, when they were
//! last seen, what their instance is.

use labmesh_crypto::PublicKey;
use labmesh_sync::net::{Multiaddr, PeerId};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::time::now_ms;

/// A peer as `labmesh peers` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub name: Option<String>,
    pub addresses: Vec<String>,
    #[serde(serialize_with = "crate::time::serde_ms::option::serialize")]
    pub last_seen: Option<i64>,
    /// Set while a daemon of this instance is connected to the peer.
    #[serde(serialize_with = "crate::time::serde_ms::option::serialize")]
    pub connected_since: Option<i64>,
    pub instance_uid: Option<String>,
}

/// Splits `/ip4/…/p2p/<peer>` into the peer and the address to dial.
pub fn parse_peer_addr(text: &str) -> Result<(PeerId, Multiaddr)> {
    let addr: Multiaddr = text.trim().parse().map_err(|e| {
        Error::InvalidArgument(format!(
            "{text:?} is not a multiaddr ({e}); e.g. /ip4/10.0.0.5/udp/4001/quic-v1/p2p/12D3KooW…"
        ))
    })?;
    let peer: PeerId = text
        .trim()
        .rsplit_once("/p2p/")
        .and_then(|(_, p)| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{text:?} has no /p2p/<peer id> part: the node's identity is needed"
            ))
        })?;
    Ok((peer, addr))
}

impl Instance {
    /// Adds a peer reachable at `addr` (which ends in `/p2p/<peer id>`).
    pub fn add_peer(&self, addr: &str, name: Option<&str>) -> Result<PeerInfo> {
        let (peer, addr) = parse_peer_addr(addr)?;
        let key = PublicKey::from_peer_id(&peer)?;
        if key.to_string() == self.peer_id {
            return Err(Error::InvalidArgument(
                "that address is this node's own".into(),
            ));
        }
        if let Some(n) = name {
            let taken: Option<String> = self
                .conn
                .query_row(
                    "SELECT peer_id FROM node WHERE name = ?1 AND peer_id != ?2",
                    params![n, key.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .db(&self.db_path())?;
            if let Some(other) = taken {
                return Err(Error::InvalidArgument(format!(
                    "the name {n:?} already belongs to {other}"
                )));
            }
        }
        self.node_id_for(&self.conn, &key.to_string())?;
        if let Some(n) = name {
            self.conn
                .execute(
                    "UPDATE node SET name = ?1 WHERE peer_id = ?2",
                    params![n, key.to_string()],
                )
                .db(&self.db_path())?;
        }
        self.remember_address(&key, &addr)?;
        self.peer_info(&key)
    }

    /// Records an address a peer was reached at (newest first, at most 8).
    pub fn remember_address(&self, key: &PublicKey, addr: &Multiaddr) -> Result<()> {
        let mut list = self.addresses_of(key)?;
        let text = addr.to_string();
        list.retain(|a| *a != text);
        list.insert(0, text);
        list.truncate(8);
        self.conn
            .execute(
                "UPDATE node SET addresses = ?1, last_seen = ?2 WHERE peer_id = ?3",
                params![
                    serde_json::to_string(&list).unwrap_or_default(),
                    now_ms(),
                    key.to_string()
                ],
            )
            .db(&self.db_path())?;
        Ok(())
    }

    pub fn addresses_of(&self, key: &PublicKey) -> Result<Vec<String>> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT addresses FROM node WHERE peer_id = ?1",
                [key.to_string()],
                |r| r.get(0),
            )
            .optional()
            .db(&self.db_path())?
            .flatten();
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default())
    }

    /// Records what a peer's hello said about its instance.
    pub fn remember_instance(&self, key: &PublicKey, instance_uid: &str, name: &str) -> Result<()> {
        self.node_id_for(&self.conn, &key.to_string())?;
        self.conn
            .execute(
                "UPDATE node SET instance_uid = ?1, name = coalesce(name, ?2), last_seen = ?3 WHERE peer_id = ?4
                 AND NOT EXISTS (SELECT 1 FROM node n WHERE n.name = ?2 AND n.peer_id != ?4)",
                params![instance_uid, name, now_ms(), key.to_string()],
            )
            .db(&self.db_path())?;
        Ok(())
    }

    pub fn peer_info(&self, key: &PublicKey) -> Result<PeerInfo> {
        type Row = (Option<String>, Option<i64>, Option<String>, Option<i64>);
        let (name, last_seen, instance_uid, connected_since): Row = self
            .conn
            .query_row(
                "SELECT name, last_seen, instance_uid, connected_since FROM node WHERE peer_id = ?1",
                [key.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .db(&self.db_path())?;
        Ok(PeerInfo {
            peer_id: key.to_string(),
            name,
            addresses: self.addresses_of(key)?,
            last_seen,
            connected_since,
            instance_uid,
        })
    }

    /// Every other node in the address book.
    pub fn network_peers(&self) -> Result<Vec<PeerInfo>> {
        let ids: Vec<String> = self
            .conn
            .prepare("SELECT peer_id FROM node WHERE is_self = 0 ORDER BY name, peer_id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        ids.iter()
            .filter_map(|p| p.parse::<PublicKey>().ok())
            .map(|k| self.peer_info(&k))
            .collect()
    }
}
