//! Handing out content: a local path to bytes that match the artifact's
//! BLAKE3, downloading from cloud storage into the local cache first.
//!
//! Every path handed out is verified. A full re-hash happens only when the
//! file's identity (size, mtime, ctime, inode) changed since its last
//! verification — like git's index — so repeated calls are cheap while an
//! edit to stored content is still caught.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::artifact::{Artifact, ArtifactKind};
use crate::error::{DbContext, Error, Result};
use crate::hash::{ContentHash, hash_file};
use crate::instance::Instance;
use crate::storage::layout::{MANIFEST_SUFFIX, TMP_DIR, object_key};
use crate::storage::local::sync_dir;
use crate::storage::{LocalStorage, Storage};
use crate::time::now_ms;

/// A verified local copy of an artifact's content.
#[derive(Clone, Debug, Serialize)]
pub struct CachedContent {
    pub uid: String,
    /// A file, or a folder whose files are the artifact's.
    pub path: PathBuf,
    /// Bytes downloaded from remote storage by this call.
    pub downloaded_bytes: u64,
}

impl Instance {
    /// A local path to the verified content of the artifact `query` names.
    pub fn cache(&self, query: &str) -> Result<CachedContent> {
        let artifact = self.get(query)?;
        self.cache_artifact(&artifact)
    }

    /// Like `cache`, for an artifact already looked up.
    pub fn cache_artifact(&self, artifact: &Artifact) -> Result<CachedContent> {
        let storage = self.storage(artifact.storage_id)?;
        let mut downloaded_bytes = 0;
        let path = match artifact.kind {
            ArtifactKind::File => {
                let (path, n) = self.local_object(
                    &storage,
                    artifact,
                    &artifact.hash,
                    artifact.size,
                    &artifact.suffix,
                )?;
                downloaded_bytes += n;
                path
            }
            ArtifactKind::Folder => {
                let (path, n) = self.materialize_folder(&storage, artifact)?;
                downloaded_bytes += n;
                path
            }
        };
        // Provenance: an input of the current run, if one is active.
        self.record_input(artifact)?;
        Ok(CachedContent {
            uid: artifact.uid.clone(),
            path,
            downloaded_bytes,
        })
    }

    /// Where an artifact's content is stored (a path or URL); for folders,
    /// their manifest.
    pub fn location(&self, artifact: &Artifact) -> Result<String> {
        let suffix = match artifact.kind {
            ArtifactKind::File => artifact.suffix.as_str(),
            ArtifactKind::Folder => MANIFEST_SUFFIX,
        };
        Ok(self
            .storage(artifact.storage_id)?
            .location(&object_key(&artifact.hash, suffix)))
    }

    /// Local storage for verified copies of remote content.
    pub(crate) fn cache_storage(&self) -> LocalStorage {
        LocalStorage::new(self.paths.cache())
    }

    /// A verified local file for one object: in place for local storage,
    /// downloaded into the cache for cloud storage.
    fn local_object(
        &self,
        storage: &Storage,
        artifact: &Artifact,
        hash: &ContentHash,
        size: u64,
        suffix: &str,
    ) -> Result<(PathBuf, u64)> {
        let key = object_key(hash, suffix);
        match storage {
            Storage::Local(local) => {
                let path = local.path_of(&key);
                if !path.is_file() {
                    // Not here: peers known to hold it may serve it.
                    if self.holders(hash)?.is_empty() {
                        return Err(Error::ContentMissing {
                            uid: artifact.uid.clone(),
                            location: path.display().to_string(),
                        });
                    }
                    self.progress.start("downloading", size);
                    let fetched = self.fetch_object(hash, size, &path);
                    self.progress.finish();
                    let n = fetched?;
                    // Sealed like any object; the transport verified BLAKE3 and size.
                    let mut perms = std::fs::metadata(&path)
                        .map_err(|e| Error::io("reading", &path, e))?
                        .permissions();
                    perms.set_readonly(true);
                    std::fs::set_permissions(&path, perms)
                        .map_err(|e| Error::io("sealing", &path, e))?;
                    self.record_verified(&path, hash)?;
                    self.note_location(hash, &self.peer_id.clone())?;
                    return Ok((path, n));
                }
                self.verify_file(&path, artifact, hash, size)?;
                Ok((path, 0))
            }
            Storage::Cloud(cloud) => {
                let cache = self.cache_storage();
                let path = cache.path_of(&key);
                if path.is_file() {
                    match self.verify_file(&path, artifact, hash, size) {
                        Ok(()) => return Ok((path, 0)),
                        // A damaged cache copy is ours to replace, not an error.
                        Err(Error::Corrupted { .. }) => {
                            cache.remove(&key)?;
                        }
                        Err(e) => return Err(e),
                    }
                }
                let tmp_dir = cache.root().join(TMP_DIR);
                fs::create_dir_all(&tmp_dir).map_err(|e| Error::io("creating", &tmp_dir, e))?;
                let tmp_path = tmp_dir.join(format!("{}.partial", crate::uid::random(16)));
                let mut tmp = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp_path)
                    .map_err(|e| Error::io("creating", &tmp_path, e))?;
                self.progress.start("downloading", size);
                let got = cloud.download(&key, &mut tmp, &tmp_path, self.progress.as_ref());
                self.progress.finish();
                let result = got.and_then(|(got_hash, got_size)| {
                    if (got_hash, got_size) != (*hash, size) {
                        return Err(Error::Corrupted {
                            uid: artifact.uid.clone(),
                            location: storage.location(&key),
                            expected: hash.to_hex(),
                            expected_size: size,
                            actual: got_hash.to_hex(),
                            actual_size: got_size,
                        });
                    }
                    tmp.sync_data()
                        .map_err(|e| Error::io("syncing", &tmp_path, e))?;
                    let mut perms = tmp
                        .metadata()
                        .map_err(|e| Error::io("reading", &tmp_path, e))?
                        .permissions();
                    perms.set_readonly(true);
                    tmp.set_permissions(perms)
                        .map_err(|e| Error::io("sealing", &tmp_path, e))?;
                    let dir = path.parent().unwrap_or(cache.root());
                    fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
                    fs::rename(&tmp_path, &path).map_err(|e| Error::io("caching", &path, e))?;
                    sync_dir(dir)?;
                    self.record_verified(&path, hash)
                });
                if result.is_err() {
                    let _ = fs::remove_file(&tmp_path);
                }
                result.map(|()| (path, size))
            }
        }
    }

    /// Checks a local file against (hash, size), re-hashing only when the
    /// file changed since it was last verified.
    fn verify_file(
        &self,
        path: &Path,
        artifact: &Artifact,
        hash: &ContentHash,
        size: u64,
    ) -> Result<()> {
        match self.check_file(path, hash, size)? {
            None => Ok(()),
            Some((actual, actual_size)) => Err(Error::Corrupted {
                uid: artifact.uid.clone(),
                location: path.display().to_string(),
                expected: hash.to_hex(),
                expected_size: size,
                actual: actual.to_hex(),
                actual_size,
            }),
        }
    }

    /// `None` when the file at `path` holds exactly (hash, size), else what
    /// it holds. Re-hashes only when the file's identity changed since its
    /// last verification.
    pub(crate) fn check_file(
        &self,
        path: &Path,
        hash: &ContentHash,
        size: u64,
    ) -> Result<Option<(ContentHash, u64)>> {
        let id = FileIdentity::of(path)?;
        let known: Option<(String, FileIdentity)> = self
            .conn
            .prepare_cached(
                "SELECT hash, size, mtime_ns, ctime_ns, inode FROM verified_file WHERE path = ?1",
            )
            .and_then(|mut s| {
                s.query_row([self.verified_key(path)], |r| {
                    let id = FileIdentity {
                        size: r.get(1)?,
                        mtime_ns: r.get(2)?,
                        ctime_ns: r.get(3)?,
                        inode: r.get(4)?,
                    };
                    Ok((r.get(0)?, id))
                })
                .optional()
            })
            .db(&self.db_path())?;
        if let Some((known_hash, known_id)) = known
            && known_hash == hash.to_hex()
            && known_id == id
            && id.size as u64 == size
        {
            return Ok(None);
        }
        self.progress.start("verifying", id.size as u64);
        let actual = hash_file(path, self.progress.as_ref());
        self.progress.finish();
        let actual = actual?;
        if actual != (*hash, size) {
            return Ok(Some(actual));
        }
        self.record_verified_as(path, hash, &id)?;
        Ok(None)
    }

    /// Records that the file at `path` holds `hash`, as it is now (called
    /// right after writing it, inside the save's transaction).
    pub(crate) fn record_verified(&self, path: &Path, hash: &ContentHash) -> Result<()> {
        let id = FileIdentity::of(path)?;
        self.record_verified_as(path, hash, &id)
    }

    fn record_verified_as(&self, path: &Path, hash: &ContentHash, id: &FileIdentity) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO verified_file (path, hash, size, mtime_ns, ctime_ns, inode, verified_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![self.verified_key(path), hash.to_hex(), id.size, id.mtime_ns, id.ctime_ns, id.inode, now_ms()])
            })
            .map(|_| ())
            .db(&self.db_path())
    }

    /// A folder artifact as a local directory: its files hard-linked (or
    /// copied) from verified objects into `.labmesh/cache/folders/`.
    fn materialize_folder(&self, storage: &Storage, artifact: &Artifact) -> Result<(PathBuf, u64)> {
        let mut entries = self.folder_entries(artifact)?;
        if entries.is_empty() {
            // A folder from a peer: its manifest comes first, then its files.
            entries = self.fetch_manifest(storage, artifact)?;
        }
        let dest = self
            .paths
            .cache()
            .join("folders")
            .join(format!("{}{}", artifact.hash, artifact.suffix));
        let mut downloaded = 0;
        if dest.is_dir() {
            if self.materialized_intact(&dest, &entries)? {
                return Ok((dest, 0));
            }
            // Ours to rebuild: a file added, removed or changed. Changed
            // bytes in a hard-linked file are caught again at the object.
            fs::remove_dir_all(&dest).map_err(|e| Error::io("removing", &dest, e))?;
        }
        // The manifest must exist too: it is what peers resolve the folder by.
        let manifest_key = object_key(&artifact.hash, MANIFEST_SUFFIX);
        if let Storage::Local(local) = storage
            && !local.path_of(&manifest_key).is_file()
        {
            return Err(Error::ContentMissing {
                uid: artifact.uid.clone(),
                location: storage.location(&manifest_key),
            });
        }
        let parent = dest.parent().unwrap_or(&dest).to_path_buf();
        let staging = parent.join(format!(".{}.partial", crate::uid::random(12)));
        self.progress
            .start("materializing", entries.iter().map(|e| e.size).sum());
        let result = (|| -> Result<()> {
            fs::create_dir_all(&staging).map_err(|e| Error::io("creating", &staging, e))?;
            for e in &entries {
                let (object, n) =
                    self.local_object(storage, artifact, &e.hash, e.size, &e.suffix)?;
                downloaded += n;
                self.progress.advance(e.size);
                let target = staging.join(&e.path);
                if let Some(dir) = target.parent() {
                    fs::create_dir_all(dir).map_err(|err| Error::io("creating", dir, err))?;
                }
                if fs::hard_link(&object, &target).is_err() {
                    fs::copy(&object, &target).map_err(|err| Error::io("copying", &object, err))?;
                }
            }
            match fs::rename(&staging, &dest) {
                Ok(()) => Ok(()),
                // Another process materialized it meanwhile: theirs will do.
                Err(_) if dest.is_dir() && self.materialized_intact(&dest, &entries)? => {
                    let _ = fs::remove_dir_all(&staging);
                    Ok(())
                }
                Err(e) => Err(Error::io("creating", &dest, e)),
            }
        })();
        self.progress.finish();
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        Ok((dest, downloaded))
    }

    /// Whether a materialized folder holds exactly the manifest's files —
    /// none missing, none added — each with its content.
    fn materialized_intact(
        &self,
        dest: &Path,
        entries: &[crate::hash::manifest::Entry],
    ) -> Result<bool> {
        let mut expected_dirs = std::collections::HashSet::new();
        for e in entries {
            let mut dir = Path::new(&e.path).parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                expected_dirs.insert(d.to_path_buf());
                dir = d.parent();
            }
        }
        let mut files = 0usize;
        let mut stack = vec![dest.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let listing = fs::read_dir(&dir).map_err(|e| Error::io("reading folder", &dir, e))?;
            for entry in listing {
                let entry = entry.map_err(|e| Error::io("reading folder", &dir, e))?;
                let path = entry.path();
                let rel = path.strip_prefix(dest).unwrap_or(&path).to_path_buf();
                let kind = entry
                    .file_type()
                    .map_err(|e| Error::io("reading", &path, e))?;
                if kind.is_dir() {
                    if !expected_dirs.contains(&rel) {
                        return Ok(false);
                    }
                    stack.push(path);
                } else {
                    files += 1;
                }
            }
        }
        if files != entries.len() {
            return Ok(false);
        }
        for e in entries {
            let path = dest.join(&e.path);
            if !path.is_file() || self.check_file(&path, &e.hash, e.size)?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Gets a remote folder's manifest (from storage, else from peers) and
    /// records its entries.
    fn fetch_manifest(
        &self,
        storage: &Storage,
        artifact: &Artifact,
    ) -> Result<Vec<crate::hash::manifest::Entry>> {
        let key = object_key(&artifact.hash, MANIFEST_SUFFIX);
        let Storage::Local(local) = storage else {
            return Err(Error::ContentMissing {
                uid: artifact.uid.clone(),
                location: storage.location(&key),
            });
        };
        let path = local.path_of(&key);
        if !path.is_file() {
            let size: Option<i64> = self
                .conn
                .prepare_cached("SELECT doc FROM sync_document WHERE uid = ?1 LIMIT 1")
                .and_then(|mut s| {
                    s.query_row([&artifact.uid], |r| r.get::<_, Vec<u8>>(0))
                        .optional()
                })
                .db(&self.db_path())?
                .and_then(|d| labmesh_sync::RecordDoc::load(&d).ok())
                .and_then(|d| match d.view().fields.get("manifest_size") {
                    Some(labmesh_sync::FieldValue::Int(n)) => Some(*n),
                    _ => None,
                });
            let Some(size) = size else {
                return Err(Error::ContentMissing {
                    uid: artifact.uid.clone(),
                    location: path.display().to_string(),
                });
            };
            self.fetch_object(&artifact.hash, size as u64, &path)?;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
        if crate::hash::ContentHash::of(text.as_bytes()) != artifact.hash {
            return Err(Error::Corrupted {
                uid: artifact.uid.clone(),
                location: path.display().to_string(),
                expected: artifact.hash.to_hex(),
                expected_size: 0,
                actual: crate::hash::ContentHash::of(text.as_bytes()).to_hex(),
                actual_size: text.len() as u64,
            });
        }
        let manifest = crate::hash::manifest::Manifest::parse(&text)?;
        let mut insert = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO folder_entry (artifact_id, path, hash, size, suffix) VALUES (?1, ?2, ?3, ?4, ?5)")
            .db(&self.db_path())?;
        for e in &manifest.entries {
            insert
                .execute(params![
                    artifact.id,
                    e.path,
                    e.hash.to_hex(),
                    e.size as i64,
                    e.suffix
                ])
                .db(&self.db_path())?;
            self.note_location_from(&e.hash, &artifact.origin)?;
        }
        Ok(manifest.entries)
    }

    /// A folder's members are held where the folder is.
    fn note_location_from(&self, hash: &ContentHash, peer: &str) -> Result<()> {
        self.note_location(hash, peer)
    }

    /// Drops cached copies of an artifact's content (after a permanent delete).
    pub(crate) fn forget_cached(&self, artifact: &Artifact) -> Result<()> {
        if artifact.kind == ArtifactKind::Folder {
            let dir = self
                .paths
                .cache()
                .join("folders")
                .join(format!("{}{}", artifact.hash, artifact.suffix));
            if dir.is_dir() {
                fs::remove_dir_all(&dir).map_err(|e| Error::io("removing", &dir, e))?;
            }
        }
        self.conn
            .execute(
                "DELETE FROM verified_file WHERE hash = ?1",
                [artifact.hash.to_hex()],
            )
            .db(&self.db_path())?;
        Ok(())
    }

    /// How `verified_file` names a path: relative to the instance
    /// directory when inside it, so records stay valid when the instance
    /// is moved (and a copy's records never vouch for the original's files).
    fn verified_key(&self, path: &Path) -> String {
        match path.strip_prefix(&self.paths.root) {
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }

    /// Forgets the verification record of a removed file.
    pub(crate) fn forget_verified(&self, path: &Path) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM verified_file WHERE path = ?1",
                [self.verified_key(path)],
            )
            .map(|_| ())
            .db(&self.db_path())
    }

    /// Removes materialized folders whose artifact is gone.
    pub(crate) fn prune_materialized_folders(&self) -> Result<()> {
        let root = self.paths.cache().join("folders");
        let Ok(entries) = fs::read_dir(&root) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep = name.len() >= 64
                && name.is_char_boundary(64)
                && self
                    .conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM artifact WHERE hash = ?1 AND kind = 'folder')")
                    .and_then(|mut s| s.query_row([&name[..64]], |r| r.get::<_, bool>(0)))
                    .db(&self.db_path())?;
            if !keep {
                fs::remove_dir_all(entry.path())
                    .map_err(|e| Error::io("removing", entry.path(), e))?;
            }
        }
        Ok(())
    }
}

/// What identifies a file's current contents without reading them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileIdentity {
    size: i64,
    mtime_ns: i64,
    ctime_ns: i64,
    inode: i64,
}

impl FileIdentity {
    fn of(path: &Path) -> Result<Self> {
        let meta = fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(FileIdentity {
                size: meta.len() as i64,
                mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
                inode: meta.ino() as i64,
            })
        }
        #[cfg(not(unix))]
        {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i64);
            Ok(FileIdentity {
                size: meta.len() as i64,
                mtime_ns: mtime,
                ctime_ns: 0,
                inode: 0,
            })
        }
    }
}
