//! How content reaches its address in local storage. Every object is
//! written under a temporary name in `.tmp/`, hashed from the bytes that
//! actually landed there, synced, and only then renamed to its content
//! address. So an object at its address is always whole and always holds
//! the bytes its name promises: a crash leaves at most staging files
//! (which `gc` removes), and a source that changes while it is being
//! copied is refused instead of being stored under the wrong hash.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::hash::{CHUNK, ContentHash, Hasher, read_full};
use crate::progress::Progress;
use crate::storage::LocalStorage;
use crate::storage::layout::{TMP_DIR, object_key};
use crate::storage::local::sync_dir;
use crate::storage::sys;

/// Content written under a temporary name, not yet at its address.
/// Dropped unpublished, the staging file is removed.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    /// Kept open for the `fdatasync` of a single save; closed in batches
    /// (a batch of thousands of files must not hold thousands of descriptors).
    file: Option<File>,
    key: String,
    published: bool,
}

impl Staged {
    /// The content address this object will be published at.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            self.file = None;
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Objects staged by one save, published together: one `syncfs` makes all
/// their content durable, then each is renamed to its address, and a
/// second `syncfs` makes the renames durable. Nothing reaches an address
/// before its bytes are on disk, yet a batch of a thousand files costs two
/// file-system syncs, not a thousand.
#[derive(Debug, Default)]
pub struct StagedBatch {
    staged: Mutex<Vec<Staged>>,
}

impl StagedBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a staged object (safe to call from several threads).
    pub fn push(&self, mut staged: Staged) {
        staged.file = None;
        self.staged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(staged);
    }

    /// Syncs, renames every object to its address, syncs again.
    pub fn publish(self, storage: &LocalStorage) -> Result<()> {
        let staged = self
            .staged
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if staged.is_empty() {
            return Ok(());
        }
        storage.sync_all()?;
        for mut s in staged {
            storage.rename_into_place(&s.path, &s.key, false)?;
            s.published = true;
        }
        crate::failpoint::hit("publish:before-final-sync");
        storage.sync_all()
    }
}

impl LocalStorage {
    /// Stages bytes whose hash the caller computed from these same bytes.
    pub fn stage_bytes(&self, key: &str, bytes: &[u8]) -> Result<Staged> {
        let mut staged = self.staging_file(key)?;
        if let Some(f) = staged.file.as_mut() {
            f.write_all(bytes)
                .map_err(|e| Error::io("writing", &staged.path, e))?;
        }
        Ok(staged)
    }

    /// Stages a copy of `src`, which the caller hashed earlier as
    /// `expected`. The copy is hashed as it is written; if it differs, the
    /// file changed since it was hashed and the save is refused.
    pub fn stage_file(
        &self,
        key: &str,
        src: &Path,
        expected: (ContentHash, u64),
        progress: &dyn Progress,
    ) -> Result<Staged> {
        let mut source = File::open(src).map_err(|e| Error::io("reading", src, e))?;
        if expected.1 <= CHUNK as u64 {
            // Small enough to hold: read once, check, write those bytes.
            let mut bytes = Vec::with_capacity(expected.1 as usize + 1);
            source
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io("reading", src, e))?;
            if (ContentHash::of(&bytes), bytes.len() as u64) != expected {
                return Err(Error::ChangedWhileSaving {
                    path: src.to_path_buf(),
                });
            }
            let staged = self.stage_bytes(key, &bytes)?;
            progress.advance(bytes.len() as u64);
            return Ok(staged);
        }
        let mut staged = self.staging_file(key)?;
        let written = copy_and_hash(&mut source, &mut staged, progress)
            .map_err(|e| Error::io("copying", src, e))?;
        if written != expected {
            return Err(Error::ChangedWhileSaving {
                path: src.to_path_buf(),
            });
        }
        Ok(staged)
    }

    /// Stages a copy of `src` whose hash nobody knows yet (one pass: the
    /// copy is hashed as it lands). Refused if the file changed meanwhile.
    pub fn stage_new_file(
        &self,
        src: &Path,
        suffix: &str,
        progress: &dyn Progress,
    ) -> Result<(Staged, ContentHash, u64)> {
        let mut source = File::open(src).map_err(|e| Error::io("reading", src, e))?;
        let before = Snapshot::of(&source, src)?;
        // The key is known only once the content is hashed.
        let mut staged = self.staging_file("")?;
        let (hash, size) = copy_and_hash(&mut source, &mut staged, progress)
            .map_err(|e| Error::io("copying", src, e))?;
        if Snapshot::of(&source, src)? != before || size != before.size {
            return Err(Error::ChangedWhileSaving {
                path: src.to_path_buf(),
            });
        }
        staged.key = object_key(&hash, suffix);
        Ok((staged, hash, size))
    }

    /// Makes one staged object durable at its address: `fdatasync`,
    /// rename, directory sync.
    pub fn publish(&self, mut staged: Staged) -> Result<()> {
        let file = match staged.file.take() {
            Some(f) => f,
            None => File::open(&staged.path).map_err(|e| Error::io("syncing", &staged.path, e))?,
        };
        file.sync_data()
            .map_err(|e| Error::io("syncing", &staged.path, e))?;
        drop(file);
        self.rename_into_place(&staged.path, &staged.key, true)?;
        staged.published = true;
        Ok(())
    }

    /// A new staging file, read-only from birth (its handle still writes).
    fn staging_file(&self, key: &str) -> Result<Staged> {
        let dir = self.root().join(TMP_DIR);
        for attempt in 0..2 {
            let path = dir.join(format!("{}.partial", crate::uid::random(16)));
            match create_sealed(&path) {
                Ok(f) => {
                    return Ok(Staged {
                        path,
                        file: Some(f),
                        key: key.to_string(),
                        published: false,
                    });
                }
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

    /// Renames a staged file to its address (creating the shard directory
    /// if needed); `durable` also syncs the directories it changed.
    pub(crate) fn rename_into_place(&self, tmp: &Path, key: &str, durable: bool) -> Result<()> {
        let dest = self.path_of(key);
        let dir = dest.parent().unwrap_or(self.root()).to_path_buf();
        if let Err(e) = fs::rename(tmp, &dest) {
            if e.kind() != std::io::ErrorKind::NotFound || !tmp.exists() {
                return Err(Error::io("storing", &dest, e));
            }
            fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
            if durable {
                sync_dir(dir.parent().unwrap_or(self.root()))?;
            }
            fs::rename(tmp, &dest).map_err(|e| Error::io("storing", &dest, e))?;
        }
        if durable {
            sync_dir(&dir)?;
        }
        Ok(())
    }
}

/// What says a source file was not modified while it was read.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    size: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    changed: (i64, i64),
}

impl Snapshot {
    fn of(file: &File, path: &Path) -> Result<Self> {
        let meta = file.metadata().map_err(|e| Error::io("reading", path, e))?;
        Ok(Snapshot {
            size: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            changed: {
                use std::os::unix::fs::MetadataExt;
                (meta.ctime(), meta.ctime_nsec())
            },
        })
    }
}

/// Reads a whole file that is expected to be small, refusing it if it was
/// modified during the read (a torn read would be saved as content that
/// never existed).
pub fn read_unchanged(path: &Path, size_hint: u64) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let before = Snapshot::of(&f, path)?;
    let mut bytes = Vec::with_capacity(size_hint as usize);
    f.read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading", path, e))?;
    if Snapshot::of(&f, path)? != before || bytes.len() as u64 != before.size {
        return Err(Error::ChangedWhileSaving {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Creates a new file that is read-only from birth (the returned handle can
/// still write and read it back): stored content is sealed without an extra `chmod`.
fn create_sealed(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create_new(true);
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

/// Copies all of `src` into the staging file, in the kernel where possible,
/// while a second thread hashes each chunk as read back from the staging
/// file: the hash is of what was written, not of what was read at some
/// other moment. Write-back of each chunk starts as soon as it lands, so
/// the final sync only waits for the tail.
fn copy_and_hash(
    src: &mut File,
    staged: &mut Staged,
    progress: &dyn Progress,
) -> std::io::Result<(ContentHash, u64)> {
    let dst = staged
        .file
        .as_mut()
        .ok_or_else(|| std::io::Error::other("staging file is closed"))?;
    let reader = dst.try_clone()?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, usize)>(2);
    std::thread::scope(|scope| {
        let hashing = scope.spawn(move || -> std::io::Result<(ContentHash, u64)> {
            let mut hasher = Hasher::new();
            let mut buf = vec![0u8; CHUNK];
            for (offset, len) in rx {
                let chunk = &mut buf[..len];
                sys::read_exact_at(&reader, chunk, offset)?;
                hasher.update(chunk);
            }
            Ok(hasher.finish())
        });
        let copied = copy_chunks(src, dst, |offset, n| {
            progress.advance(n as u64);
            // A closed channel means the hashing thread failed; its error wins.
            tx.send((offset, n)).is_ok()
        });
        drop(tx);
        let hashed = hashing
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("hashing thread panicked")));
        let copied = copied?;
        let (hash, size) = hashed?;
        if size != copied {
            return Err(std::io::Error::other("the copy and its hash disagree"));
        }
        Ok((hash, size))
    })
}

/// The copy loop: chunks of at most `CHUNK` bytes, each reported to
/// `landed(offset, len)` once written; stops early if it returns false.
fn copy_chunks(
    src: &mut File,
    dst: &mut File,
    mut landed: impl FnMut(u64, usize) -> bool,
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
        if !landed(copied, n) {
            return Ok(copied + n as u64);
        }
        copied += n as u64;
    }
}
