//! [`NetEvent`]: what the network tells the node, and [`Reply`]: how the node
//! answers a sync message.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;

/// Something the node should know about. Read them from the receiver that
/// [`Network::start`](super::Network::start) returns; if the node stops
/// reading, inbound sync messages are answered `Busy` and gossip is dropped
/// (connection events are kept and delivered later, in order).
#[derive(Debug)]
pub enum NetEvent {
    /// Listening on this address (one event per concrete address, so port 0
    /// in the config shows up here with the real port).
    Listening {
        /// The address, without the `/p2p/<peer id>` suffix.
        addr: Multiaddr,
    },
    /// The first connection to a peer is up; its identity is authenticated.
    /// Call `Engine::connect` for it.
    Connected {
        /// The peer.
        peer: PeerId,
        /// The remote address of the connection.
        addr: Multiaddr,
        /// Whether the peer dialed us.
        inbound: bool,
    },
    /// The last connection to a peer closed. Call `Engine::disconnect`.
    Disconnected {
        /// The peer.
        peer: PeerId,
    },
    /// mDNS found peers on the local network. They are not dialed: dial
    /// those the node wants (`dial` or just `send`; their addresses are known now).
    Discovered {
        /// The peer.
        peer: PeerId,
        /// Its addresses.
        addrs: Vec<Multiaddr>,
    },
    /// A sync message from an authenticated peer: hand `bytes` to
    /// `Engine::handle(now, peer, bytes)` and answer through `reply`.
    Message {
        /// The sender, as authenticated by the connection (noise or TLS).
        peer: PeerId,
        /// The message, at most `max_message_bytes`.
        bytes: Vec<u8>,
        /// The answer channel; dropping it answers with no messages.
        reply: Reply,
    },
    /// A gossip message on a subscribed topic.
    Gossip {
        /// The neighbour that forwarded it (authenticated by the connection).
        from: PeerId,
        /// The author; gossipsub verified the author's signature.
        origin: Option<PeerId>,
        /// The topic (a scope string).
        topic: String,
        /// The payload.
        bytes: Vec<u8>,
    },
    /// A peer subscribed to a topic; publishing there now reaches it.
    PeerSubscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: String,
    },
    /// Something went wrong that the node may want to log or count.
    Problem {
        /// The peer involved, if any.
        peer: Option<PeerId>,
        /// What.
        problem: Problem,
    },
}

/// Problems worth a log line. None of them stops the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A sync request frame was malformed or oversized; its stream was
    /// closed. Reported without a peer: libp2p's request-response does not
    /// say whose request failed to read.
    BadFrame(String),
    /// A content request was malformed; its stream was closed.
    BadContentRequest(String),
    /// An inbound request or stream was turned away because a limit was hit.
    Overloaded(&'static str),
    /// The [`ContentSource`](super::ContentSource) failed (its message; the
    /// peer only learns that reading failed).
    ContentSource(String),
    /// Serving content stopped early (the peer went away, or it stalled).
    ContentServe(String),
    /// A listener failed or closed with an error.
    Listener(String),
}

/// The answer to one inbound sync message.
///
/// The requester's [`send`](super::NetworkHandle::send) returns the messages
/// given here. The intended use: after `Engine::handle`, put the output
/// messages addressed to the requester into the reply (one round trip
/// instead of two) and [`send`](super::NetworkHandle::send) the others.
/// Answer only after handling: the requester waits for the answer, which is
/// what throttles a fast sender to the speed of a slow receiver.
#[derive(Debug)]
pub struct Reply {
    tx: oneshot::Sender<Vec<Vec<u8>>>,
    max_bytes: usize,
}

impl Reply {
    pub(crate) fn new(max_bytes: usize) -> (Reply, oneshot::Receiver<Vec<Vec<u8>>>) {
        let (tx, rx) = oneshot::channel();
        (Reply { tx, max_bytes }, rx)
    }

    /// The most reply bytes (summed over the messages) that fit.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Answers with `messages`. If they do not fit ([`max_bytes`](Self::max_bytes),
    /// at most [`MAX_REPLIES`](super::codec::MAX_REPLIES) messages), an empty
    /// answer goes out instead and the messages come back in `Err`, to be
    /// delivered with [`send`](super::NetworkHandle::send).
    pub fn send(self, messages: Vec<Vec<u8>>) -> Result<(), Vec<Vec<u8>>> {
        let total: usize = messages.iter().map(Vec::len).sum();
        if total > self.max_bytes || messages.len() > super::codec::MAX_REPLIES as usize {
            let _ = self.tx.send(Vec::new());
            return Err(messages);
        }
        // If the requester is gone there is no one to tell: not an error.
        let _ = self.tx.send(messages);
        Ok(())
    }

    /// Answers with no messages ("received and handled").
    pub fn ack(self) {
        let _ = self.tx.send(Vec::new());
    }
}

/// The sending side of the event channel, shared by the swarm task and the
/// content tasks.
#[derive(Clone)]
pub(crate) struct EventSink {
    tx: tokio::sync::mpsc::Sender<NetEvent>,
}

impl EventSink {
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<NetEvent>) -> EventSink {
        EventSink { tx }
    }

    /// Reports a problem if there is room; problems are informational and
    /// must never block a transfer or the swarm.
    pub(crate) fn problem(&self, peer: Option<PeerId>, problem: Problem) {
        let _ = self.tx.try_send(NetEvent::Problem { peer, problem });
    }

    pub(crate) fn sender(&self) -> &tokio::sync::mpsc::Sender<NetEvent> {
        &self.tx
    }
}
