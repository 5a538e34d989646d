//! The libp2p transport (feature `net`): carries the engine's message bytes
//! between authenticated peers, gossips announcements per scope, and streams
//! content addressed by BLAKE3 hash. It knows nothing of SQL or of what the
//! messages mean: bytes in, bytes out, each tagged with the PeerId the
//! connection's handshake proved.
//!
//! # Protocols
//!
//! | protocol | carries | module |
//! |---|---|---|
//! | `/labmesh/sync/1` (request/response) | one engine message → the receiver's answer messages | [`codec`] |
//! | gossipsub, topic = scope string | announcements, signed by their author | — |
//! | `/labmesh/content/1` (raw stream) | `[offset, size)` of one object | [`content`] |
//! | identify `/labmesh/1.0.0` | listen addresses, so either side can redial | — |
//!
//! Transports: QUIC (`/ip4/…/udp/…/quic-v1`) and TCP + noise + yamux
//! (`/ip4/…/tcp/…`), both in the same swarm; a dial uses whichever the
//! address names. mDNS on the LAN when [`NetConfig::mdns`] is on.
//!
//! # Driving it from the node
//!
//! **Start** inside a tokio runtime, with the node key (so the PeerId is
//! `NodeKey::peer_id()`) and a [`ContentSource`] that serves objects after
//! checking the peer's read rights:
//!
//! ```no_run
//! # async fn demo(key: labmesh_crypto::NodeKey, source: std::sync::Arc<dyn labmesh_sync::net::ContentSource>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use labmesh_sync::net::{NetConfig, NetEvent, Network};
//!
//! let (net, mut events) = Network::start(&key, NetConfig::default(), source)?;
//! let lab_b = net.dial("/ip4/192.0.2.7/udp/4001/quic-v1/p2p/12D3KooW…".parse()?).await?;
//! net.subscribe("collection:Fq8cM2uX0aB1cD2e").await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         NetEvent::Connected { peer, .. } => { /* engine.connect(now, peer key, scopes) */ }
//!         NetEvent::Disconnected { peer } => { /* engine.disconnect(peer key) */ }
//!         NetEvent::Message { peer, bytes, reply } => {
//!             // let out = engine.handle(now, key_of(peer), &bytes, &store, &access);
//!             // apply out.effects in one transaction, commit, then:
//!             // reply.send(messages of out addressed to `peer`), send() the rest.
//!             reply.ack();
//!         }
//!         NetEvent::Gossip { topic, bytes, .. } => { /* an announcement: engine input */ }
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! **Engine output → network.** For each `Outgoing { to, bytes }`:
//! `net.send(to.to_peer_id(), bytes)`. It dials if needed, waits for the
//! peer to handle the message, and returns the peer's answer messages, which
//! go into `Engine::handle` as messages from that peer. Keep one sending task
//! per peer that awaits each `send` in turn: that preserves order and paces
//! the sender to the receiver (back-pressure). `SendError::Busy`: the peer
//! shed load, retry after a pause; other errors: the peer is unreachable,
//! anti-entropy resends what matters on the next tick.
//!
//! **Inbound.** Each [`NetEvent::Message`] carries the authenticated peer
//! (check its capability token against it) and a [`Reply`]. Answer after
//! applying the effects: put the engine's output messages addressed to the
//! requester into `reply.send(…)` (one round trip instead of two; if they do
//! not fit, they come back in `Err` and go out with `send`). Dropping the
//! reply answers with nothing. Read events promptly: while the channel is
//! full, new messages are answered `Busy` and gossip is dropped.
//!
//! **Gossip.** Topic = scope string. `subscribe` the scopes the node follows,
//! `publish` a new mark announcement; `GossipError::NoPeers` just means
//! nobody is listening right now.
//!
//! **Content.** Serving: the node's [`ContentSource::open`] is called (on a
//! blocking thread) with the authenticated peer; return `None` unless the
//! peer may read an object of that hash and it is held here. Fetching:
//! [`NetworkHandle::fetch_verified`] with the holders from the location
//! table; it verifies BLAKE3 and size, resumes after drops, skips lying
//! holders, and only then renames into place. The node then seals the file
//! and records the location.
//!
//! **Stop**: [`NetworkHandle::shutdown`].
//!
//! # Limits
//!
//! Every frame is bounded before it is read ([`NetConfig`]): sync messages,
//! answers, gossip, content headers. Concurrency is bounded per connection
//! (requests) and per peer and in total (content streams); every wait has a
//! timeout. Malformed input closes the stream it came on and is reported as
//! a [`Problem`], never a panic. Errors and problems name peers and hashes,
//! never message contents or keys.

pub mod codec;
pub mod content;

mod behaviour;
mod config;
mod driver;
mod error;
mod event;
mod handle;

use std::sync::{Arc, Mutex};

pub use behaviour::PROTOCOL_VERSION;
pub use config::NetConfig;
pub use content::verified::staging_path;
pub use content::{CONTENT_PROTOCOL, ContentSource, ContentStream, FetchReport, NoContent};
pub use error::{FetchError, GossipError, NetError, SendError};
pub use event::{NetEvent, Problem, Reply};
pub use handle::NetworkHandle;
pub use libp2p::multiaddr::Protocol;
pub use libp2p::{Multiaddr, PeerId};

use labmesh_crypto::NodeKey;
use tokio::sync::mpsc;

/// Capacity of the handles → swarm task channel.
const COMMAND_QUEUE: usize = 256;

/// Starts the network.
#[derive(Debug)]
pub struct Network;

impl Network {
    /// Builds the swarm for `key`, listens on `config.listen`, and spawns the
    /// swarm task and the content server on the current tokio runtime.
    /// Returns the handle and the events to read. Fails if the config is
    /// invalid or an address cannot be listened on.
    pub fn start(
        key: &NodeKey,
        config: NetConfig,
        content: Arc<dyn ContentSource>,
    ) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>), NetError> {
        config.validate()?;
        let (event_tx, event_rx) = mpsc::channel(config.event_queue);
        let events = event::EventSink::new(event_tx);
        let mut swarm = behaviour::build_swarm(key.to_libp2p_keypair(), &config, &events)?;
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })?;
        }
        let mut control = swarm.behaviour().content.new_control();
        let incoming = control
            .accept(CONTENT_PROTOCOL)
            .map_err(|e| NetError::Transport(e.to_string()))?;
        let server = content::serve::spawn(
            incoming,
            content,
            content::serve::ServeConfig {
                per_peer: config.max_content_streams_per_peer,
                total: config.max_content_streams,
                timeout: config.content_timeout,
                chunk: config.content_chunk_bytes,
            },
            events.clone(),
        );
        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let local_peer_id = *swarm.local_peer_id();
        let driver = driver::Driver::new(swarm, command_rx, events, config.clone(), server);
        let task = tokio::spawn(driver.run());
        let handle = NetworkHandle {
            shared: Arc::new(handle::Shared {
                local_peer_id,
                commands: command_tx,
                control,
                config,
                task: Mutex::new(Some(task)),
            }),
        };
        Ok((handle, event_rx))
    }
}
