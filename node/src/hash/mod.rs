//! Content identity: BLAKE3 over the bytes, with the size.
//!
//! Small files are hashed from one read; large files are streamed in
//! `CHUNK`-sized reads and each chunk is hashed on all cores (BLAKE3's tree
//! mode), so memory stays flat at any file size.

pub mod manifest;

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::progress::Progress;

/// Read size when streaming; also the unit of progress reports.
pub const CHUNK: usize = 8 << 20;
/// Below this many bytes, hashing on several threads costs more than it saves.
const PARALLEL_MIN: usize = 1 << 20;

/// A BLAKE3 digest of content. Displays as 64 lowercase hex characters (what `b3sum` prints).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl FromStr for ContentHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        blake3::Hash::from_hex(s)
            .map(|h| ContentHash(*h.as_bytes()))
            .map_err(|_| {
                Error::InvalidArgument(format!("{s:?} is not a BLAKE3 hash (64 hex characters)"))
            })
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// Streaming hasher that switches to multi-threaded hashing for big chunks.
#[derive(Default)]
pub struct Hasher {
    inner: blake3::Hasher,
    size: u64,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if bytes.len() >= PARALLEL_MIN {
            self.inner.update_rayon(bytes);
        } else {
            self.inner.update(bytes);
        }
        self.size += bytes.len() as u64;
    }

    pub fn finish(&self) -> (ContentHash, u64) {
        (ContentHash(*self.inner.finalize().as_bytes()), self.size)
    }
}

/// Hashes a file by streaming it; reports progress per chunk.
pub fn hash_file(path: &Path, progress: &dyn Progress) -> Result<(ContentHash, u64)> {
    let mut file = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    hash_reader(&mut file, path, progress)
}

/// Hashes everything `reader` yields.
pub fn hash_reader(
    reader: &mut impl Read,
    path: &Path,
    progress: &dyn Progress,
) -> Result<(ContentHash, u64)> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = read_full(reader, &mut buf).map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        progress.advance(n as u64);
    }
    Ok(hasher.finish())
}

/// Reads until `buf` is full or the reader is exhausted; returns the bytes read.
pub fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn streamed_hash_equals_one_shot_hash_across_chunk_boundaries() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 12345)).map(|i| (i % 251) as u8).collect();
        let (h, size) = hash_reader(&mut &data[..], Path::new("mem"), &NoProgress).unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(h, ContentHash::of(&data));
    }

    #[test]
    fn known_vector_matches_b3sum() {
        // `printf abc | b3sum`
        assert_eq!(
            ContentHash::of(b"abc").to_hex(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
    }

    #[test]
    fn hex_round_trip_and_bad_input() {
        let h = ContentHash::of(b"x");
        assert_eq!(h.to_hex().parse::<ContentHash>().unwrap(), h);
        assert!("xyz".parse::<ContentHash>().is_err());
    }
}
