//! Content transfer (`/labmesh/content/1`): objects addressed by BLAKE3 hash,
//! one stream per range of an object, raw bytes after a one-byte status.
//!
//! ```text
//! request  = hash[32] size:u64be offset:u64be len:u64be      (offset + len <= size)
//! response = status:u8, then if status = 0: exactly len bytes, then end of stream
//!            status 1 refused, 2 source failed, 3 bad request, 4 busy
//! ```
//!
//! No framing after the status: the bytes are the object's, so the sender
//! copies file chunks straight into the stream and the receiver hashes them
//! as they land. Integrity comes from the hash, not from the sender: the
//! receiver never trusts a byte until the whole object hashes right
//! ([`NetworkHandle::fetch_verified`](super::NetworkHandle::fetch_verified)).
//!
//! Serving asks the node first ([`ContentSource`]): it checks the peer's
//! read rights and whether the object is here. `None` becomes a clean
//! refusal on the other side ([`FetchError::Refused`](super::FetchError::Refused)).

pub(crate) mod fetch;
pub(crate) mod serve;
pub(crate) mod verified;

use std::io::Read;

use libp2p::{PeerId, StreamProtocol};

pub use fetch::ContentStream;
pub use verified::FetchReport;

/// The protocol name; the version is in the name.
pub const CONTENT_PROTOCOL: StreamProtocol = StreamProtocol::new("/labmesh/content/1");

/// Where served bytes come from: the node's storage, behind its access checks.
///
/// Called on a blocking thread (it may query SQLite and open files), once per
/// inbound content stream, with the authenticated peer.
pub trait ContentSource: Send + Sync {
    /// A reader positioned at `offset` of the object `hash` of `size` bytes,
    /// or `None` to refuse (the peer may not read it, or it is not here).
    ///
    /// The transport reads the requested range (at most `size - offset`
    /// bytes) and drops the reader; a reader that ends
    /// sooner ends the stream early, which the fetching side sees as a
    /// dropped transfer. An `Err` is reported locally
    /// ([`Problem::ContentSource`](super::Problem::ContentSource)); the peer
    /// only learns that reading failed.
    fn open(
        &self,
        peer: &PeerId,
        hash: &[u8; 32],
        size: u64,
        offset: u64,
    ) -> Result<Option<Box<dyn Read + Send>>, String>;
}

/// A source that holds nothing: every request is refused.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoContent;

impl ContentSource for NoContent {
    fn open(
        &self,
        _: &PeerId,
        _: &[u8; 32],
        _: u64,
        _: u64,
    ) -> Result<Option<Box<dyn Read + Send>>, String> {
        Ok(None)
    }
}

pub(crate) const HEADER_LEN: usize = 56;

/// The first byte of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Status {
    Ok = 0,
    Refused = 1,
    SourceFailed = 2,
    BadRequest = 3,
    Busy = 4,
}

impl Status {
    pub(crate) fn from_byte(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Ok,
            1 => Status::Refused,
            2 => Status::SourceFailed,
            3 => Status::BadRequest,
            4 => Status::Busy,
            _ => return None,
        })
    }
}

/// What a fetcher asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRequest {
    pub hash: [u8; 32],
    pub size: u64,
    pub offset: u64,
    pub len: u64,
}

impl ContentRequest {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..32].copy_from_slice(&self.hash);
        out[32..40].copy_from_slice(&self.size.to_be_bytes());
        out[40..48].copy_from_slice(&self.offset.to_be_bytes());
        out[48..].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Result<ContentRequest, String> {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[..32]);
        let mut n = [0u8; 8];
        n.copy_from_slice(&b[32..40]);
        let size = u64::from_be_bytes(n);
        n.copy_from_slice(&b[40..48]);
        let offset = u64::from_be_bytes(n);
        n.copy_from_slice(&b[48..]);
        let len = u64::from_be_bytes(n);
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(format!("range {offset}+{len} past size {size}"));
        }
        Ok(ContentRequest {
            hash,
            size,
            offset,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_round_trips_and_checks_offset() {
        let r = ContentRequest {
            hash: [7; 32],
            size: 1 << 40,
            offset: 12345,
            len: 99,
        };
        assert_eq!(ContentRequest::decode(&r.encode()), Ok(r));
        let bad = ContentRequest {
            offset: 2,
            size: 1,
            ..r
        };
        assert!(ContentRequest::decode(&bad.encode()).is_err());
        let overflow = ContentRequest {
            offset: u64::MAX,
            len: 2,
            ..r
        };
        assert!(ContentRequest::decode(&overflow.encode()).is_err());
        let past = ContentRequest { len: r.size, ..r };
        assert!(ContentRequest::decode(&past.encode()).is_err());
        for b in 0..=255u8 {
            assert_eq!(Status::from_byte(b).map(|s| s as u8), (b <= 4).then_some(b));
        }
    }
}
