//! The fetching side of one content stream: [`ContentStream`] yields the
//! bytes of one range of one object from one peer, unverified.
//!
//! Use [`NetworkHandle::fetch_verified`](crate::net::NetworkHandle::fetch_verified)
//! to get a file: it hashes, resumes and switches holders. A raw stream is
//! for callers that verify by themselves (or pipe elsewhere).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, Stream};
use libp2p_stream::{Control, OpenStreamError};
use tokio::time::timeout;

use super::{CONTENT_PROTOCOL, ContentRequest, Status};
use crate::net::error::FetchError;

/// Bytes of one object streaming in from one peer, in order.
///
/// Nothing here is verified: only the whole object's BLAKE3 hash says the
/// bytes are right. Memory: one chunk at a time (`content_chunk_bytes`).
pub struct ContentStream {
    peer: PeerId,
    stream: Stream,
    expected: u64,
    received: u64,
    chunk: usize,
    timeout: Duration,
}

impl std::fmt::Debug for ContentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentStream")
            .field("peer", &self.peer)
            .field("expected", &self.expected)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl ContentStream {
    /// The serving peer.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.expected - self.received
    }

    /// The next chunk, or `None` once the whole range arrived.
    /// A stream that ends early fails with [`FetchError::Truncated`].
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        let want = self.next_len();
        if want == 0 {
            self.finish().await;
            return Ok(None);
        }
        let mut buf = BytesMut::zeroed(want);
        let filled = self.fill(&mut buf).await?;
        buf.truncate(filled);
        Ok(Some(buf.freeze()))
    }

    /// Bytes the next chunk will have at most (0 at the end).
    pub(crate) fn next_len(&self) -> usize {
        usize::try_from(self.remaining()).map_or(self.chunk, |l| l.min(self.chunk))
    }

    /// Closes our side once everything arrived (best effort: the server
    /// closes its side anyway).
    pub(crate) async fn finish(&mut self) {
        let _ = timeout(Duration::from_secs(1), self.stream.close()).await;
    }

    /// Reads into `buf` (at most [`next_len`](Self::next_len) bytes) until it
    /// is full or the stream ends; at least one byte, or an error.
    pub(crate) async fn fill(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        let want = buf.len().min(self.next_len());
        let mut filled = 0;
        while filled < want {
            match timeout(self.timeout, self.stream.read(&mut buf[filled..want])).await {
                Err(_) => return Err(FetchError::Timeout(self.peer)),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => filled += n,
            }
        }
        self.received += filled as u64;
        if filled == 0 && want > 0 {
            return Err(FetchError::Truncated {
                peer: self.peer,
                received: self.received,
                expected: self.expected,
            });
        }
        Ok(filled)
    }

    /// The chunks as a `futures::Stream`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, FetchError>> + Send {
        futures::stream::try_unfold(self, |mut s| async move {
            Ok(s.next_chunk().await?.map(|chunk| (chunk, s)))
        })
    }
}

/// Opens a content stream, sends the request and reads the status.
pub(crate) async fn open(
    mut control: Control,
    peer: PeerId,
    request: ContentRequest,
    chunk: usize,
    open_timeout: Duration,
    io_timeout: Duration,
) -> Result<ContentStream, FetchError> {
    let mut stream = match timeout(open_timeout, control.open_stream(peer, CONTENT_PROTOCOL)).await
    {
        Err(_) => return Err(FetchError::Timeout(peer)),
        Ok(Ok(s)) => s,
        Ok(Err(OpenStreamError::UnsupportedProtocol(_))) => {
            return Err(FetchError::Protocol {
                peer,
                reason: "does not serve content".into(),
            });
        }
        Ok(Err(e)) => {
            return Err(FetchError::Unreachable {
                peer,
                reason: e.to_string(),
            });
        }
    };
    let header = request.encode();
    let sent = timeout(io_timeout, async {
        stream.write_all(&header).await?;
        stream.flush().await
    })
    .await;
    match sent {
        Err(_) => return Err(FetchError::Timeout(peer)),
        Ok(Err(e)) => {
            return Err(FetchError::Unreachable {
                peer,
                reason: e.to_string(),
            });
        }
        Ok(Ok(())) => {}
    }
    let expected = request.len;
    let mut status = [0u8; 1];
    match timeout(io_timeout, stream.read_exact(&mut status)).await {
        Err(_) => return Err(FetchError::Timeout(peer)),
        Ok(Err(_)) => {
            return Err(FetchError::Truncated {
                peer,
                received: 0,
                expected,
            });
        }
        Ok(Ok(())) => {}
    }
    match Status::from_byte(status[0]) {
        Some(Status::Ok) => Ok(ContentStream {
            peer,
            stream,
            expected,
            received: 0,
            chunk,
            timeout: io_timeout,
        }),
        Some(Status::Refused) => Err(FetchError::Refused(peer)),
        Some(Status::SourceFailed) => Err(FetchError::SourceFailed(peer)),
        Some(Status::BadRequest) => Err(FetchError::BadRequest(peer)),
        Some(Status::Busy) => Err(FetchError::Busy(peer)),
        None => Err(FetchError::Protocol {
            peer,
            reason: format!("unknown status {}", status[0]),
        }),
    }
}
