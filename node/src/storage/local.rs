//! Storage on a local file system.
//!
//! Writes follow the design's crash-safety order (see `staging`): content
//! goes to a staging file under `.tmp/`, is hashed as written, synced, and
//! renamed to its content address; only then may a row point at it.
//! Batches stage everything, sync once, rename, and sync again.
//!
//! This backend works on the file system directly rather than through
//! `object_store`'s `LocalFileSystem` because the ingest path needs what that
//! API cannot express: kernel-side copies (`copy_file_range`, reflinks),
//! early write-back while copying, one `syncfs` for a batch, and handing
//! out the object's own path from `cache`. Cloud stores go through
//! `object_store` (see `cloud.rs`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::progress::Progress;
use crate::storage::StoredObject;
use crate::storage::layout::{OBJECTS_DIR, TMP_DIR, parse_object_key};
use crate::storage::staging::StagedBatch;
use crate::storage::sys;

/// A storage root on this machine.
#[derive(Clone, Debug)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the root and its staging directory.
    pub fn create(&self) -> Result<()> {
        let tmp = self.root.join(TMP_DIR);
        fs::create_dir_all(&tmp).map_err(|e| Error::io("creating storage", &tmp, e))?;
        fs::create_dir_all(self.root.join(OBJECTS_DIR))
            .map_err(|e| Error::io("creating storage", &self.root, e))
    }

    /// The file that holds (or would hold) an object.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Whether the object exists with the expected size (a cheap check; the
    /// hash is checked when content is handed out).
    pub fn has(&self, key: &str, size: u64) -> bool {
        fs::metadata(self.path_of(key))
            .map(|m| m.is_file() && m.len() == size)
            .unwrap_or(false)
    }

    /// Stores bytes whose hash the caller computed from them: published
    /// now (durable when this returns), or added to `batch`.
    pub fn put_bytes(&self, key: &str, bytes: &[u8], batch: Option<&StagedBatch>) -> Result<()> {
        let staged = self.stage_bytes(key, bytes)?;
        match batch {
            Some(b) => {
                b.push(staged);
                Ok(())
            }
            None => self.publish(staged),
        }
    }

    /// Stores a copy of `src`, which must still hash to `expected`
    /// (else `Error::ChangedWhileSaving`): published now, or added to `batch`.
    pub fn put_file(
        &self,
        key: &str,
        src: &Path,
        expected: (ContentHash, u64),
        batch: Option<&StagedBatch>,
        progress: &dyn Progress,
    ) -> Result<()> {
        let staged = self.stage_file(key, src, expected, progress)?;
        match batch {
            Some(b) => {
                b.push(staged);
                Ok(())
            }
            None => self.publish(staged),
        }
    }

    /// Copies `src` into storage, hashing the copy as it lands, in one pass
    /// over the source; returns the hash and size once the object is
    /// durable at its content address.
    pub fn ingest(
        &self,
        src: &Path,
        suffix: &str,
        progress: &dyn Progress,
    ) -> Result<(ContentHash, u64)> {
        let (staged, hash, size) = self.stage_new_file(src, suffix, progress)?;
        crate::failpoint::hit("ingest:after-copy");
        self.publish(staged)?;
        Ok((hash, size))
    }

    /// Makes every write on this file system durable (one `syncfs`).
    pub fn sync_all(&self) -> Result<()> {
        let dir = File::open(&self.root).map_err(|e| Error::io("syncing", &self.root, e))?;
        sys::syncfs(&dir).map_err(|e| Error::io("syncing", &self.root, e))
    }

    /// Removes an object; `Ok(false)` when it was already gone.
    pub fn remove(&self, key: &str) -> Result<bool> {
        let path = self.path_of(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("removing", &path, e)),
        }
    }

    /// Every object under the root, and every staging file (for gc).
    pub fn list(&self) -> Result<(Vec<StoredObject>, Vec<StoredObject>)> {
        let mut objects = Vec::new();
        let objects_dir = self.root.join(OBJECTS_DIR);
        for shard in read_dir_or_empty(&objects_dir)? {
            for entry in read_dir_or_empty(&shard)? {
                let key = match entry.strip_prefix(&self.root).ok().and_then(|p| p.to_str()) {
                    Some(k) => k.replace('\\', "/"),
                    None => continue,
                };
                if parse_object_key(&key).is_some() {
                    objects.push(stored(&entry, key)?);
                }
            }
        }
        let mut staging = Vec::new();
        for entry in read_dir_or_empty(&self.root.join(TMP_DIR))? {
            let key = format!(
                "{TMP_DIR}/{}",
                entry
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            );
            staging.push(stored(&entry, key)?);
        }
        Ok((objects, staging))
    }
}

fn stored(path: &Path, key: String) -> Result<StoredObject> {
    let meta = fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
    let modified_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    Ok(StoredObject {
        key,
        size: meta.len(),
        modified_ms,
    })
}

fn read_dir_or_empty(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.map(|e| e.path())
                    .map_err(|err| Error::io("listing", dir, err))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io("listing", dir, e)),
    }
}

/// Syncs a directory so that renames into it survive a power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::CHUNK;
    use crate::progress::NoProgress;
    use crate::storage::layout::object_key;

    fn storage() -> (tempfile::TempDir, LocalStorage) {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path().join("storage"));
        s.create().unwrap();
        (dir, s)
    }

    #[test]
    fn ingest_copies_and_hashes_in_one_pass() {
        let (dir, s) = storage();
        let src = dir.path().join("big.bin");
        let data: Vec<u8> = (0..(CHUNK * 2 + 777))
            .map(|i| (i * 7 % 256) as u8)
            .collect();
        fs::write(&src, &data).unwrap();
        let (hash, size) = s.ingest(&src, ".bin", &NoProgress).unwrap();
        assert_eq!((hash, size), (ContentHash::of(&data), data.len() as u64));
        let key = object_key(&hash, ".bin");
        assert_eq!(fs::read(s.path_of(&key)).unwrap(), data);
        assert!(
            fs::metadata(s.path_of(&key))
                .unwrap()
                .permissions()
                .readonly()
        );
        let (objects, staging) = s.list().unwrap();
        assert_eq!(objects.len(), 1);
        assert!(staging.is_empty(), "staging files left behind: {staging:?}");
    }

    #[test]
    fn put_file_and_bytes_land_at_their_address() {
        let (dir, s) = storage();
        let src = dir.path().join("a.csv");
        fs::write(&src, "x,y\n1,2\n").unwrap();
        let h = ContentHash::of(b"x,y\n1,2\n");
        let key = object_key(&h, ".csv");
        s.put_file(&key, &src, (h, 8), None, &NoProgress).unwrap();
        assert!(s.has(&key, 8));
        // Writing the same object again (e.g. a re-run after a crash) is harmless.
        let batch = StagedBatch::new();
        s.put_bytes(&key, b"x,y\n1,2\n", Some(&batch)).unwrap();
        batch.publish(&s).unwrap();
        assert_eq!(fs::read(s.path_of(&key)).unwrap(), b"x,y\n1,2\n");
        assert!(s.list().unwrap().1.is_empty(), "no staging files left");
        assert!(s.remove(&key).unwrap());
        assert!(!s.remove(&key).unwrap());
    }

    #[test]
    fn a_batch_reaches_its_addresses_only_when_published() {
        let (_dir, s) = storage();
        let batch = StagedBatch::new();
        let keys: Vec<String> = (0..3)
            .map(|i| {
                let bytes = format!("object {i}");
                let key = object_key(&ContentHash::of(bytes.as_bytes()), ".txt");
                s.put_bytes(&key, bytes.as_bytes(), Some(&batch)).unwrap();
                key
            })
            .collect();
        assert!(s.list().unwrap().0.is_empty(), "nothing at an address yet");
        assert_eq!(s.list().unwrap().1.len(), 3, "all staged");
        batch.publish(&s).unwrap();
        for k in &keys {
            assert!(s.path_of(k).is_file(), "{k}");
        }
        assert!(s.list().unwrap().1.is_empty());

        // A batch dropped unpublished (a failed save) leaves nothing behind.
        let batch = StagedBatch::new();
        s.put_bytes("objects/ab/never", b"x", Some(&batch)).unwrap();
        drop(batch);
        assert_eq!(s.list().unwrap(), (s.list().unwrap().0, Vec::new()));
        assert!(!s.path_of("objects/ab/never").exists());
    }

    #[test]
    fn a_file_that_no_longer_matches_its_hash_is_refused_and_nothing_stays() {
        let (dir, s) = storage();
        for len in [100, CHUNK + 5] {
            let src = dir.path().join(format!("f{len}.bin"));
            let old = vec![1u8; len];
            fs::write(&src, &old).unwrap();
            let expected = (ContentHash::of(&old), len as u64);
            // The file is rewritten (same size) between hashing and storing.
            fs::write(&src, vec![2u8; len]).unwrap();
            let key = object_key(&expected.0, ".bin");
            let err = s
                .put_file(&key, &src, expected, None, &NoProgress)
                .unwrap_err();
            assert!(
                matches!(err, Error::ChangedWhileSaving { .. }),
                "{len}: {err}"
            );
            assert!(err.to_string().contains("save it again"), "{err}");
            assert!(!s.path_of(&key).exists(), "{len}: nothing at the address");
            assert!(s.list().unwrap().1.is_empty(), "{len}: no staging left");
        }
    }

    /// Calls `f` the first time progress is reported: after the first
    /// chunk of a copy has landed.
    struct OnFirstChunk<F: Fn() + Sync>(F, std::sync::Once);

    impl<F: Fn() + Sync> Progress for OnFirstChunk<F> {
        fn advance(&self, _: u64) {
            self.1.call_once(|| (self.0)());
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_rewritten_while_it_is_ingested_is_refused() {
        let (dir, s) = storage();
        let src = dir.path().join("busy.bin");
        let len = CHUNK * 3;
        fs::write(&src, vec![7u8; len]).unwrap();
        // Last written an hour ago, so the rewrite below shows in its mtime
        // even on file systems with coarse timestamps.
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&src)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        // Same size, new bytes in the part not yet copied: only the
        // source's modification shows it.
        let rewrite = OnFirstChunk(
            || {
                use std::os::unix::fs::FileExt;
                let f = fs::OpenOptions::new().write(true).open(&src).unwrap();
                f.write_all_at(&[9u8; 4096], (CHUNK * 2) as u64).unwrap();
            },
            std::sync::Once::new(),
        );
        let err = s.ingest(&src, ".bin", &rewrite).unwrap_err();
        assert!(matches!(err, Error::ChangedWhileSaving { .. }), "{err}");
        assert_eq!(s.list().unwrap(), (Vec::new(), Vec::new()));
    }
}
