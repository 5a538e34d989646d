//! Nodes on loopback, event waits with timeouts, and content sources that
//! serve from memory, lie, or stall mid-way.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labmesh_crypto::NodeKey;
use labmesh_sync::net::{
    ContentSource, Multiaddr, NetConfig, NetEvent, Network, NetworkHandle, PeerId,
};
use libp2p::multiaddr::Protocol;
use tokio::sync::mpsc;

/// Long enough for a loaded 2-core machine; only failures ever wait this long.
pub const WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Quic,
    Tcp,
}

impl Transport {
    pub fn matches(self, addr: &Multiaddr) -> bool {
        addr.iter().any(|p| match self {
            Transport::Quic => matches!(p, Protocol::QuicV1),
            Transport::Tcp => matches!(p, Protocol::Tcp(_)),
        }) && !(self == Transport::Tcp && addr.iter().any(|p| matches!(p, Protocol::QuicV1)))
    }
}

/// Loopback on both transports, mDNS off.
pub fn config() -> NetConfig {
    NetConfig::loopback()
}

/// Loopback on one transport only.
pub fn config_only(t: Transport) -> NetConfig {
    let mut c = NetConfig::loopback();
    c.listen.retain(|a| t.matches(a));
    c
}

pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

pub struct TestNode {
    pub key: NodeKey,
    pub net: NetworkHandle,
    pub events: mpsc::Receiver<NetEvent>,
    pub listen: Vec<Multiaddr>,
}

pub async fn start(config: NetConfig, source: Arc<dyn ContentSource>) -> TestNode {
    start_with_key(NodeKey::generate(), config, source).await
}

pub async fn start_with_key(
    key: NodeKey,
    config: NetConfig,
    source: Arc<dyn ContentSource>,
) -> TestNode {
    let expected = config.listen.len();
    let (net, events) = Network::start(&key, config, source).expect("network starts");
    let mut node = TestNode {
        key,
        net,
        events,
        listen: Vec::new(),
    };
    while node.listen.len() < expected {
        let addr = node
            .next("listening", |e| match e {
                NetEvent::Listening { addr } => Some(addr),
                _ => None,
            })
            .await;
        node.listen.push(addr);
    }
    node
}

impl TestNode {
    pub fn peer(&self) -> PeerId {
        self.net.local_peer_id()
    }

    /// A dialable address on `t`, with `/p2p/<peer id>`.
    pub fn addr(&self, t: Transport) -> Multiaddr {
        let addr = self
            .listen
            .iter()
            .find(|a| t.matches(a))
            .expect("listening on that transport")
            .clone();
        addr.with(Protocol::P2p(self.peer()))
    }

    /// The next event `f` picks, dropping the others (a dropped message
    /// answers itself with nothing).
    pub async fn next<T>(&mut self, what: &str, mut f: impl FnMut(NetEvent) -> Option<T>) -> T {
        within(what, async {
            loop {
                match self.events.recv().await {
                    Some(event) => {
                        if let Some(v) = f(event) {
                            return v;
                        }
                    }
                    None => panic!("event channel closed while waiting for {what}"),
                }
            }
        })
        .await
    }
}

/// Deterministic test bytes and their BLAKE3 hash.
pub fn object(seed: &str, size: usize) -> (Arc<Vec<u8>>, [u8; 32]) {
    let mut data = vec![0u8; size];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut data);
    let hash = *blake3::hash(&data).as_bytes();
    (Arc::new(data), hash)
}

/// Reads a shared buffer from an offset.
pub struct SliceReader {
    data: Arc<Vec<u8>>,
    pos: usize,
}

impl SliceReader {
    pub fn new(data: Arc<Vec<u8>>, offset: u64) -> SliceReader {
        let pos = usize::try_from(offset).expect("small offsets in tests");
        SliceReader { data, pos }
    }
}

impl Read for SliceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// How a [`MemSource`] misbehaves.
pub enum Mode {
    Honest,
    /// Serves the right length with one byte flipped in the middle.
    Liar,
    /// Serves `after` bytes of the object (counted from the start of the
    /// object), then blocks until the gate's sender is dropped, then fails.
    Stall {
        after: u64,
        gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    },
}

/// Serves objects from memory.
pub struct MemSource {
    pub objects: HashMap<[u8; 32], Arc<Vec<u8>>>,
    pub mode: Mode,
    /// Every (peer, offset) asked for, in order.
    pub asked: Mutex<Vec<(PeerId, u64)>>,
}

impl MemSource {
    pub fn new(object: &(Arc<Vec<u8>>, [u8; 32]), mode: Mode) -> Arc<MemSource> {
        Arc::new(MemSource {
            objects: HashMap::from([(object.1, object.0.clone())]),
            mode,
            asked: Mutex::new(Vec::new()),
        })
    }

    /// A stalling source and the gate that releases it (drop to release).
    pub fn stalling(
        object: &(Arc<Vec<u8>>, [u8; 32]),
        after: u64,
    ) -> (Arc<MemSource>, std::sync::mpsc::Sender<()>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let mode = Mode::Stall {
            after,
            gate: Mutex::new(Some(rx)),
        };
        (MemSource::new(object, mode), tx)
    }
}

struct StallReader {
    inner: SliceReader,
    left: u64,
    gate: Option<std::sync::mpsc::Receiver<()>>,
}

impl Read for StallReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            if let Some(gate) = self.gate.take() {
                while gate.recv().is_ok() {}
            }
            return Err(io::Error::other("stalled source released"));
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..n])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl ContentSource for MemSource {
    fn open(
        &self,
        peer: &PeerId,
        hash: &[u8; 32],
        size: u64,
        offset: u64,
    ) -> Result<Option<Box<dyn Read + Send>>, String> {
        self.asked.lock().expect("lock").push((*peer, offset));
        let Some(data) = self.objects.get(hash) else {
            return Ok(None);
        };
        if data.len() as u64 != size {
            return Ok(None);
        }
        Ok(Some(match &self.mode {
            Mode::Honest => Box::new(SliceReader::new(data.clone(), offset)),
            Mode::Liar => {
                let mut bad = data.as_ref().clone();
                let mid = bad.len() / 2;
                bad[mid] ^= 0x5a;
                Box::new(SliceReader::new(Arc::new(bad), offset))
            }
            Mode::Stall { after, gate } => Box::new(StallReader {
                inner: SliceReader::new(data.clone(), offset),
                left: after.saturating_sub(offset),
                gate: gate.lock().expect("lock").take(),
            }),
        }))
    }
}
