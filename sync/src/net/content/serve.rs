//! The serving side: accept content streams, ask the [`ContentSource`], copy
//! bytes.
//!
//! Reading the source happens on a blocking thread (files, SQLite) and the
//! chunks travel to the stream through a small ring of reused buffers, so a
//! transfer holds `BUFFERS × content_chunk_bytes` of memory whatever the
//! object's size. Limits: streams per peer and in total (a stream over the
//! limit gets `Busy`), and `content_timeout` for the request header and for
//! every write (a peer that stops reading is dropped).

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream};
use libp2p_stream::IncomingStreams;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::{ContentRequest, ContentSource, HEADER_LEN, Status};
use crate::net::event::{EventSink, Problem};

/// Chunks in flight per served stream.
const BUFFERS: usize = 4;

/// What the server needs from the config.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServeConfig {
    pub per_peer: usize,
    pub total: usize,
    pub timeout: Duration,
    pub chunk: usize,
}

#[derive(Default)]
struct Counts {
    per_peer: HashMap<PeerId, usize>,
    total: usize,
}

/// Counts of streams being served, per peer and in total.
#[derive(Clone)]
struct Limits {
    counts: Arc<Mutex<Counts>>,
    per_peer: usize,
    total: usize,
}

/// One stream's place under the limits; released on drop.
struct Permit {
    counts: Arc<Mutex<Counts>>,
    peer: PeerId,
}

impl Limits {
    fn try_acquire(&self, peer: PeerId) -> Option<Permit> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mine = c.per_peer.get(&peer).copied().unwrap_or(0);
        if c.total >= self.total || mine >= self.per_peer {
            return None;
        }
        c.total += 1;
        c.per_peer.insert(peer, mine + 1);
        Some(Permit {
            counts: self.counts.clone(),
            peer,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                c.per_peer.remove(&self.peer);
            }
        }
    }
}

/// Spawns the accept loop; it ends when the swarm (and so `incoming`) goes away.
pub(crate) fn spawn(
    mut incoming: IncomingStreams,
    source: Arc<dyn ContentSource>,
    config: ServeConfig,
    events: EventSink,
) -> JoinHandle<()> {
    let limits = Limits {
        counts: Arc::default(),
        per_peer: config.per_peer,
        total: config.total,
    };
    tokio::spawn(async move {
        // Transfers live in this set, so aborting the accept loop (shutdown)
        // also ends every transfer and drops its stream at once.
        let mut transfers = tokio::task::JoinSet::new();
        while let Some((peer, stream)) = incoming.next().await {
            while transfers.try_join_next().is_some() {}
            let permit = limits.try_acquire(peer);
            let (source, events) = (source.clone(), events.clone());
            transfers.spawn(async move {
                if let Err(problem) = serve_one(peer, stream, permit, source, config).await {
                    events.problem(Some(peer), problem);
                }
            });
        }
    })
}

async fn write_status(stream: &mut Stream, status: Status, t: Duration) {
    // Best effort: the stream is closed right after, whatever happens.
    let _ = timeout(t, async {
        stream.write_all(&[status as u8]).await?;
        stream.close().await
    })
    .await;
}

async fn serve_one(
    peer: PeerId,
    mut stream: Stream,
    permit: Option<Permit>,
    source: Arc<dyn ContentSource>,
    config: ServeConfig,
) -> Result<(), Problem> {
    let mut header = [0u8; HEADER_LEN];
    match timeout(config.timeout, stream.read_exact(&mut header)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(Problem::BadContentRequest(format!(
                "reading the request: {e}"
            )));
        }
        Err(_) => return Err(Problem::BadContentRequest("no request in time".into())),
    }
    let request = match ContentRequest::decode(&header) {
        Ok(r) => r,
        Err(e) => {
            write_status(&mut stream, Status::BadRequest, config.timeout).await;
            return Err(Problem::BadContentRequest(e));
        }
    };
    let Some(_permit) = permit else {
        write_status(&mut stream, Status::Busy, config.timeout).await;
        return Err(Problem::Overloaded("content streams"));
    };
    let ContentRequest {
        hash,
        size,
        offset,
        len,
    } = request;
    let opened = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || source.open(&peer, &hash, size, offset)).await
    };
    let reader = match opened {
        Ok(Ok(Some(reader))) => reader,
        Ok(Ok(None)) => {
            write_status(&mut stream, Status::Refused, config.timeout).await;
            return Ok(());
        }
        Ok(Err(message)) => {
            write_status(&mut stream, Status::SourceFailed, config.timeout).await;
            return Err(Problem::ContentSource(message));
        }
        Err(join) => {
            write_status(&mut stream, Status::SourceFailed, config.timeout).await;
            return Err(Problem::ContentSource(format!(
                "the source panicked: {join}"
            )));
        }
    };
    let t = config.timeout;
    let write_ok = |r: Result<io::Result<()>, _>, what: &str| match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Problem::ContentServe(format!("{what}: {e}"))),
        Err(_) => Err(Problem::ContentServe(format!("{what}: peer stalled"))),
    };
    write_ok(
        timeout(t, stream.write_all(&[Status::Ok as u8])).await,
        "status",
    )?;

    // The blocking reader fills buffers from `empty` and passes them to `full`;
    // this task writes them out and hands them back.
    let (full_tx, mut full_rx) = mpsc::channel::<io::Result<Vec<u8>>>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = empty_tx.try_send(Vec::with_capacity(config.chunk));
    }
    let pump = tokio::task::spawn_blocking(move || {
        read_into(reader, len, config.chunk, empty_rx, full_tx)
    });
    let mut result = Ok(());
    while let Some(chunk) = full_rx.recv().await {
        match chunk {
            Ok(buf) => {
                if let Err(p) = write_ok(timeout(t, stream.write_all(&buf)).await, "sending") {
                    result = Err(p);
                    break;
                }
                let _ = empty_tx.send(buf).await;
            }
            Err(e) => {
                result = Err(Problem::ContentSource(format!("reading the object: {e}")));
                break;
            }
        }
    }
    // Dropping the channels stops the reader if it is still going.
    drop(full_rx);
    drop(empty_tx);
    let _ = pump.await;
    match result {
        // The peer reads the end of the stream as the end of the object.
        Ok(()) => write_ok(timeout(t, stream.close()).await, "closing"),
        Err(p) => Err(p),
    }
}

/// The blocking half: reads exactly `left` bytes (or to the reader's end) in
/// chunks of `chunk` bytes into recycled buffers.
fn read_into(
    mut reader: Box<dyn Read + Send>,
    mut left: u64,
    chunk: usize,
    mut empty: mpsc::Receiver<Vec<u8>>,
    full: mpsc::Sender<io::Result<Vec<u8>>>,
) {
    while left > 0 {
        let Some(mut buf) = empty.blocking_recv() else {
            return; // the stream side gave up
        };
        let want = usize::try_from(left).map_or(chunk, |l| l.min(chunk));
        buf.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = full.blocking_send(Err(e));
                    return;
                }
            }
        }
        buf.truncate(filled);
        left -= filled as u64;
        let ended = filled < want;
        if filled > 0 && full.blocking_send(Ok(buf)).is_err() {
            return;
        }
        if ended {
            return; // the source ended early; the peer sees a short stream
        }
    }
}
