//! Verified, resumable fetches into a file:
//! [`NetworkHandle::fetch_verified`](crate::net::NetworkHandle::fetch_verified).
//!
//! The bytes land in a staging file beside the destination, hashed with
//! BLAKE3 as they are written (on a blocking thread, through a ring of
//! reused buffers: memory stays flat whatever the size). A transfer that
//! drops resumes from the staging file's length (its prefix is re-hashed, so
//! nothing on disk is trusted without hashing). Only when the size and the
//! hash both match is the file fsynced and renamed onto the destination; the
//! destination is never a partial or unverified file.
//!
//! Lies are caught at the end of the object (BLAKE3 of the whole object is all
//! we know). When one peer supplied every byte of a bad object, that peer is
//! convicted: reported in [`FetchReport::wrong_content`] and not asked again.
//! When several peers (or an earlier run) contributed, nobody can be blamed:
//! the staging file is discarded and the next attempt starts from zero with
//! one peer, so a liar is still pinned down within a few attempts.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::mpsc;

use super::fetch::ContentStream;
use crate::net::NetworkHandle;
use crate::net::error::FetchError;

/// Buffers in flight between the network and the staging file.
const BUFFERS: usize = 4;
/// Pause before retrying after an attempt that delivered nothing; doubles
/// per such attempt in a row, up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What a successful verified fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Bytes of an earlier staging file that were re-hashed and kept.
    pub resumed_from: u64,
    /// Bytes received per attempt, in order (a peer appears once per attempt).
    pub received: Vec<(PeerId, u64)>,
    /// Peers that sent bytes not matching the hash; not asked again.
    pub wrong_content: Vec<PeerId>,
    /// Attempts that failed before the one that completed, in order.
    pub failures: Vec<String>,
}

/// Who supplied the bytes now in the staging file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provenance {
    Empty,
    One(PeerId),
    /// Several peers, or an earlier run: nobody can be blamed.
    Mixed,
}

/// The staging file and the hash of its contents so far.
struct Staging {
    path: PathBuf,
    file: File,
    hasher: blake3::Hasher,
    len: u64,
}

impl Staging {
    /// Opens (or creates) the staging file and hashes what it holds.
    fn open(path: &Path, size: u64) -> io::Result<Staging> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut staging = Staging {
            path: path.to_path_buf(),
            len: file.metadata()?.len(),
            hasher: blake3::Hasher::new(),
            file: file.try_clone()?,
        };
        if staging.len > size {
            staging.reset()?;
        } else {
            file.seek(SeekFrom::Start(0))?;
            let hashed = staging.hasher.update_reader(&mut file)?.count();
            if hashed != staging.len {
                staging.reset()?;
            }
            staging.file.seek(SeekFrom::End(0))?;
        }
        Ok(staging)
    }

    fn reset(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.hasher.reset();
        self.len = 0;
        Ok(())
    }

    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Durable at `dest`: data synced, renamed, directory synced.
    fn publish(self, dest: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        drop(self.file);
        std::fs::rename(&self.path, dest)?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// The default staging path: `.<name>.partial` in the destination's directory
/// (same file system, so the final rename is atomic).
pub fn staging_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.partial"))
}

async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, FetchError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| FetchError::local(path, e)),
        Err(e) => Err(FetchError::local(path, io::Error::other(e.to_string()))),
    }
}

/// How one attempt ended.
enum Attempt {
    /// The stream delivered every byte.
    Complete,
    /// The peer failed; the staging file keeps what arrived.
    PeerFailed(FetchError),
}

impl NetworkHandle {
    /// Fetches the object (`hash`, `size`) from the first of `holders` that
    /// delivers it, into `dest`, verified. Staging file: [`staging_path`]
    /// (`.<name>.partial` beside `dest`); left in place on failure so the
    /// next call resumes. See [`fetch_verified_to`](Self::fetch_verified_to).
    pub async fn fetch_verified(
        &self,
        holders: &[PeerId],
        hash: [u8; 32],
        size: u64,
        dest: &Path,
    ) -> Result<FetchReport, FetchError> {
        self.fetch_verified_to(holders, hash, size, &staging_path(dest), dest)
            .await
    }

    /// Like [`fetch_verified`](Self::fetch_verified) with an explicit staging
    /// file (must be on the same file system as `dest`).
    ///
    /// Holders are tried in order, round robin, up to `max_fetch_attempts`
    /// attempts in all. A holder that refuses, lies or breaks the protocol is
    /// not asked again; one whose connection drops is, after the others.
    /// Resumes from the staging file's length. On error the staging file
    /// keeps what was received so far, for the next call to resume from;
    /// nothing in it is trusted until the whole object hashes right.
    pub async fn fetch_verified_to(
        &self,
        holders: &[PeerId],
        hash: [u8; 32],
        size: u64,
        staging_file: &Path,
        dest: &Path,
    ) -> Result<FetchReport, FetchError> {
        let path = staging_file.to_path_buf();
        let mut staging = {
            let p = path.clone();
            blocking(&path, move || Staging::open(&p, size)).await?
        };
        let mut report = FetchReport {
            resumed_from: staging.len,
            ..FetchReport::default()
        };
        let mut provenance = if staging.len == 0 {
            Provenance::Empty
        } else {
            Provenance::Mixed
        };
        let mut errors: Vec<FetchError> = Vec::new();
        let mut excluded: HashSet<PeerId> = HashSet::new();
        let mut next = 0usize;
        let mut attempts = 0usize;
        // Transient failures in a row that delivered nothing.
        let mut stalled = 0u32;
        loop {
            if staging.len == size {
                if *staging.hasher.finalize().as_bytes() == hash {
                    let d = dest.to_path_buf();
                    blocking(&path, move || staging.publish(&d)).await?;
                    report.failures = errors.iter().map(ToString::to_string).collect();
                    return Ok(report);
                }
                if let Provenance::One(liar) = provenance {
                    excluded.insert(liar);
                    report.wrong_content.push(liar);
                    errors.push(FetchError::WrongContent(liar));
                }
                staging = blocking(&path, move || staging.reset().map(|()| staging)).await?;
                provenance = Provenance::Empty;
            }
            if holders.is_empty() {
                if staging.len == 0 {
                    drop(staging);
                    let _ = std::fs::remove_file(&path);
                }
                return Err(FetchError::NoHolders);
            }
            let Some(i) = (0..holders.len())
                .map(|k| (next + k) % holders.len())
                .find(|&i| !excluded.contains(&holders[i]))
            else {
                break;
            };
            if attempts == self.shared.config.max_fetch_attempts {
                break;
            }
            if stalled > 0 {
                // Nothing arrived last time: do not hammer holders that are down.
                let pause = BACKOFF_START * 2u32.saturating_pow(stalled - 1);
                tokio::time::sleep(pause.min(BACKOFF_MAX)).await;
            }
            attempts += 1;
            next = i + 1;
            let peer = holders[i];
            let before = staging.len;
            let segment = self.shared.config.content_segment_bytes;
            let mut ended = Attempt::Complete;
            while staging.len < size {
                let len = (size - staging.len).min(segment);
                match self.fetch_range(peer, hash, size, staging.len, len).await {
                    Ok(stream) => {
                        let (back, end) = self.receive(stream, staging).await?;
                        staging = back;
                        ended = end;
                    }
                    Err(e) => ended = Attempt::PeerFailed(e),
                }
                if let Attempt::PeerFailed(_) = ended {
                    break;
                }
            }
            let got = staging.len - before;
            if got > 0 {
                report.received.push((peer, got));
                provenance = match provenance {
                    Provenance::Empty => Provenance::One(peer),
                    Provenance::One(p) if p == peer => Provenance::One(p),
                    _ => Provenance::Mixed,
                };
            }
            if let Attempt::PeerFailed(e) = ended {
                if matches!(e, FetchError::Shutdown) {
                    return Err(e);
                }
                if !e.is_transient() {
                    excluded.insert(peer);
                }
                stalled = if got == 0 && e.is_transient() {
                    stalled + 1
                } else {
                    0
                };
                errors.push(e);
            }
        }
        if staging.len == 0 {
            // Nothing worth resuming: leave no empty file behind.
            drop(staging);
            let _ = std::fs::remove_file(&path);
        }
        Err(FetchError::AllHoldersFailed(errors))
    }

    /// Streams one attempt into the staging file; the file and its hash come
    /// back whatever happens. `Err` only for local (disk) failures.
    async fn receive(
        &self,
        mut stream: ContentStream,
        staging: Staging,
    ) -> Result<(Staging, Attempt), FetchError> {
        let path = staging.path.clone();
        let chunk = self.shared.config.content_chunk_bytes;
        let (full_tx, mut full_rx) = mpsc::channel::<Vec<u8>>(BUFFERS);
        let (empty_tx, mut empty_rx) = mpsc::channel::<Vec<u8>>(BUFFERS);
        for _ in 0..BUFFERS {
            let _ = empty_tx.try_send(Vec::with_capacity(chunk));
        }
        let writer = tokio::task::spawn_blocking(move || {
            let mut staging = staging;
            while let Some(buf) = full_rx.blocking_recv() {
                if let Err(e) = staging.append(&buf) {
                    return (staging, Err(e));
                }
                // The network side may be gone already: nothing to return it to.
                let _ = empty_tx.blocking_send(buf);
            }
            (staging, Ok(()))
        });
        let ended = loop {
            if stream.next_len() == 0 {
                stream.finish().await;
                break Attempt::Complete;
            }
            // `None`: the writer stopped (disk error), reported below.
            let Some(mut buf) = empty_rx.recv().await else {
                break Attempt::Complete;
            };
            buf.resize(stream.next_len(), 0);
            match stream.fill(&mut buf).await {
                Ok(n) => {
                    buf.truncate(n);
                    if full_tx.send(buf).await.is_err() {
                        break Attempt::Complete;
                    }
                }
                Err(e) => break Attempt::PeerFailed(e),
            }
        };
        drop(full_tx);
        match writer.await {
            Ok((staging, Ok(()))) => Ok((staging, ended)),
            Ok((_, Err(e))) => Err(FetchError::local(&path, e)),
            Err(e) => Err(FetchError::local(&path, io::Error::other(e.to_string()))),
        }
    }
}
