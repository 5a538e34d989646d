//! Saving files and folders: hash, deduplicate, store content durably,
//! then commit the row — in that order, so a crash at any point leaves no
//! row pointing at missing content, and running the save again completes it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::Transaction;
use serde::Serialize;

use crate::artifact::insert::existing_notice;
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
use crate::storage::{StagedBatch, Storage};

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
        self.save_one(path.as_ref(), opts, false)
    }

    /// `save`, but always a new record, even when the same content is
    /// registered already (its object is then shared in storage): for
    /// records that must not stand for another one, like a run's report.
    pub(crate) fn save_own_record(&self, path: &Path, opts: &SaveOptions) -> Result<Saved> {
        self.save_one(path, opts, true)
    }

    fn save_one(&self, path: &Path, opts: &SaveOptions, own_record: bool) -> Result<Saved> {
        let _lock = self.storage_lock(LockMode::Shared)?;
        let storage = self.storage(self.default_storage.id)?;
        let mut src = self.prepare(path, opts, &storage)?;
        if let Some(existing) =
            self.by_content(&src.hash, src.size, src.kind, src.key.as_deref())?
        {
            self.heal(&storage, &src, &existing)?;
            if !own_record {
                // Provenance: produced again by the current run, if one is active.
                return self.record_output_now(existing_notice(existing, &src, opts));
            }
            // Healed, so intact at its address: shared, unless the suffix differs.
            src.stored |=
                existing.storage_id == self.default_storage.id && existing.suffix == src.suffix;
        }
        failpoint::hit("save:before-content");
        self.store(&storage, &mut src)?;
        failpoint::hit("save:after-content");
        let tx = write_txn(&self.conn).db(&self.db_path())?;
        let mut saved = self.insert(&tx, &src, opts, &mut HashMap::new(), true, own_record)?;
        self.record_outputs(&tx, [&mut saved])?; // provenance, same transaction
        failpoint::hit("save:before-commit");
        tx.commit().db(&self.db_path())?;
        Ok(saved)
    }

    /// Saves many files in one transaction, with one sync of storage for
    /// the whole batch (two, in fact: content, then the renames that put
    /// it at its addresses). Each file's key comes from its path; two files
    /// that would get the same key are refused. Folders are saved one by
    /// one with `save`.
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
        let named = parallel_map(paths, |path| {
            let named = source::name(path, None, &root)?;
            if named.0 == ArtifactKind::Folder {
                return Err(Error::InvalidArgument(format!(
                    "{} is a folder; save folders on their own (`labmesh save {}`)",
                    path.display(),
                    path.display()
                )));
            }
            Ok(named)
        })?;
        refuse_shared_keys(named.iter().map(|n| (&n.1, n.3.as_str())))?;
        progress.start("hashing", named.iter().map(|n| n.4).sum());
        let sources = parallel_map(&named, |n| {
            source::hash_source(n.clone(), BATCH_SMALL_FILE, progress)
        });
        progress.finish();
        let mut sources = sources?;

        let mut outcome: Vec<Option<Saved>> = vec![None; sources.len()];
        let mut first_index = HashMap::new();
        let mut to_store = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            if let Some(existing) = self.by_content(&s.hash, s.size, s.kind, s.key.as_deref())? {
                self.heal(&storage, s, &existing)?;
                outcome[i] = Some(existing_notice(existing, s, opts));
            } else if first_index.insert(s.identity(), i).is_none() {
                to_store.push(i);
            }
        }

        let pending: Vec<&Source> = to_store.iter().map(|&i| &sources[i]).collect();
        progress.start("storing", pending.iter().map(|s| s.size).sum());
        let none = HashSet::new();
        let batch = StagedBatch::new();
        let written = parallel_map(&pending, |s| {
            source::write_content(&storage, s, &none, Some(&batch), progress)
        });
        let published = written.and_then(|written| {
            failpoint::hit("save-many:before-sync");
            if let Storage::Local(local) = &storage {
                batch.publish(local)?;
            }
            Ok(written)
        });
        progress.finish();
        let written = published?;
        failpoint::hit("save-many:after-content");
        for (&i, w) in to_store.iter().zip(written) {
            sources[i].stored = true;
            sources[i].written = w;
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

    /// The key `save` would give `path` without `--key`: its path inside
    /// the instance, else its file name. Checks the path as `save` does.
    pub fn default_key(&self, path: &Path) -> Result<String> {
        Ok(source::name(path, None, &self.paths.root)?.3)
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
                outcome[i] = Some(existing_notice(a.clone(), s, opts));
                continue;
            }
            let saved = self.insert(tx, s, opts, families, false, false)?;
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
        // A version holds the same kind of content (checked before the
        // key, whose suffix rules differ for files and folders).
        if let Some(r) = &revises
            && let Ok(meta) = std::fs::metadata(path)
        {
            let kind = if meta.is_dir() {
                ArtifactKind::Folder
            } else {
                ArtifactKind::File
            };
            if r.kind != kind {
                return Err(Error::InvalidArgument(format!(
                    "{} is a {}, but {} ({}) is a {}: a new version holds the same kind of content\n  \
                     hint: save it without --revises to make a new artifact",
                    path.display(),
                    kind.as_str(),
                    r.uid,
                    r.label(),
                    r.kind.as_str()
                )));
            }
        }
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
                let ingested = local.ingest(&path, &suffix, progress);
                progress.finish();
                let (hash, size) = ingested?;
                Source {
                    written: vec![(hash, object_key(&hash, &suffix))],
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
                    notices: Vec::new(),
                }
            }
            // A folder reports its own hashing (see `manifest::build`).
            _ if kind == ArtifactKind::Folder => source::hash_source(named, SMALL_FILE, progress)?,
            _ => {
                progress.start("hashing", len);
                let hashed = source::hash_source(named, SMALL_FILE, progress);
                progress.finish();
                hashed?
            }
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

    /// Stores a source's content unless it already is: durable when this
    /// returns (a folder's objects published together).
    fn store(&self, storage: &Storage, src: &mut Source) -> Result<()> {
        if src.stored {
            return Ok(());
        }
        let referenced = match &src.manifest {
            Some((m, _)) => self.referenced_hashes(m)?,
            None => HashSet::new(),
        };
        self.store_skipping(storage, src, &referenced)
    }

    /// `store`, keeping the folder members in `keep` that are present.
    fn store_skipping(
        &self,
        storage: &Storage,
        src: &mut Source,
        keep: &HashSet<ContentHash>,
    ) -> Result<()> {
        let progress = self.progress.as_ref();
        progress.start("storing", source::bytes_to_write(src, keep));
        let written = source::write_content(storage, src, keep, None, progress);
        progress.finish();
        src.written = written?;
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
        // Members found intact are kept; anything else is written again.
        let mut intact = HashSet::new();
        let whole = match &src.manifest {
            None => self.object_intact(storage, &existing.hash, existing.size, &existing.suffix)?,
            Some((m, _)) => {
                let mut whole =
                    source::has_any_object(storage, &object_key(&existing.hash, MANIFEST_SUFFIX))?;
                for e in &m.entries {
                    if self.object_intact(storage, &e.hash, e.size, &e.suffix)? {
                        intact.insert(e.hash);
                    } else {
                        whole = false;
                    }
                }
                whole
            }
        };
        if whole {
            return Ok(());
        }
        let mut repair = src.clone();
        repair.suffix = existing.suffix.clone();
        repair.stored = false;
        self.store_skipping(storage, &mut repair, &intact)?;
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

    /// Records the identity of the local objects this save wrote — each
    /// checked against its hash as it was written — so later checks need
    /// only a `stat`. Objects it did not write are not vouched for.
    pub(super) fn record_written(&self, src: &Source) -> Result<()> {
        if src.written.is_empty() {
            return Ok(());
        }
        let Storage::Local(local) = self.storage(self.default_storage.id)? else {
            return Ok(());
        };
        for (hash, key) in &src.written {
            self.record_verified(&local.path_of(key), hash)?;
        }
        Ok(())
    }
}

/// Two different files of one call that would get the same key would
/// silently become versions of each other: refused, naming both.
fn refuse_shared_keys<'a>(named: impl Iterator<Item = (&'a PathBuf, &'a str)>) -> Result<()> {
    let mut by_key: HashMap<&str, &PathBuf> = HashMap::new();
    for (path, key) in named {
        match by_key.insert(key, path) {
            Some(other) if other != path => {
                return Err(Error::InvalidArgument(format!(
                    "{} and {} would both be saved as {key:?}, so one would silently become a new version \
                     of the other\n  hint: save them in separate calls with --key, or give them distinct names",
                    other.display(),
                    path.display()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}
