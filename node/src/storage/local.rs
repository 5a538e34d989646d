//! Storage on a local file system.
//!
//! Writes follow the design's crash-safety order: content goes to a staging
//! file under `.tmp/`, is synced, made read-only and renamed to its
//! content address, and the directory is synced; only then may a row point
//! at it. Bulk writes defer the syncs and finish with one `syncfs`.
//!
//! This backend works on the file system directly rather than through
//! `object_store`'s `LocalFileSystem` because the ingest path needs what that
//! API cannot express: kernel-side copies (`copy_file_range`, reflinks),
//! early write-back while copying, one `syncfs` for a batch, and handing
//! out the object's own path from `cache`. Cloud stores go through
//! `object_store` (see `cloud.rs`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hash::{CHUNK, ContentHash, Hasher, read_full};
use crate::progress::Progress;
use crate::storage::layout::{OBJECTS_DIR, TMP_DIR, object_key, parse_object_key};
use crate::storage::{Durability, StoredObject};

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

    /// Stores bytes whose hash the caller computed.
    pub fn put_bytes(&self, key: &str, bytes: &[u8], durability: Durability) -> Result<()> {
        self.put_with(key, durability, |f, path| {
            f.write_all(bytes)
                .map_err(|e| Error::io("writing", path, e))
        })
    }

    /// Stores a copy of `src`, whose hash the caller computed, copying in
    /// the kernel where the file system allows.
    pub fn put_file(
        &self,
        key: &str,
        src: &Path,
        durability: Durability,
        progress: &dyn Progress,
    ) -> Result<()> {
        let mut source = File::open(src).map_err(|e| Error::io("reading", src, e))?;
        self.put_with(key, durability, |f, _| {
            source.rewind().map_err(|e| Error::io("reading", src, e))?;
            copy_with_writeback(&mut source, f, progress)
                .map(|_| ())
                .map_err(|e| Error::io("copying", src, e))
        })
    }

    /// Writes an object whose address is known. The common case creates it
    /// read-only, exclusively, at its address: one file creation, no rename.
    /// If something is already there — a leftover nobody vouches for, or
    /// the same content from a concurrent save — the content is staged and
    /// renamed over it, so an existing object is never seen half-written.
    /// A crash mid-write can leave a torn object at its address, but no row
    /// points at it (rows commit after the sync) and the next save of that
    /// content replaces it.
    fn put_with(
        &self,
        key: &str,
        durability: Durability,
        mut write: impl FnMut(&mut File, &Path) -> Result<()>,
    ) -> Result<()> {
        let dest = self.path_of(key);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        let created = match create_sealed(&dest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
                if durability == Durability::Immediate {
                    sync_dir(dir.parent().unwrap_or(&self.root))?;
                }
                create_sealed(&dest)
            }
            other => other,
        };
        match created {
            Ok(mut f) => {
                let result = write(&mut f, &dest).and_then(|()| {
                    if durability == Durability::Immediate {
                        f.sync_data().map_err(|e| Error::io("syncing", &dest, e))?;
                        sync_dir(&dir)?;
                    }
                    Ok(())
                });
                if result.is_err() {
                    let _ = fs::remove_file(&dest);
                }
                result
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let (tmp_path, mut tmp) = self.staging_file()?;
                let result = write(&mut tmp, &tmp_path)
                    .and_then(|()| self.publish(tmp, &tmp_path, key, durability));
                discard_on_error(result, &tmp_path)
            }
            Err(e) => Err(Error::io("creating", &dest, e)),
        }
    }

    /// Copies `src` into storage while hashing it on a second thread, in one
    /// pass over the source; returns the hash and size once the object is
    /// published under its content address.
    pub fn ingest(
        &self,
        src: &Path,
        suffix: &str,
        durability: Durability,
        progress: &dyn Progress,
    ) -> Result<(ContentHash, u64)> {
        let mut copy_src = File::open(src).map_err(|e| Error::io("reading", src, e))?;
        let mut hash_src = File::open(src).map_err(|e| Error::io("reading", src, e))?;
        let (tmp_path, mut tmp) = self.staging_file()?;
        let result = std::thread::scope(|scope| {
            let hashing = scope.spawn(move || -> std::io::Result<(ContentHash, u64)> {
                let mut hasher = Hasher::new();
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = read_full(&mut hash_src, &mut buf)?;
                    if n == 0 {
                        return Ok(hasher.finish());
                    }
                    hasher.update(&buf[..n]);
                    progress.advance(n as u64);
                }
            });
            let copied = copy_with_writeback(&mut copy_src, &mut tmp, &crate::progress::NoProgress);
            crate::failpoint::hit("ingest:after-copy");
            let hashed = hashing
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("hashing thread panicked")));
            match (copied, hashed) {
                (Ok(copied), Ok((hash, size))) if copied == size => Ok((hash, size, tmp)),
                (Ok(_), Ok(_)) => Err(Error::InvalidArgument(format!(
                    "{} changed while it was being saved; save it again once it is no longer being written",
                    src.display()
                ))),
                (Err(e), _) | (_, Err(e)) => Err(Error::io("copying", src, e)),
            }
        });
        let published = result.and_then(|(hash, size, tmp)| {
            self.publish(tmp, &tmp_path, &object_key(&hash, suffix), durability)?;
            Ok((hash, size))
        });
        discard_on_error(published, &tmp_path)
    }

    /// Makes every deferred write on this file system durable (one `syncfs`).
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

    fn staging_file(&self) -> Result<(PathBuf, File)> {
        let dir = self.root.join(TMP_DIR);
        for attempt in 0..2 {
            let path = dir.join(format!("{}.partial", crate::uid::random(16)));
            match create_sealed(&path) {
                Ok(f) => return Ok((path, f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt == 0 => {
                    fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
                }
                Err(e) => return Err(Error::io("creating", &path, e)),
            }
        }
        Err(Error::io(
            "creating",
            &dir,
            std::io::Error::other("staging directory keeps vanishing"),
        ))
    }

    /// Syncs (if immediate), seals and renames a staging file to its address.
    fn publish(&self, tmp: File, tmp_path: &Path, key: &str, durability: Durability) -> Result<()> {
        if durability == Durability::Immediate {
            tmp.sync_data()
                .map_err(|e| Error::io("syncing", tmp_path, e))?;
        }
        drop(tmp);
        let dest = self.path_of(key);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        if let Err(e) = fs::rename(tmp_path, &dest) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::io("storing", &dest, e));
            }
            fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
            if durability == Durability::Immediate {
                sync_dir(dir.parent().unwrap_or(&self.root))?;
            }
            fs::rename(tmp_path, &dest).map_err(|e| Error::io("storing", &dest, e))?;
        }
        if durability == Durability::Immediate {
            sync_dir(&dir)?;
        }
        Ok(())
    }
}

/// Creates a new file that is read-only from birth (the returned handle can
/// still write it): stored content is sealed without an extra `chmod`.
fn create_sealed(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o444);
    let file = opts.open(path)?;
    #[cfg(not(unix))]
    {
        let mut perms = file.metadata()?.permissions();
        perms.set_readonly(true);
        file.set_permissions(perms)?;
    }
    Ok(file)
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

fn discard_on_error<T>(result: Result<T>, tmp_path: &Path) -> Result<T> {
    if result.is_err() {
        let _ = fs::remove_file(tmp_path);
    }
    result
}

/// Syncs a directory so that renames into it survive a power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing", dir, e))
}

/// Copies all of `src` to `dst`, in the kernel where possible, starting
/// write-back of each chunk as soon as it is copied so that the final sync
/// only waits for the tail. Returns the bytes copied.
fn copy_with_writeback(
    src: &mut File,
    dst: &mut File,
    progress: &dyn Progress,
) -> std::io::Result<u64> {
    let mut copied: u64 = 0;
    let mut kernel_copy = true;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let n = if kernel_copy {
            match sys::copy_file_range(src, dst, CHUNK) {
                Ok(n) => n,
                Err(e) if copied == 0 && sys::is_unsupported(&e) => {
                    kernel_copy = false;
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            if buf.is_empty() {
                buf = vec![0u8; CHUNK];
            }
            let n = read_full(src, &mut buf)?;
            dst.write_all(&buf[..n])?;
            n
        };
        if n == 0 {
            return Ok(copied);
        }
        sys::start_writeback(dst, copied, n as u64);
        copied += n as u64;
        progress.advance(n as u64);
    }
}

/// Reads a whole small file.
pub fn read_small(path: &Path, size_hint: u64) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let mut bytes = Vec::with_capacity(size_hint as usize);
    f.read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading", path, e))?;
    Ok(bytes)
}

#[cfg(target_os = "linux")]
mod sys {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    pub fn copy_file_range(src: &File, dst: &File, len: usize) -> std::io::Result<usize> {
        loop {
            // SAFETY: both descriptors are open files owned by the caller; null
            // offsets mean "use and advance each file's own position".
            let n = unsafe {
                libc::copy_file_range(
                    src.as_raw_fd(),
                    std::ptr::null_mut(),
                    dst.as_raw_fd(),
                    std::ptr::null_mut(),
                    len,
                    0,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    pub fn is_unsupported(e: &std::io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL | libc::EPERM)
        )
    }

    pub fn start_writeback(f: &File, offset: u64, len: u64) {
        // SAFETY: plain syscall on an open descriptor. Failure only means the
        // final sync does all the work, so the result is ignored.
        unsafe {
            libc::sync_file_range(
                f.as_raw_fd(),
                offset as i64,
                len as i64,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }

    pub fn syncfs(f: &File) -> std::io::Result<()> {
        // SAFETY: plain syscall on an open descriptor.
        if unsafe { libc::syncfs(f.as_raw_fd()) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::fs::File;

    pub fn copy_file_range(_: &File, _: &File, _: usize) -> std::io::Result<usize> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }

    pub fn is_unsupported(e: &std::io::Error) -> bool {
        e.kind() == std::io::ErrorKind::Unsupported
    }

    pub fn start_writeback(_: &File, _: u64, _: u64) {}

    /// Without `syncfs`, a full `sync` is the portable way to flush.
    pub fn syncfs(_: &File) -> std::io::Result<()> {
        std::process::Command::new("sync").status().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

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
        let (hash, size) = s
            .ingest(&src, ".bin", Durability::Immediate, &NoProgress)
            .unwrap();
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
        s.put_file(&key, &src, Durability::Immediate, &NoProgress)
            .unwrap();
        assert!(s.has(&key, 8));
        // Writing the same object again (e.g. a re-run after a crash) is harmless.
        s.put_bytes(&key, b"x,y\n1,2\n", Durability::Deferred)
            .unwrap();
        s.sync_all().unwrap();
        assert_eq!(fs::read(s.path_of(&key)).unwrap(), b"x,y\n1,2\n");
        assert!(s.remove(&key).unwrap());
        assert!(!s.remove(&key).unwrap());
    }
}
