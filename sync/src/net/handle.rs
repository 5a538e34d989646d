//! [`NetworkHandle`]: the node's side of the network. Cheap to clone; every
//! method talks to the swarm task through a bounded channel (so a flood of
//! calls waits instead of queueing without end), except content transfers,
//! which run on their own streams and never pass through the swarm task.

use std::sync::{Arc, Mutex};

use libp2p::{Multiaddr, PeerId};
use libp2p_stream::Control;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::config::NetConfig;
use super::content::{ContentRequest, ContentStream, fetch};
use super::error::{FetchError, GossipError, NetError, SendError};

/// Requests from handles to the swarm task.
pub(crate) enum Command {
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, NetError>>,
    },
    Connect {
        peer: PeerId,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    AddAddress {
        peer: PeerId,
        addr: Multiaddr,
    },
    Disconnect {
        peer: PeerId,
    },
    Send {
        peer: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, SendError>>,
    },
    Publish {
        topic: String,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), GossipError>>,
    },
    Subscribe {
        topic: String,
        on: bool,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Shutdown,
}

pub(crate) struct Shared {
    pub local_peer_id: PeerId,
    pub commands: mpsc::Sender<Command>,
    pub control: Control,
    pub config: NetConfig,
    pub task: Mutex<Option<JoinHandle<()>>>,
}

/// The node's handle on the running network. Clone it freely; the network
/// stops on [`shutdown`](Self::shutdown) or when every handle is dropped.
#[derive(Clone)]
pub struct NetworkHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local_peer_id", &self.shared.local_peer_id)
            .finish_non_exhaustive()
    }
}

impl NetworkHandle {
    /// This node's PeerId (= `NodeKey::peer_id()`).
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// The configuration the network runs with.
    pub fn config(&self) -> &NetConfig {
        &self.shared.config
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(make(tx))
            .await
            .map_err(|_| NetError::Shutdown)?;
        rx.await.map_err(|_| NetError::Shutdown)
    }

    /// The addresses the node listens on now.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    /// Peers with at least one open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Connects to `addr` and returns the authenticated peer there. With a
    /// `/p2p/<peer id>` suffix the handshake must prove that identity;
    /// without one, whoever answers is returned. Returns at once if already
    /// connected to the named peer. The address is remembered for redials.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        let wait = self.shared.config.dial_timeout;
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Dial { addr, reply: tx })
            .await
            .map_err(|_| NetError::Shutdown)?;
        match timeout(wait, rx).await {
            Err(_) => Err(NetError::Timeout("dial")),
            Ok(Err(_)) => Err(NetError::Shutdown),
            Ok(Ok(r)) => r,
        }
    }

    /// Makes sure a connection to `peer` is open, dialing its remembered
    /// addresses (from `dial`, `add_address`, mDNS, identify) if needed.
    pub async fn connect(&self, peer: PeerId) -> Result<(), NetError> {
        let wait = self.shared.config.dial_timeout;
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Connect { peer, reply: tx })
            .await
            .map_err(|_| NetError::Shutdown)?;
        match timeout(wait, rx).await {
            Err(_) => Err(NetError::Timeout("connect")),
            Ok(Err(_)) => Err(NetError::Shutdown),
            Ok(Ok(r)) => r,
        }
    }

    /// Remembers an address of `peer` (e.g. from the node's peer table) for
    /// later dials; does not dial.
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) -> Result<(), NetError> {
        self.shared
            .commands
            .send(Command::AddAddress { peer, addr })
            .await
            .map_err(|_| NetError::Shutdown)
    }

    /// Closes every connection to `peer` (e.g. after its token was revoked).
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), NetError> {
        self.shared
            .commands
            .send(Command::Disconnect { peer })
            .await
            .map_err(|_| NetError::Shutdown)
    }

    /// Delivers one sync message to `peer` (dialing it if needed) and waits
    /// for its answer: the messages the peer's node put in its
    /// [`Reply`](super::Reply), to be handled as messages from `peer`.
    ///
    /// Back-pressure: this returns when the peer has handled the message, so
    /// awaiting sends one at a time per peer paces the sender to the
    /// receiver. [`SendError::Busy`] means the peer shed load: retry later.
    /// Concurrent sends to one peer may arrive in any order.
    pub async fn send(&self, peer: PeerId, bytes: Vec<u8>) -> Result<Vec<Vec<u8>>, SendError> {
        let max = self.shared.config.max_message_bytes;
        if bytes.len() > max {
            return Err(SendError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Send {
                peer,
                bytes,
                reply: tx,
            })
            .await
            .map_err(|_| SendError::Shutdown)?;
        rx.await.map_err(|_| SendError::Shutdown)?
    }

    /// Publishes `bytes` on gossip `topic` (signed with the node key).
    /// Subscribing is not needed to publish.
    pub async fn publish(&self, topic: &str, bytes: Vec<u8>) -> Result<(), GossipError> {
        if bytes.len() > self.shared.config.max_gossip_bytes {
            return Err(GossipError::TooLarge);
        }
        let (tx, rx) = oneshot::channel();
        let topic = topic.to_string();
        self.shared
            .commands
            .send(Command::Publish {
                topic,
                bytes,
                reply: tx,
            })
            .await
            .map_err(|_| GossipError::Shutdown)?;
        rx.await.map_err(|_| GossipError::Shutdown)?
    }

    /// Receives gossip on `topic` from now on ([`NetEvent::Gossip`](super::NetEvent::Gossip)).
    pub async fn subscribe(&self, topic: &str) -> Result<(), NetError> {
        let topic = topic.to_string();
        self.ask(|reply| Command::Subscribe {
            topic,
            on: true,
            reply,
        })
        .await?
    }

    /// Stops receiving gossip on `topic`.
    pub async fn unsubscribe(&self, topic: &str) -> Result<(), NetError> {
        let topic = topic.to_string();
        self.ask(|reply| Command::Subscribe {
            topic,
            on: false,
            reply,
        })
        .await?
    }

    /// Opens a content stream for bytes `[offset, size)` of the object with
    /// BLAKE3 `hash` at `peer`. Unverified: see
    /// [`fetch_verified`](Self::fetch_verified) for the safe way to get a file.
    pub async fn fetch(
        &self,
        peer: PeerId,
        hash: [u8; 32],
        size: u64,
        offset: u64,
    ) -> Result<ContentStream, FetchError> {
        let len = size.saturating_sub(offset);
        self.fetch_range(peer, hash, size, offset, len).await
    }

    /// Opens a content stream for bytes `[offset, offset + len)` of the
    /// object (`hash`, `size`) at `peer`. Unverified.
    pub async fn fetch_range(
        &self,
        peer: PeerId,
        hash: [u8; 32],
        size: u64,
        offset: u64,
        len: u64,
    ) -> Result<ContentStream, FetchError> {
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(FetchError::Invalid(format!(
                "range {offset}+{len} past size {size}"
            )));
        }
        self.connect(peer).await.map_err(|e| match e {
            NetError::Shutdown => FetchError::Shutdown,
            e => FetchError::Unreachable {
                peer,
                reason: e.to_string(),
            },
        })?;
        let c = &self.shared.config;
        let request = ContentRequest {
            hash,
            size,
            offset,
            len,
        };
        fetch::open(
            self.shared.control.clone(),
            peer,
            request,
            c.content_chunk_bytes,
            c.dial_timeout,
            c.content_timeout,
        )
        .await
    }

    /// Stops the network: closes connections and listeners, ends the swarm
    /// task and every transfer being served. Waits until it is done; later
    /// calls on any handle fail with `Shutdown`.
    pub async fn shutdown(&self) {
        let _ = self.shared.commands.send(Command::Shutdown).await;
        let task = self
            .shared
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
