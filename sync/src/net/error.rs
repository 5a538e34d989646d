//! Errors of the transport, one type per operation so the node can match on
//! what it can act upon (retry later, try another peer, give up).
//!
//! Error texts name peers, addresses and hashes, never message contents or
//! key material, so they are safe to log.

use libp2p::PeerId;

/// Starting the network or a control operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The configuration is unusable.
    #[error("network config: {0}")]
    Config(String),
    /// An address could not be listened on.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address from the configuration.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Building the transport failed.
    #[error("cannot build the transport: {0}")]
    Transport(String),
    /// No connection to the peer could be made.
    #[error("cannot reach {}: {reason}", peer.map_or("the address".to_string(), |p| p.to_string()))]
    Dial {
        /// The peer, if known.
        peer: Option<PeerId>,
        /// Why.
        reason: String,
    },
    /// The operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The network task has stopped ([`shutdown`](super::NetworkHandle::shutdown)).
    #[error("the network has shut down")]
    Shutdown,
}

/// A sync message could not be delivered or was not answered.
///
/// Only [`SendError::Busy`] and [`SendError::TooLarge`] say for sure that the
/// peer did not process the message; after `Timeout` or `ConnectionClosed` it
/// may have. The engine's messages are idempotent, so resending is harmless.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message exceeds `max_message_bytes`; nothing was sent.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer's queue of unanswered messages is full: back off and retry.
    #[error("{0} is busy")]
    Busy(PeerId),
    /// No connection to the peer.
    #[error("cannot reach {0}")]
    Unreachable(PeerId),
    /// No answer in `request_timeout`.
    #[error("{0} did not answer in time")]
    Timeout(PeerId),
    /// The connection closed before the answer arrived.
    #[error("connection to {0} closed before it answered")]
    ConnectionClosed(PeerId),
    /// The peer closed the exchange without answering (it gave up waiting
    /// for its node to handle the message, or dropped it).
    #[error("{0} closed the exchange without answering")]
    NoAnswer(PeerId),
    /// The peer does not speak the labmesh sync protocol.
    #[error("{0} does not speak the labmesh sync protocol")]
    Unsupported(PeerId),
    /// The stream failed, or the answer was malformed.
    #[error("exchange with {peer} failed: {reason}")]
    Io {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The network task has stopped.
    #[error("the network has shut down")]
    Shutdown,
}

/// A gossip publication failed.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// No connected peer subscribes to the topic: nobody to tell (not
    /// necessarily a problem; anti-entropy catches peers up later).
    #[error("no peer subscribes to {0:?}")]
    NoPeers(String),
    /// The payload exceeds `max_gossip_bytes`.
    #[error("gossip payload exceeds the size limit")]
    TooLarge,
    /// Anything else gossipsub reports.
    #[error("gossip failed: {0}")]
    Other(String),
    /// The network task has stopped.
    #[error("the network has shut down")]
    Shutdown,
}

/// Fetching content failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The peer does not hold the object or may not give it to us
    /// (its [`ContentSource`](super::ContentSource) said no).
    #[error("{0} refused the object (not held there, or no read rights)")]
    Refused(PeerId),
    /// The peer is serving too many streams now.
    #[error("{0} is busy")]
    Busy(PeerId),
    /// The peer failed to read the object from its storage.
    #[error("{0} could not read the object")]
    SourceFailed(PeerId),
    /// The peer found our request malformed.
    #[error("{0} rejected the request as malformed")]
    BadRequest(PeerId),
    /// The peer sent something that is not the protocol.
    #[error("{peer} broke the content protocol: {reason}")]
    Protocol {
        /// The peer.
        peer: PeerId,
        /// What was wrong.
        reason: String,
    },
    /// The stream ended before all bytes arrived (connection dropped).
    #[error("{peer} stopped after {received} of {expected} bytes")]
    Truncated {
        /// The peer.
        peer: PeerId,
        /// Bytes received in this stream.
        received: u64,
        /// Bytes expected in this stream.
        expected: u64,
    },
    /// The bytes do not hash to the requested BLAKE3 hash: a corrupt or
    /// lying peer. It is not asked for this object again.
    #[error("{0} sent bytes that do not match the hash")]
    WrongContent(PeerId),
    /// No progress within `content_timeout`.
    #[error("{0} made no progress in time")]
    Timeout(PeerId),
    /// Opening the stream or the connection failed.
    #[error("cannot reach {peer}: {reason}")]
    Unreachable {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The request itself is impossible (offset past the size).
    #[error("bad fetch request: {0}")]
    Invalid(String),
    /// Local file trouble (staging file, rename, fsync).
    #[error("local file {path}: {source}")]
    Local {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Every holder failed; each attempt's error, in order.
    #[error("no holder delivered the object ({} attempts: {})", .0.len(), summary(.0))]
    AllHoldersFailed(Vec<FetchError>),
    /// No holder was given.
    #[error("no holders to fetch from")]
    NoHolders,
    /// The network task has stopped.
    #[error("the network has shut down")]
    Shutdown,
}

impl FetchError {
    /// The peer this error is about, if one.
    pub fn peer(&self) -> Option<PeerId> {
        match self {
            FetchError::Refused(p)
            | FetchError::Busy(p)
            | FetchError::SourceFailed(p)
            | FetchError::BadRequest(p)
            | FetchError::WrongContent(p)
            | FetchError::Timeout(p) => Some(*p),
            FetchError::Protocol { peer, .. }
            | FetchError::Truncated { peer, .. }
            | FetchError::Unreachable { peer, .. } => Some(*peer),
            _ => None,
        }
    }

    /// Whether asking the same peer again might work (the connection
    /// dropped or it was busy), as opposed to a definite answer.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::Busy(_)
                | FetchError::Truncated { .. }
                | FetchError::Timeout(_)
                | FetchError::Unreachable { .. }
        )
    }

    pub(crate) fn local(path: &std::path::Path, source: std::io::Error) -> FetchError {
        FetchError::Local {
            path: path.display().to_string(),
            source,
        }
    }
}

fn summary(errors: &[FetchError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
