//! What `labmesh status` and `labmesh whereis` show.

use labmesh_crypto::PublicKey;
use serde::Serialize;

use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::mesh::ShareInfo;

#[derive(Clone, Debug, Serialize)]
pub struct ScopeStatus {
    #[serde(flatten)]
    pub share: ShareInfo,
    /// Per origin (PeerId): the last feed entry of it this node has.
    pub marks: Vec<(String, u64)>,
    /// How this scope stands with each peer it was compared with.
    pub peers: Vec<PeerSync>,
}

/// Where a scope stands with one peer, as the daemon last saw it.
#[derive(Clone, Debug, Serialize)]
pub struct PeerSync {
    pub peer_id: String,
    pub name: Option<String>,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub last_exchange_at: i64,
    /// Since when both sides' summaries agree (`None`: they differ).
    #[serde(serialize_with = "crate::time::serde_ms::option::serialize")]
    pub in_sync_since: Option<i64>,
    /// Since when they differ (`None`: in sync).
    #[serde(serialize_with = "crate::time::serde_ms::option::serialize")]
    pub differs_since: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncEvent {
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub at: i64,
    pub kind: String,
    pub peer: Option<String>,
    pub scope: Option<String>,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct MeshStatus {
    pub peer_id: String,
    /// The pid of the daemon serving this instance, if one runs.
    pub daemon: Option<u32>,
    pub shares: Vec<ScopeStatus>,
    pub conflicts: usize,
    /// Newest first.
    pub events: Vec<SyncEvent>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Holder {
    pub peer_id: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Whereis {
    pub uid: String,
    pub key: Option<String>,
    pub hash: String,
    /// Whether this node's storage holds the content.
    pub local: bool,
    pub location: String,
    pub peers: Vec<Holder>,
}

impl Instance {
    /// Notes a sync event for `labmesh status` (the engine's own events
    /// are logged where its output is applied).
    pub(crate) fn record_sync_event(
        &self,
        kind: &str,
        peer: Option<&str>,
        scope: Option<&str>,
        detail: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO sync_event (at, kind, peer, scope, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![crate::time::now_ms(), kind, peer, scope, detail],
            )
            .db(&self.db_path())?;
        Ok(())
    }

    pub fn mesh_status(&self) -> Result<MeshStatus> {
        let db = self.db_path();
        let mut shares = Vec::new();
        for share in self.shares()? {
            let marks: Vec<(Vec<u8>, i64)> = self
                .conn
                .prepare("SELECT origin, seq FROM sync_mark WHERE scope = ?1 ORDER BY origin")
                .and_then(|mut s| {
                    s.query_map([&share.scope], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .db(&db)?;
            let marks = marks
                .into_iter()
                .filter_map(|(o, q)| {
                    let arr: [u8; 32] = o.as_slice().try_into().ok()?;
                    PublicKey::from_bytes(&arr)
                        .ok()
                        .map(|k| (k.to_string(), q as u64))
                })
                .collect();
            let peers = self
                .conn
                .prepare(
                    "SELECT p.peer_id, n.name, p.last_exchange_at, p.in_sync_since, p.differs_since
                     FROM peer_sync p LEFT JOIN node n ON n.peer_id = p.peer_id
                     WHERE p.scope = ?1 ORDER BY p.last_exchange_at DESC",
                )
                .and_then(|mut s| {
                    s.query_map([&share.scope], |r| {
                        Ok(PeerSync {
                            peer_id: r.get(0)?,
                            name: r.get(1)?,
                            last_exchange_at: r.get(2)?,
                            in_sync_since: r.get(3)?,
                            differs_since: r.get(4)?,
                        })
                    })?
                    .collect()
                })
                .db(&db)?;
            shares.push(ScopeStatus {
                share,
                marks,
                peers,
            });
        }
        let events = self
            .conn
            .prepare(
                "SELECT at, kind, peer, scope, detail FROM sync_event ORDER BY id DESC LIMIT 50",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(SyncEvent {
                        at: r.get(0)?,
                        kind: r.get(1)?,
                        peer: r.get(2)?,
                        scope: r.get(3)?,
                        detail: r.get(4)?,
                    })
                })?
                .collect()
            })
            .db(&db)?;
        Ok(MeshStatus {
            peer_id: self.peer_id.clone(),
            daemon: crate::daemon::running(self.root()),
            shares,
            conflicts: self.conflicts()?.len(),
            events,
        })
    }

    /// Which storages and peers hold an artifact's content.
    pub fn whereis(&self, query: &str) -> Result<Whereis> {
        let a = self.get(query)?;
        let location = self.location(&a)?;
        let storage = self.storage(a.storage_id)?;
        let key = match a.kind {
            crate::artifact::ArtifactKind::File => {
                crate::storage::layout::object_key(&a.hash, &a.suffix)
            }
            crate::artifact::ArtifactKind::Folder => {
                crate::storage::layout::object_key(&a.hash, crate::storage::layout::MANIFEST_SUFFIX)
            }
        };
        let local = match &storage {
            crate::storage::Storage::Local(l) => l.path_of(&key).is_file(),
            crate::storage::Storage::Cloud(c) => c.size_of(&key)?.is_some(),
        };
        let peers = self
            .holders(&a.hash)?
            .into_iter()
            .map(|(k, _)| Holder {
                name: self.peer_info(&k).ok().and_then(|p| p.name),
                peer_id: k.to_string(),
            })
            .collect();
        Ok(Whereis {
            uid: a.uid,
            key: a.key,
            hash: a.hash.to_hex(),
            local,
            location,
            peers,
        })
    }
}
