//! The database-free half of saving: naming and hashing a source, and
//! writing its content into storage. Everything here is `Sync`, so batches
//! and folders run it on all cores.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::artifact::{Artifact, ArtifactKind};
use crate::error::{Error, Result};
use crate::hash::manifest::{self, Manifest, is_inside_dot_dir};
use crate::hash::{ContentHash, hash_file};
use crate::parallel::parallel_map;
use crate::progress::Progress;
use crate::storage::layout::{MANIFEST_SUFFIX, object_key};
use crate::storage::staging::read_unchanged;
use crate::storage::{StagedBatch, Storage};
use crate::suffix::{check_key_suffix, suffix_of, validate_key};

/// Files up to this size are read once into memory, hashed and written
/// (single saves).
pub const SMALL_FILE: u64 = 4 << 20;
/// In batches, only files up to this size stay in memory between hashing
/// and storing, so a batch of large files does not fill memory.
pub const BATCH_SMALL_FILE: u64 = 256 << 10;

/// A local object this save wrote: its hash (checked against the bytes
/// written) and its key.
pub(crate) type Written = (ContentHash, String);

/// A source named, hashed, and maybe already stored.
#[derive(Clone)]
pub(crate) struct Source {
    pub path: PathBuf,
    pub kind: ArtifactKind,
    pub key: Option<String>,
    pub suffix: String,
    pub hash: ContentHash,
    pub size: u64,
    /// File bytes kept from hashing (small files).
    pub bytes: Option<Vec<u8>>,
    /// Content already at its address (one-pass ingest).
    pub stored: bool,
    /// Local objects this save wrote and checked, to be recorded as
    /// verified with the row (nothing else is).
    pub written: Vec<Written>,
    pub manifest: Option<(Manifest, Vec<PathBuf>)>,
    /// The artifact this one is a new version of, when named explicitly.
    pub revises: Option<Artifact>,
    /// What the user should know about the source (skipped directories).
    pub notices: Vec<String>,
}

impl Source {
    pub fn identity(&self) -> (ContentHash, u64, ArtifactKind) {
        (self.hash, self.size, self.kind)
    }
}

/// A source's kind, absolute path, suffix and validated key; no content read.
pub(crate) fn name(
    path: &Path,
    key: Option<&str>,
    root: &Path,
) -> Result<(ArtifactKind, PathBuf, String, String, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
    refuse_labmesh_files(path, root)?;
    let kind = if meta.is_dir() {
        ArtifactKind::Folder
    } else if meta.is_file() {
        ArtifactKind::File
    } else {
        return Err(Error::UnsupportedFileType {
            path: path.to_path_buf(),
        });
    };
    let abs = crate::paths::absolute(path)?;
    let file_name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = suffix_of(&file_name);
    let key = match key {
        Some(k) => k.trim_end_matches('/').to_string(),
        None => default_key(&abs, root),
    };
    validate_key(&key)?;
    check_key_suffix(&key, &suffix, kind == ArtifactKind::Folder)?;
    Ok((kind, abs, suffix, key, meta.len()))
}

/// labmesh's own files are never content: not the instance directory as a
/// whole, and nothing in a `.labmesh/` directory (the database, the node's
/// private key), whether named directly or through a link.
fn refuse_labmesh_files(path: &Path, root: &Path) -> Result<()> {
    let abs = crate::paths::absolute(path)?;
    if abs == root {
        return Err(Error::InvalidArgument(format!(
            "{} is the instance's own directory; save the files and folders inside it instead",
            abs.display()
        )));
    }
    let inside = |p: &Path, root: &Path| is_inside_dot_dir(p.strip_prefix(root).unwrap_or(p));
    let canonical = std::fs::canonicalize(&abs).map_err(|e| Error::io("reading", &abs, e))?;
    let canonical_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if inside(&abs, root) || inside(&canonical, &canonical_root) || canonical == canonical_root {
        return Err(Error::InvalidArgument(format!(
            "{} is part of labmesh's own files (.labmesh/ holds the database and the node's private key), \
             which are never saved as artifacts\n  hint: save your data from outside .labmesh/",
            path.display()
        )));
    }
    Ok(())
}

/// Key from the path: relative to the instance root when inside it, else
/// the file's name.
fn default_key(abs: &Path, root: &Path) -> String {
    let rel = abs
        .strip_prefix(root)
        .ok()
        .filter(|r| !r.as_os_str().is_empty());
    let rel = rel.unwrap_or_else(|| Path::new(abs.file_name().unwrap_or(abs.as_os_str())));
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Hashes a named source without storing anything. Files up to
/// `keep_bytes` stay in memory for the write that follows.
pub(crate) fn hash_source(
    (kind, path, suffix, key, len): (ArtifactKind, PathBuf, String, String, u64),
    keep_bytes: u64,
    progress: &dyn Progress,
) -> Result<Source> {
    let mut s = Source {
        path,
        kind,
        key: Some(key),
        suffix,
        hash: ContentHash([0; 32]),
        size: 0,
        bytes: None,
        stored: false,
        written: Vec::new(),
        manifest: None,
        revises: None,
        notices: Vec::new(),
    };
    match kind {
        ArtifactKind::Folder => {
            let scanned = manifest::build(&s.path, progress)?;
            let m = scanned.manifest;
            (s.hash, s.size) = (m.hash(), m.size());
            s.notices = scanned
                .skipped
                .iter()
                .map(|d| {
                    format!(
                        "left out {}: labmesh's own files are never saved",
                        d.display()
                    )
                })
                .collect();
            s.manifest = Some((m, scanned.files));
        }
        ArtifactKind::File if len <= keep_bytes => {
            let bytes = read_unchanged(&s.path, len)?;
            (s.hash, s.size) = (ContentHash::of(&bytes), bytes.len() as u64);
            progress.advance(s.size);
            s.bytes = Some(bytes);
        }
        ArtifactKind::File => {
            (s.hash, s.size) = hash_file(&s.path, progress)?;
        }
    }
    Ok(s)
}

/// Whether storage holds the object with the expected size.
pub(crate) fn has_object(storage: &Storage, key: &str, size: u64) -> Result<bool> {
    match storage {
        Storage::Local(local) => Ok(local.has(key, size)),
        Storage::Cloud(cloud) => Ok(cloud.size_of(key)? == Some(size)),
    }
}

/// Whether any object exists under `key` (manifests: size not recorded).
pub(crate) fn has_any_object(storage: &Storage, key: &str) -> Result<bool> {
    match storage {
        Storage::Local(local) => Ok(local.path_of(key).is_file()),
        Storage::Cloud(cloud) => Ok(cloud.size_of(key)?.is_some()),
    }
}

/// Bytes `write_content` would write for a source (for progress totals).
pub(crate) fn bytes_to_write(s: &Source, referenced: &HashSet<ContentHash>) -> u64 {
    match &s.manifest {
        None => s.size,
        Some((m, _)) => {
            let mut seen = HashSet::new();
            m.entries
                .iter()
                .filter(|e| !referenced.contains(&e.hash) && seen.insert((e.hash, &e.suffix)))
                .map(|e| e.size)
                .sum()
        }
    }
}

/// Writes the object(s) of a source; returns the local objects written.
/// Every byte written is checked against the hash taken earlier, so a
/// source that changed since fails with `Error::ChangedWhileSaving` and
/// nothing reaches an address. A file is published at once (durable when
/// this returns) unless `batch` collects it; a folder's members and
/// manifest are always published together, through `batch` or their own.
/// Folder members that committed rows already vouch for (`referenced`)
/// and that are present are skipped; anything else is (re)written, since
/// an unreferenced object may be a leftover nobody checked.
pub(crate) fn write_content(
    storage: &Storage,
    s: &Source,
    referenced: &HashSet<ContentHash>,
    batch: Option<&StagedBatch>,
    progress: &dyn Progress,
) -> Result<Vec<Written>> {
    let Some((manifest, files)) = &s.manifest else {
        let written = write_object(
            storage,
            &s.path,
            s.bytes.as_deref(),
            (s.hash, s.size),
            &s.suffix,
            batch,
            progress,
        )?;
        return Ok(written.into_iter().collect());
    };
    let own = StagedBatch::new();
    let target = batch.unwrap_or(&own);
    let mut seen = HashSet::new();
    let members: Vec<(&manifest::Entry, &PathBuf)> = manifest
        .entries
        .iter()
        .zip(files)
        .filter(|(e, _)| seen.insert(object_key(&e.hash, &e.suffix)))
        .collect();
    let written = parallel_map(&members, |(entry, file)| {
        let key = object_key(&entry.hash, &entry.suffix);
        if referenced.contains(&entry.hash) && has_object(storage, &key, entry.size)? {
            return Ok(None);
        }
        write_object(
            storage,
            file,
            None,
            (entry.hash, entry.size),
            &entry.suffix,
            Some(target),
            progress,
        )
    })?;
    let text = manifest.to_text();
    let key = object_key(&s.hash, MANIFEST_SUFFIX);
    let mut written: Vec<Written> = written.into_iter().flatten().collect();
    match storage {
        Storage::Local(local) => {
            local.put_bytes(&key, text.as_bytes(), Some(target))?;
            written.push((s.hash, key));
        }
        Storage::Cloud(cloud) => cloud.put_bytes(&key, text.into_bytes())?,
    }
    if let (None, Storage::Local(local)) = (batch, storage) {
        own.publish(local)?;
    }
    Ok(written)
}

/// Writes one object from memory or from its source file (checked against
/// `(hash, size)`); returns it if it is a local object.
fn write_object(
    storage: &Storage,
    source: &Path,
    bytes: Option<&[u8]>,
    (hash, size): (ContentHash, u64),
    suffix: &str,
    batch: Option<&StagedBatch>,
    progress: &dyn Progress,
) -> Result<Option<Written>> {
    let key = object_key(&hash, suffix);
    match (storage, bytes) {
        (Storage::Local(local), Some(b)) => {
            local.put_bytes(&key, b, batch)?;
            progress.advance(b.len() as u64);
        }
        (Storage::Local(local), None) => {
            local.put_file(&key, source, (hash, size), batch, progress)?
        }
        (Storage::Cloud(cloud), _) => {
            if cloud.size_of(&key)? == Some(size) {
                progress.advance(size);
                return Ok(None); // Cloud PUTs are atomic: an object there is whole.
            }
            match bytes {
                Some(b) => {
                    cloud.put_bytes(&key, b.to_vec())?;
                    progress.advance(size);
                }
                None => cloud.put_file(&key, source, (hash, size), progress)?,
            }
            return Ok(None);
        }
    }
    Ok(Some((hash, key)))
}
