//! Trash, restore, permanent deletion and garbage collection.
//!
//! Rows go first, content second: a permanent delete commits the row's
//! removal and only then removes objects nothing else references, so a
//! crash in between leaves an unreferenced object (for `gc`), never a row
//! without content. Both take the instance's exclusive storage lock, so
//! they never remove an object a concurrent save has just written.

use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::artifact::insert::refresh_latest;
use crate::artifact::{Artifact, ArtifactKind};
use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::{Instance, LockMode};
use crate::storage::Storage;
use crate::storage::layout::{MANIFEST_SUFFIX, object_key, parse_object_key};
use crate::time::now_ms;

/// The result of `delete`.
#[derive(Clone, Debug, Serialize)]
pub struct Deleted {
    pub uid: String,
    pub key: Option<String>,
    pub permanent: bool,
    /// Objects removed from storage (permanent deletes of unshared content).
    pub objects_removed: u64,
    pub bytes_removed: u64,
    pub notices: Vec<String>,
}

/// Options of `gc`.
#[derive(Clone, Debug, Default)]
pub struct GcOptions {
    /// Report what would be removed without removing it.
    pub dry_run: bool,
}

/// What `gc` found and removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Objects that no artifact references.
    pub unreferenced_objects: u64,
    pub unreferenced_bytes: u64,
    /// Staging files left by interrupted saves.
    pub staging_files: u64,
    pub staging_bytes: u64,
    /// Objects kept because artifacts reference them.
    pub kept_objects: u64,
}

impl Instance {
    /// Moves an artifact version to the trash, or removes it for good
    /// (`permanent`), together with content no other artifact references.
    pub fn delete(&self, query: &str, permanent: bool) -> Result<Deleted> {
        let artifact = self.get(query)?;
        let mut deleted = Deleted {
            uid: artifact.uid.clone(),
            key: artifact.key.clone(),
            permanent,
            objects_removed: 0,
            bytes_removed: 0,
            notices: Vec::new(),
        };
        let db = self.db_path();
        if !permanent {
            if artifact.is_trashed() {
                deleted.notices.push(format!(
                    "{} is already in the trash; `labmesh delete {} --permanent` removes it for good",
                    artifact.uid, artifact.uid
                ));
                return Ok(deleted);
            }
            let tx = write_txn(&self.conn).db(&db)?;
            tx.execute(
                "UPDATE artifact SET trashed_at = ?1 WHERE id = ?2",
                (now_ms(), artifact.id),
            )
            .db(&db)?;
            refresh_latest(&tx, artifact.stem()).db(&db)?;
            self.share_artifact(&tx, artifact.id)?;
            tx.commit().db(&db)?;
            if artifact.is_latest
                && let Some(prev) = self
                    .family(artifact.stem())?
                    .into_iter()
                    .find(|a| a.is_latest)
            {
                deleted.notices.push(format!(
                    "{} is now the latest version of {}",
                    prev.uid,
                    prev.label()
                ));
            }
            return Ok(deleted);
        }

        // Collections are immutable versions: a member cannot vanish from one.
        let in_collection: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT c.key || ' (' || c.uid || ')' FROM collection_artifact ca JOIN collection c ON c.id = ca.collection_id
                 WHERE ca.artifact_id = ?1 LIMIT 1",
            )
            .and_then(|mut s| s.query_row([artifact.id], |r| r.get(0)).optional())
            .db(&db)?;
        if let Some(collection) = in_collection {
            return Err(Error::InvalidArgument(format!(
                "{} is a member of collection {collection}; a collection version keeps its artifacts, \
                 so it cannot be deleted for good (moving it to the trash works)",
                artifact.uid
            )));
        }
        let _lock = self.storage_lock(LockMode::Exclusive)?;
        let members = match artifact.kind {
            ArtifactKind::Folder => self.folder_entries(&artifact)?,
            ArtifactKind::File => Vec::new(),
        };
        let tx = write_txn(&self.conn).db(&db)?;
        // Peers learn of the removal as a tombstone; the row goes here.
        tx.execute(
            "UPDATE artifact SET trashed_at = coalesce(trashed_at, ?1) WHERE id = ?2",
            (now_ms(), artifact.id),
        )
        .db(&db)?;
        self.share_artifact(&tx, artifact.id)?;
        tx.execute("DELETE FROM artifact WHERE id = ?1", [artifact.id])
            .db(&db)?;
        let mut texts: Vec<(&str, &str)> = Vec::new();
        if let Some(k) = &artifact.key {
            texts.push(("key", k));
        }
        if let Some(d) = &artifact.description {
            texts.push(("description", d));
        }
        crate::search::index::unindex(&tx, "artifact", artifact.id, &texts).db(&db)?;
        refresh_latest(&tx, artifact.stem()).db(&db)?;
        // Decide what is unreferenced inside the transaction, remove it after commit.
        let mut doomed = Vec::new();
        let own_suffix = match artifact.kind {
            ArtifactKind::File => artifact.suffix.as_str(),
            ArtifactKind::Folder => MANIFEST_SUFFIX,
        };
        if !self.is_referenced(&artifact.hash.to_hex(), own_suffix)? {
            doomed.push((object_key(&artifact.hash, own_suffix), artifact.size));
        }
        for m in &members {
            if !self.is_referenced(&m.hash.to_hex(), &m.suffix)? {
                doomed.push((object_key(&m.hash, &m.suffix), m.size));
            }
        }
        tx.commit().db(&db)?;

        let storage = self.storage(artifact.storage_id)?;
        for (key, size) in doomed {
            if storage.remove(&key)? {
                deleted.objects_removed += 1;
                deleted.bytes_removed += size;
            }
        }
        self.forget_cached(&artifact)?;
        Ok(deleted)
    }

    /// Changes an artifact's description (shared records: on every replica).
    pub fn set_description(&self, query: &str, description: Option<&str>) -> Result<Artifact> {
        let artifact = self.get(query)?;
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        tx.execute(
            "UPDATE artifact SET description = ?1 WHERE id = ?2",
            rusqlite::params![description, artifact.id],
        )
        .db(&db)?;
        let mut old: Vec<(&str, &str)> = Vec::new();
        if let Some(d) = &artifact.description {
            old.push(("description", d));
        }
        crate::search::index::unindex(&tx, "artifact", artifact.id, &old).db(&db)?;
        if let Some(d) = description {
            crate::search::index::index_text(&tx, "artifact", artifact.id, "description", d)
                .db(&db)?;
        }
        self.share_artifact(&tx, artifact.id)?;
        tx.commit().db(&db)?;
        self.artifact_by_id(artifact.id)
    }

    /// Takes an artifact version out of the trash.
    pub fn restore(&self, query: &str) -> Result<(Artifact, Vec<String>)> {
        let artifact = self.get(query)?;
        if !artifact.is_trashed() {
            return Err(Error::NotTrashed { uid: artifact.uid });
        }
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        tx.execute(
            "UPDATE artifact SET trashed_at = NULL WHERE id = ?1",
            [artifact.id],
        )
        .db(&db)?;
        refresh_latest(&tx, artifact.stem()).db(&db)?;
        self.share_artifact(&tx, artifact.id)?;
        tx.commit().db(&db)?;
        let restored = self.artifact_by_id(artifact.id)?;
        let mut notices = Vec::new();
        if !restored.is_latest {
            notices.push(format!(
                "a newer version of {} exists; {} is restored as an older version",
                restored.label(),
                restored.uid
            ));
        }
        Ok((restored, notices))
    }

    /// Whether any row still references the object (hash, suffix).
    fn is_referenced(&self, hash_hex: &str, suffix: &str) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM artifact WHERE hash = ?1
                                  AND ((kind = 'file' AND suffix = ?2) OR (kind = 'folder' AND ?2 = ?3)))
                     OR EXISTS (SELECT 1 FROM folder_entry WHERE hash = ?1 AND suffix = ?2)",
            )
            .and_then(|mut s| s.query_row((hash_hex, suffix, MANIFEST_SUFFIX), |r| r.get(0)))
            .db(&self.db_path())
    }

    /// Removes objects that no artifact references, and staging files left
    /// by interrupted saves, from the default storage and the local cache.
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport> {
        let _lock = self.storage_lock(LockMode::Exclusive)?;
        let mut report = GcReport {
            dry_run: opts.dry_run,
            ..GcReport::default()
        };
        let storage = self.storage(self.default_storage.id)?;
        let (objects, staging) = match &storage {
            Storage::Local(local) => local.list()?,
            Storage::Cloud(cloud) => (cloud.list("objects")?, Vec::new()),
        };
        self.progress
            .start("checking objects", objects.len() as u64);
        for obj in objects {
            self.progress.advance(1);
            let Some((hash, suffix)) = parse_object_key(&obj.key) else {
                continue;
            };
            if self.is_referenced(hash, suffix)? {
                report.kept_objects += 1;
                continue;
            }
            report.unreferenced_objects += 1;
            report.unreferenced_bytes += obj.size;
            if !opts.dry_run {
                storage.remove(&obj.key)?;
                if let Storage::Local(local) = &storage {
                    self.forget_verified(&local.path_of(&obj.key))?;
                }
            }
        }
        self.progress.finish();
        for tmp in staging {
            report.staging_files += 1;
            report.staging_bytes += tmp.size;
            if !opts.dry_run
                && let Storage::Local(local) = &storage
            {
                local.remove(&tmp.key)?;
            }
        }
        let cache = self.cache_storage();
        let (cached, cache_staging) = cache.list()?;
        for obj in cached {
            let Some((hash, suffix)) = parse_object_key(&obj.key) else {
                continue;
            };
            if !self.is_referenced(hash, suffix)? {
                report.unreferenced_objects += 1;
                report.unreferenced_bytes += obj.size;
                if !opts.dry_run {
                    cache.remove(&obj.key)?;
                    self.forget_verified(&cache.path_of(&obj.key))?;
                }
            }
        }
        for tmp in cache_staging {
            report.staging_files += 1;
            report.staging_bytes += tmp.size;
            if !opts.dry_run {
                cache.remove(&tmp.key)?;
            }
        }
        if !opts.dry_run {
            self.prune_materialized_folders()?;
        }
        Ok(report)
    }
}
