//! Serving content to peers: an object is sent only to a peer that may
//! read a shared scope holding a record that references it, and only from
//! this node's own storage.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use labmesh_crypto::PublicKey;
use labmesh_sync::net::{ContentSource, PeerId};
use labmesh_sync::{Access, ScopeId};

use crate::instance::Instance;
use crate::mesh::access::{Presented, SessionAccess};
use crate::storage::Storage;
use crate::storage::layout::{MANIFEST_SUFFIX, object_key};

/// Content source over a second connection to the instance.
pub struct ServeContent {
    pub instance: Mutex<Instance>,
    /// Tokens peers showed in their hello: a subscriber serves content to
    /// other readers on the strength of their tokens.
    pub presented: Arc<Mutex<Presented>>,
}

impl ContentSource for ServeContent {
    fn open(
        &self,
        peer: &PeerId,
        hash: &[u8; 32],
        size: u64,
        offset: u64,
    ) -> Result<Option<Box<dyn Read + Send>>, String> {
        let instance = self
            .instance
            .lock()
            .map_err(|_| "content source poisoned".to_string())?;
        let peer = PublicKey::from_peer_id(peer).map_err(|e| e.to_string())?;
        let hash = crate::hash::ContentHash(*hash);
        let hex = hash.to_hex();
        let conn = instance.connection();
        // Records that reference the object, with the suffix it is stored under.
        let refs: Vec<(String, String)> = conn
            .prepare(
                "SELECT a.uid, CASE WHEN a.kind = 'folder' THEN ?3 ELSE a.suffix END FROM artifact a
                 WHERE a.hash = ?1 AND (a.kind = 'folder' OR a.size = ?2)
                 UNION
                 SELECT a.uid, f.suffix FROM folder_entry f JOIN artifact a ON a.id = f.artifact_id
                 WHERE f.hash = ?1 AND f.size = ?2",
            )
            .and_then(|mut s| s.query_map(rusqlite::params![hex, size as i64, MANIFEST_SUFFIX], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(|e| e.to_string())?;
        let base = instance.sync_access(conn).map_err(|e| e.to_string())?;
        let presented = self.presented.lock().map(|p| p.clone()).unwrap_or_default();
        let access = SessionAccess {
            base: &base,
            presented: &presented,
            arriving: &[],
        };
        let mut suffix = None;
        let mut readable_uid = None;
        for (uid, sfx) in refs {
            let scopes: Vec<String> = conn
                .prepare("SELECT scope FROM sync_document WHERE uid = ?1")
                .and_then(|mut s| s.query_map([&uid], |r| r.get(0))?.collect())
                .map_err(|e| e.to_string())?;
            if scopes
                .iter()
                .filter_map(|s| ScopeId::new(s).ok())
                .any(|s| access.may_read(&peer, &s))
            {
                suffix = Some(sfx);
                readable_uid = Some(uid);
                break;
            }
        }
        let Some(suffix) = suffix else {
            return Ok(None);
        };
        let Ok(Storage::Local(local)) = instance.storage(instance.default_storage().id) else {
            return Ok(None);
        };
        let path = local.path_of(&object_key(&hash, &suffix));
        let Ok(mut file) = File::open(&path) else {
            return Ok(None);
        };
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        if len != size {
            return Ok(None);
        }
        // Never pass on damaged bytes: a whole file artifact is verified
        // (re-hashed only if it changed since its last check) before its
        // first byte goes out. Resumed ranges and folder members rely on
        // the fetcher's own BLAKE3 check.
        if offset == 0
            && let Some(uid) = readable_uid
            && let Ok(artifact) = instance.get(&uid)
            && artifact.kind == crate::artifact::ArtifactKind::File
            && artifact.hash == hash
            && instance.cache_artifact(&artifact).is_err()
        {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| e.to_string())?;
        Ok(Some(Box::new(file)))
    }
}
