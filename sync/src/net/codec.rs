//! The frames of the sync protocol (`/labmesh/sync/1`): one request, one
//! response per stream, both length-prefixed and bounded.
//!
//! ```text
//! request  = len:u32be bytes[len]                       (len <= max_message_bytes)
//! response = status:u8 count:u32be (len:u32be bytes[len])*count
//!            status 0 = ok (the replies), 1 = busy (count = 0)
//!            count <= MAX_REPLIES, sum of len <= max_message_bytes
//! ```
//!
//! Lengths are checked before anything is read into memory and buffers grow
//! only as bytes actually arrive, so a peer announcing 4 GiB costs nothing.
//! A frame that breaks a rule fails the stream with an I/O error: libp2p
//! closes that stream (never the process) and reports an inbound failure.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use super::event::{EventSink, Problem};

/// The protocol name; the version is in the name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/labmesh/sync/1");

/// At most this many reply messages in one response.
pub const MAX_REPLIES: u32 = 1024;

const STATUS_OK: u8 = 0;
const STATUS_BUSY: u8 = 1;

/// A response as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResponse {
    /// Processed; zero or more messages back to the requester.
    Ok(Vec<Vec<u8>>),
    /// Not processed: the receiver is overloaded.
    Busy,
}

/// The request/response codec with its size limit.
#[derive(Clone)]
pub struct SyncCodec {
    max_message_bytes: usize,
    /// Where rejected inbound frames are reported. libp2p's request-response
    /// drops a request that fails to read without telling the behaviour (nor
    /// which peer sent it), so the codec reports it itself, without a peer.
    reports: Option<EventSink>,
}

impl std::fmt::Debug for SyncCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncCodec")
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

impl SyncCodec {
    /// A codec accepting messages up to `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> SyncCodec {
        SyncCodec {
            max_message_bytes,
            reports: None,
        }
    }

    pub(crate) fn reporting_to(mut self, sink: EventSink) -> SyncCodec {
        self.reports = Some(sink);
        self
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

async fn read_u32<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u32> {
    let mut b = [0u8; 4];
    io.read_exact(&mut b).await?;
    Ok(u32::from_be_bytes(b))
}

/// Reads `len` bytes, growing the buffer only as they arrive.
async fn read_bytes<T: AsyncRead + Unpin>(io: &mut T, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len.min(64 << 10));
    let got = io.take(len as u64).read_to_end(&mut buf).await?;
    if got != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ended after {got} of {len} bytes"),
        ));
    }
    Ok(buf)
}

/// Reads a request frame.
pub async fn read_request<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let len = read_u32(io).await? as usize;
    if len > max {
        return Err(invalid(format!(
            "request of {len} bytes exceeds the limit of {max}"
        )));
    }
    read_bytes(io, len).await
}

/// Reads a response frame.
pub async fn read_response<T: AsyncRead + Unpin>(
    io: &mut T,
    max: usize,
) -> io::Result<SyncResponse> {
    let mut status = [0u8; 1];
    io.read_exact(&mut status).await?;
    let count = read_u32(io).await?;
    match status[0] {
        STATUS_BUSY if count == 0 => return Ok(SyncResponse::Busy),
        STATUS_OK => {}
        other => {
            return Err(invalid(format!(
                "bad response status {other} with {count} messages"
            )));
        }
    }
    if count > MAX_REPLIES {
        return Err(invalid(format!(
            "{count} reply messages exceed {MAX_REPLIES}"
        )));
    }
    let mut left = max;
    let mut replies = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = read_u32(io).await? as usize;
        if len > left {
            return Err(invalid(format!(
                "reply messages exceed the limit of {max} bytes"
            )));
        }
        left -= len;
        replies.push(read_bytes(io, len).await?);
    }
    Ok(SyncResponse::Ok(replies))
}

fn frame_len(len: usize) -> io::Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| invalid(format!("frame of {len} bytes")))
}

/// Writes a request frame.
pub async fn write_request<T: AsyncWrite + Unpin>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    io.write_all(&frame_len(bytes.len())?).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

/// Writes a response frame.
pub async fn write_response<T: AsyncWrite + Unpin>(
    io: &mut T,
    response: &SyncResponse,
) -> io::Result<()> {
    match response {
        SyncResponse::Busy => io.write_all(&[STATUS_BUSY, 0, 0, 0, 0]).await?,
        SyncResponse::Ok(replies) => {
            io.write_all(&[STATUS_OK]).await?;
            io.write_all(&frame_len(replies.len())?).await?;
            for reply in replies {
                io.write_all(&frame_len(reply.len())?).await?;
                io.write_all(reply).await?;
            }
        }
    }
    io.flush().await
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let read = read_request(io, self.max_message_bytes).await;
        if let (Err(e), Some(sink)) = (&read, &self.reports)
            && matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            )
        {
            sink.problem(None, Problem::BadFrame(e.to_string()));
        }
        read
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_response(io, self.max_message_bytes).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_request(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_response(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;

    use super::*;

    fn encode_response(r: &SyncResponse) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        block_on(write_response(&mut out, r)).expect("write to memory");
        out.into_inner()
    }

    #[test]
    fn frames_round_trip() {
        let mut out = Cursor::new(Vec::new());
        block_on(write_request(&mut out, b"hello")).expect("write");
        let bytes = out.into_inner();
        let got = block_on(read_request(&mut Cursor::new(bytes), 16)).expect("read");
        assert_eq!(got, b"hello");

        for r in [
            SyncResponse::Busy,
            SyncResponse::Ok(vec![]),
            SyncResponse::Ok(vec![b"a".to_vec(), vec![], b"bcd".to_vec()]),
        ] {
            let got = block_on(read_response(&mut Cursor::new(encode_response(&r)), 16));
            assert_eq!(got.expect("read"), r);
        }
    }

    #[test]
    fn oversized_and_malformed_frames_are_rejected() {
        // A request announcing more than the limit fails before reading it.
        let mut frame = 1000u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[7; 1000]);
        let err = block_on(read_request(&mut Cursor::new(frame), 999)).expect_err("too big");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        // A huge announced length with few bytes behind it: an EOF, no huge allocation.
        let mut frame = u32::MAX.to_be_bytes().to_vec();
        frame.extend_from_slice(b"short");
        let err = block_on(read_request(&mut Cursor::new(frame), usize::MAX)).expect_err("eof");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        // Truncated header.
        assert!(block_on(read_request(&mut Cursor::new(vec![0, 0]), 10)).is_err());

        // Unknown status, busy with a payload, too many replies, replies over the limit.
        for bad in [
            vec![9, 0, 0, 0, 0],
            vec![STATUS_BUSY, 0, 0, 0, 1],
            [vec![STATUS_OK], (MAX_REPLIES + 1).to_be_bytes().to_vec()].concat(),
        ] {
            assert!(block_on(read_response(&mut Cursor::new(bad), 16)).is_err());
        }
        let big = encode_response(&SyncResponse::Ok(vec![vec![1; 10], vec![2; 10]]));
        assert!(block_on(read_response(&mut Cursor::new(big.clone()), 19)).is_err());
        assert!(block_on(read_response(&mut Cursor::new(big), 20)).is_ok());
    }
}
