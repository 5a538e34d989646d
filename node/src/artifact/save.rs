//! Saving files and folders: hash, deduplicate, store content durably,
//! then commit the row — in that order, so a crash at any point leaves no
//! row pointing at missing content, and running the save again completes it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::artifact::source::{self, BATCH_SMALL_FILE, SMALL_FILE, Source};
use crate::artifact::{Artifact, ArtifactKind};
use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::failpoint;
use crate::hash::ContentHash;
use crate::hash::manifest::Manifest;
use crate::instance::{Instance, LockMode};
use crate::parallel::parallel_map;
use crate::storage::layout::{MANIFEST_SUFFIX, object_key};
use crate::storage::{Durability, Storage};
use crate::time::now_ms;
use crate::uid::{self, STEM_LEN};

/// Options of a save.
#[derive(Clone, Debug, Default)]
pub struct SaveOptions {
    /// Virtual path naming the artifact; saving new content under an
    /// existing key makes a new version. Default: the path relative to the
    /// instance root when the file is inside it, else the file's name.
    pub key: Option<String>,
    pub description: Option<String>,
    /// Make the new content a version of this artifact (uid, prefix or key).
    pub revises: Option<String>,
    /// A version tag of the user's choice ("1.0", "2024-06 release").
    pub version: Option<String>,
}

/// What a save did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaveStatus {
    /// A new artifact family.
    Created,
    /// A new version; `previous` is the uid of the version it revises.
    NewVersion { previous: String },
    /// The content was already registered; this is that artifact.
    Existing,
}

/// The artifact a save produced or found, and what the user should know.
#[derive(Clone, Debug, Serialize)]
pub struct Saved {
    pub artifact: Artifact,
    pub status: SaveStatus,
    /// Warnings and notes ("same content as …", "did you mean …").
    pub notices: Vec<String>,
}

impl Instance {
    /// Saves a file or folder as an artifact (or finds it, if the content is
    /// already registered). One transaction; safe to repeat.
    pub fn save(&self, path: impl AsRef<Path>, opts: &SaveOptions) -> Result<Saved> {
        let _lock = self.storage_lock(LockMode::Shared)?;
        let storage = self.storage(self.default_storage.id)?;
        let mut src = self.prepare(path.as_ref(), opts, &storage)?;
        if let Some(existing) = self.by_content(&src.hash, src.size, src.kind)? {
            self.heal(&storage, &src, &existing)?;
            // Provenance: produced again by the current run, if one is active.
            return self.record_output_now(existing_notice(existing, &src));
        }
        failpoint::hit("save:before-content");
        self.store(&storage, &mut src, Durability::Immediate)?;
        failpoint::hit("save:after-content");
        let tx = write_txn(&self.conn).db(&self.db_path())?;
        let mut saved = self.insert(&tx, &src, opts, &mut HashMap::new(), true)?;
        self.record_outputs(&tx, [&mut saved])?; // provenance, same transaction
        failpoint::hit("save:before-commit");
        tx.commit().db(&self.db_path())?;
        Ok(saved)
    }

    /// Saves many files in one transaction, with one sync of storage for
    /// the whole batch. Each file's key comes from its path. Folders are
    /// saved one by one with `save`.
    pub fn save_many(&self, paths: &[PathBuf], opts: &SaveOptions) -> Result<Vec<Saved>> {
        if paths.len() == 1 {
            return Ok(vec![self.save(&paths[0], opts)?]);
        }
        if opts.key.is_some() || opts.revises.is_some() {
            return Err(Error::InvalidArgument(
                "--key and --revises name one artifact; save several paths without them \
                 (each file's key comes from its path)"
                    .into(),
            ));
        }
        let _lock = self.storage_lock(LockMode::Shared)?;
        let storage = self.storage(self.default_storage.id)?;
        let progress = self.progress.as_ref();

        // Name and hash everything (all cores) before writing anything.
        let root = self.paths.root.clone();
        progress.start("hashing files", paths.len() as u64);
        let sources = parallel_map(paths, |path| {
            let named = source::name(path, None, &root)?;
            if named.0 == ArtifactKind::Folder {
                return Err(Error::InvalidArgument(format!(
                    "{} is a folder; save folders on their own (`labmesh save {}`)",
                    path.display(),
                    path.display()
                )));
            }
            let s = source::hash_source(named, BATCH_SMALL_FILE, &crate::progress::NoProgress);
            progress.advance(1);
            s
        });
        progress.finish();
        let mut sources = sources?;

        let mut outcome: Vec<Option<Saved>> = vec![None; sources.len()];
        let mut first_index = HashMap::new();
        let mut to_store = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            if let Some(existing) = self.by_content(&s.hash, s.size, s.kind)? {
                self.heal(&storage, s, &existing)?;
                outcome[i] = Some(existing_notice(existing, s));
            } else if first_index.insert(s.identity(), i).is_none() {
                to_store.push(i);
            }
        }

        progress.start("storing", to_store.len() as u64);
        let pending: Vec<&Source> = to_store.iter().map(|&i| &sources[i]).collect();
        let none = HashSet::new();
        parallel_map(&pending, |s| {
            source::write_content(
                &storage,
                s,
                &none,
                Durability::Deferred,
                &crate::progress::NoProgress,
            )?;
            progress.advance(1);
            Ok(())
        })?;
        failpoint::hit("save-many:before-sync");
        if let Storage::Local(local) = &storage {
            local.sync_all()?;
        }
        progress.finish();
        failpoint::hit("save-many:after-content");
        for &i in &to_store {
            sources[i].stored = true;
        }

        let tx = write_txn(&self.conn).db(&self.db_path())?;
        let mut families = HashMap::new();
        let mut inserted: HashMap<(ContentHash, u64, ArtifactKind), Artifact> = HashMap::new();
        self.batch_shared(&tx, || {
            self.insert_all(
                &tx,
                &sources,
                opts,
                &mut outcome,
                &mut families,
                &mut inserted,
            )
        })?;
        self.record_outputs(&tx, outcome.iter_mut().flatten())?; // provenance, same transaction
        tx.commit().db(&self.db_path())?;
        Ok(outcome.into_iter().flatten().collect())
    }

    /// The rows of a batch, in one transaction.
    fn insert_all(
        &self,
        tx: &Transaction<'_>,
        sources: &[Source],
        opts: &SaveOptions,
        outcome: &mut [Option<Saved>],
        families: &mut HashMap<String, String>,
        inserted: &mut HashMap<(ContentHash, u64, ArtifactKind), Artifact>,
    ) -> Result<()> {
        for (i, s) in sources.iter().enumerate() {
            if outcome[i].is_some() {
                continue;
            }
            if let Some(a) = inserted.get(&s.identity()) {
                outcome[i] = Some(existing_notice(a.clone(), s));
                continue;
            }
            let saved = self.insert(tx, s, opts, families, false)?;
            inserted.insert(s.identity(), saved.artifact.clone());
            outcome[i] = Some(saved);
        }
        Ok(())
    }

    /// Names and hashes one source. A large file whose size no artifact has
    /// cannot be a duplicate, so it is copied and hashed in one pass.
    fn prepare(&self, path: &Path, opts: &SaveOptions, storage: &Storage) -> Result<Source> {
        let revises = match &opts.revises {
            Some(q) => Some(self.get(q)?),
            None => None,
        };
        let key = opts
            .key
            .as_deref()
            .or(revises.as_ref().and_then(|r| r.key.as_deref()));
        let named = source::name(path, key, &self.paths.root)?;
        let (kind, len) = (named.0, named.4);
        let progress = self.progress.as_ref();
        let mut src = match storage {
            Storage::Local(local)
                if kind == ArtifactKind::File
                    && len > SMALL_FILE
                    && !self.any_with_size(len)? =>
            {
                let (_, path, suffix, key, _) = named;
                progress.start("saving", len);
                let (hash, size) = local.ingest(&path, &suffix, Durability::Immediate, progress)?;
                progress.finish();
                Source {
                    path,
                    kind,
                    key: Some(key),
                    suffix,
                    hash,
                    size,
                    bytes: None,
                    stored: true,
                    manifest: None,
                    revises: None,
                }
            }
            _ => source::hash_source(named, SMALL_FILE, progress)?,
        };
        src.revises = revises;
        Ok(src)
    }

    fn any_with_size(&self, size: u64) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM artifact WHERE size = ?1 LIMIT 1")
            .and_then(|mut s| s.exists([size as i64]))
            .db(&self.db_path())
    }

    /// Stores a source's content unless it already is.
    fn store(&self, storage: &Storage, src: &mut Source, durability: Durability) -> Result<()> {
        if src.stored {
            return Ok(());
        }
        let referenced = match &src.manifest {
            Some((m, _)) => self.referenced_hashes(m)?,
            None => HashSet::new(),
        };
        source::write_content(
            storage,
            src,
            &referenced,
            durability,
            self.progress.as_ref(),
        )?;
        // Folder members are written deferred: sync them together.
        if let (Storage::Local(local), ArtifactKind::Folder) = (storage, src.kind) {
            local.sync_all()?;
        }
        src.stored = true;
        Ok(())
    }

    /// Member hashes of `manifest` that committed rows already reference.
    fn referenced_hashes(&self, manifest: &Manifest) -> Result<HashSet<ContentHash>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM folder_entry WHERE hash = ?1)
                     OR EXISTS (SELECT 1 FROM artifact WHERE hash = ?1)",
            )
            .db(&self.db_path())?;
        let mut out = HashSet::new();
        for e in &manifest.entries {
            if stmt
                .query_row([e.hash.to_hex()], |r| r.get::<_, bool>(0))
                .db(&self.db_path())?
            {
                out.insert(e.hash);
            }
        }
        Ok(out)
    }

    /// Re-saving content that is registered but missing from storage (or the
    /// wrong size there) puts it back.
    fn heal(&self, storage: &Storage, src: &Source, existing: &Artifact) -> Result<()> {
        if existing.storage_id != self.default_storage.id {
            return Ok(()); // Content in another storage is not ours to rewrite.
        }
        let intact = match &src.manifest {
            None => self.object_intact(storage, &existing.hash, existing.size, &existing.suffix)?,
            Some((m, _)) => {
                let mut ok =
                    source::has_any_object(storage, &object_key(&existing.hash, MANIFEST_SUFFIX))?;
                for e in &m.entries {
                    ok = ok && self.object_intact(storage, &e.hash, e.size, &e.suffix)?;
                }
                ok
            }
        };
        if intact {
            return Ok(());
        }
        let mut repair = src.clone();
        repair.suffix = existing.suffix.clone();
        repair.stored = false;
        self.store(storage, &mut repair, Durability::Immediate)?;
        self.record_written(&repair)
    }

    /// Whether an object is present and holds its content. Local objects
    /// are checked against their verification record (re-hashed only if
    /// they changed since); cloud objects by size, since PUTs are atomic.
    fn object_intact(
        &self,
        storage: &Storage,
        hash: &ContentHash,
        size: u64,
        suffix: &str,
    ) -> Result<bool> {
        let key = object_key(hash, suffix);
        match storage {
            Storage::Local(local) => {
                let path = local.path_of(&key);
                Ok(local.has(&key, size) && self.check_file(&path, hash, size)?.is_none())
            }
            Storage::Cloud(_) => source::has_object(storage, &key, size),
        }
    }

    /// Records the identity of freshly written local objects, so later
    /// checks need only a `stat`.
    fn record_written(&self, src: &Source) -> Result<()> {
        let Storage::Local(local) = self.storage(self.default_storage.id)? else {
            return Ok(());
        };
        match &src.manifest {
            None => self.record_verified(
                &local.path_of(&object_key(&src.hash, &src.suffix)),
                &src.hash,
            ),
            Some((m, _)) => {
                for e in &m.entries {
                    self.record_verified(&local.path_of(&object_key(&e.hash, &e.suffix)), &e.hash)?;
                }
                Ok(())
            }
        }
    }

    /// Inserts the row of a stored source and moves `is_latest` in its family.
    /// `families` maps keys to stems created earlier in the same batch.
    fn insert(
        &self,
        tx: &Transaction<'_>,
        src: &Source,
        opts: &SaveOptions,
        families: &mut HashMap<String, String>,
        warn_similar: bool,
    ) -> Result<Saved> {
        let db = self.db_path();
        // Another process may have registered the same content since we looked.
        if let Some(existing) = self.by_content(&src.hash, src.size, src.kind)? {
            return Ok(existing_notice(existing, src));
        }
        let previous = match (&src.revises, &src.key) {
            (Some(r), _) => Some(self.family_head(tx, r.stem())?.unwrap_or((
                r.id,
                r.uid.clone(),
                r.created_at,
            ))),
            (None, Some(key)) => match families.get(key) {
                Some(stem) => self.family_head(tx, stem)?,
                None => tx
                    .prepare_cached(
                        "SELECT id, uid, created_at FROM artifact WHERE key = ?1
                         ORDER BY trashed_at IS NOT NULL, created_at DESC, id DESC LIMIT 1",
                    )
                    .and_then(|mut s| {
                        s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                            .optional()
                    })
                    .db(&db)?,
            },
            (None, None) => None,
        };
        let mut notices = Vec::new();
        let (uid, revises_id, created_at) = match &previous {
            // A new version is never older than the one it revises, so
            // `is_latest` follows creation even across clock adjustments.
            Some((id, prev_uid, prev_created)) => (
                uid::new_version(uid::stem(prev_uid)),
                Some(*id),
                now_ms().max(prev_created + 1),
            ),
            None => {
                // Batches skip the fuzzy look-up: it would cost more than the save.
                if let Some(key) = src.key.as_ref().filter(|_| warn_similar)
                    && let Some(near) = self.closest_key(key, true)?
                {
                    notices.push(format!(
                        "new key {key:?} is close to the existing {near:?}; did you mean {near:?}? \
                         (`labmesh save <file> --key {near:?}` saves a new version of it)"
                    ));
                }
                (uid::new_family(), None, now_ms())
            }
        };
        let n_files = src.manifest.as_ref().map(|(m, _)| m.entries.len() as i64);
        tx.prepare_cached(
            "INSERT INTO artifact (uid, key, description, kind, suffix, hash, size, n_files, storage_id,
                                   revises_id, is_latest, version, created_at, created_by, origin_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?12, ?13, ?14)",
        )
        .and_then(|mut s| {
            s.execute(params![
                uid,
                src.key,
                opts.description,
                src.kind.as_str(),
                src.suffix,
                src.hash.to_hex(),
                src.size as i64,
                n_files,
                self.default_storage.id,
                revises_id,
                opts.version,
                created_at,
                self.user_id,
                self.self_node_id,
            ])
        })
        .db(&db)?;
        let id = tx.last_insert_rowid();
        if let Some((m, _)) = &src.manifest {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO folder_entry (artifact_id, path, hash, size, suffix) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .db(&db)?;
            for e in &m.entries {
                stmt.execute(params![
                    id,
                    e.path,
                    e.hash.to_hex(),
                    e.size as i64,
                    e.suffix
                ])
                .db(&db)?;
            }
        }
        self.record_written(src)?;
        self.share_artifact(tx, id)?;
        if let Some(key) = &src.key {
            crate::search::index::index_text(tx, "artifact", id, "key", key).db(&db)?;
        }
        if let Some(d) = &opts.description {
            crate::search::index::index_text(tx, "artifact", id, "description", d).db(&db)?;
        }
        let stem = uid::stem(&uid).to_string();
        refresh_latest(tx, &stem).db(&db)?;
        if let Some(key) = &src.key {
            families.insert(key.clone(), stem);
        }
        let status = match previous {
            Some((_, prev_uid, _)) => SaveStatus::NewVersion { previous: prev_uid },
            None => SaveStatus::Created,
        };
        Ok(Saved {
            artifact: self.artifact_by_id(id)?,
            status,
            notices,
        })
    }

    /// The newest version of a family: (id, uid, created_at).
    fn family_head(&self, tx: &Transaction<'_>, stem: &str) -> Result<Option<(i64, String, i64)>> {
        tx.prepare_cached(&format!(
            "SELECT id, uid, created_at FROM artifact WHERE substr(uid, 1, {STEM_LEN}) = ?1
             ORDER BY trashed_at IS NOT NULL, created_at DESC, id DESC LIMIT 1"
        ))
        .and_then(|mut s| {
            s.query_row([stem], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .db(&self.db_path())
    }
}

/// The answer for content that is already registered.
fn existing_notice(artifact: Artifact, src: &Source) -> Saved {
    let mut notices = vec![match (&artifact.key, &src.key) {
        (Some(k), Some(want)) if k != want => {
            format!(
                "same content is already saved as {} ({k}); returning it instead of a duplicate",
                artifact.uid
            )
        }
        _ => format!(
            "content unchanged: returning the existing artifact {}",
            artifact.uid
        ),
    }];
    if artifact.is_trashed() {
        notices.push(format!(
            "{} is in the trash; `labmesh restore {}` brings it back",
            artifact.uid, artifact.uid
        ));
    }
    Saved {
        artifact,
        status: SaveStatus::Existing,
        notices,
    }
}

/// Marks the newest live version of a family as the latest, and only it:
/// by (created_at, uid), which every replica of a shared family agrees on.
pub(crate) fn refresh_latest(conn: &rusqlite::Connection, stem: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "UPDATE artifact SET is_latest = (id IS (
             SELECT id FROM artifact WHERE substr(uid, 1, {STEM_LEN}) = ?1 AND trashed_at IS NULL
             ORDER BY created_at DESC, uid DESC LIMIT 1))
         WHERE substr(uid, 1, {STEM_LEN}) = ?1"
    ))?
    .execute([stem])
    .map(|_| ())
}
