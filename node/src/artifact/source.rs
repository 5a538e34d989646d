//! The database-free half of saving: naming and hashing a source, and
//! writing its content into storage. Everything here is `Sync`, so batches
//! and folders run it on all cores.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::artifact::{Artifact, ArtifactKind};
use crate::error::{Error, Result};
use crate::hash::manifest::{self, Manifest};
use crate::hash::{ContentHash, hash_file};
use crate::parallel::parallel_map;
use crate::progress::Progress;
use crate::storage::layout::{MANIFEST_SUFFIX, object_key};
use crate::storage::local::read_small;
use crate::storage::{Durability, Storage};
use crate::suffix::{check_key_suffix, suffix_of, validate_key};

/// Files up to this size are read once into memory, hashed and written
/// (single saves).
pub const SMALL_FILE: u64 = 4 << 20;
/// In batches, only files up to this size stay in memory between hashing
/// and storing, so a batch of large files does not fill memory.
pub const BATCH_SMALL_FILE: u64 = 256 << 10;

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
    pub manifest: Option<(Manifest, Vec<PathBuf>)>,
    /// The artifact this one is a new version of, when named explicitly.
    pub revises: Option<Artifact>,
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
        manifest: None,
        revises: None,
    };
    match kind {
        ArtifactKind::Folder => {
            let (m, files) = manifest::build(&s.path, progress)?;
            (s.hash, s.size) = (m.hash(), m.size());
            s.manifest = Some((m, files));
        }
        ArtifactKind::File if len <= keep_bytes => {
            let bytes = read_small(&s.path, len)?;
            (s.hash, s.size) = (ContentHash::of(&bytes), bytes.len() as u64);
            s.bytes = Some(bytes);
        }
        ArtifactKind::File => {
            progress.start("hashing", len);
            (s.hash, s.size) = hash_file(&s.path, progress)?;
            progress.finish();
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

/// Writes the object(s) of a source. Folder members that committed rows
/// already vouch for (`referenced`) and that are present are skipped;
/// anything else is (re)written, since an unreferenced object may be the
/// torn leftover of a crash. Folder members and manifests are written
/// deferred: the caller syncs.
pub(crate) fn write_content(
    storage: &Storage,
    s: &Source,
    referenced: &HashSet<ContentHash>,
    durability: Durability,
    progress: &dyn Progress,
) -> Result<()> {
    let Some((manifest, files)) = &s.manifest else {
        return write_object(
            storage,
            &s.path,
            s.bytes.as_deref(),
            (s.hash, s.size),
            &s.suffix,
            durability,
            progress,
        );
    };
    let members: Vec<(&manifest::Entry, &PathBuf)> = manifest.entries.iter().zip(files).collect();
    parallel_map(&members, |(entry, file)| {
        let key = object_key(&entry.hash, &entry.suffix);
        if referenced.contains(&entry.hash) && has_object(storage, &key, entry.size)? {
            return Ok(());
        }
        write_object(
            storage,
            file,
            None,
            (entry.hash, entry.size),
            &entry.suffix,
            Durability::Deferred,
            progress,
        )
    })?;
    let text = manifest.to_text();
    let key = object_key(&s.hash, MANIFEST_SUFFIX);
    match storage {
        Storage::Local(local) => local.put_bytes(&key, text.as_bytes(), Durability::Deferred),
        Storage::Cloud(cloud) => cloud.put_bytes(&key, text.into_bytes()),
    }
}

/// Writes one object from memory or from its source file.
fn write_object(
    storage: &Storage,
    source: &Path,
    bytes: Option<&[u8]>,
    (hash, size): (ContentHash, u64),
    suffix: &str,
    durability: Durability,
    progress: &dyn Progress,
) -> Result<()> {
    let key = object_key(&hash, suffix);
    match (storage, bytes) {
        (Storage::Local(local), Some(b)) => local.put_bytes(&key, b, durability),
        (Storage::Local(local), None) => local.put_file(&key, source, durability, progress),
        (Storage::Cloud(cloud), _) => {
            if cloud.size_of(&key)? == Some(size) {
                return Ok(()); // Cloud PUTs are atomic: an object there is whole.
            }
            match bytes {
                Some(b) => cloud.put_bytes(&key, b.to_vec()),
                None => cloud.put_file(&key, source, (hash, size), progress),
            }
        }
    }
}
