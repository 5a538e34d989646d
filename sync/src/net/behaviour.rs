//! The libp2p behaviours labmesh runs and the swarm that carries them.
//!
//! One swarm, two transports: QUIC (quic-v1; TLS 1.3 with the libp2p
//! certificate extension) and TCP with noise and yamux. Both authenticate the
//! remote's ed25519 key during the handshake, which is what makes the PeerId
//! on every event trustworthy.

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    Swarm, gossipsub, identify, identity::Keypair, mdns, noise, request_response, tcp, yamux,
};

use super::codec::{SYNC_PROTOCOL, SyncCodec};
use super::config::NetConfig;
use super::error::NetError;
use super::event::EventSink;

/// Identify's protocol version string: labmesh peers recognise each other by it.
pub const PROTOCOL_VERSION: &str = "/labmesh/1.0.0";

/// Room for gossipsub's own framing (signature, key, topic, sequence number)
/// on top of the payload limit.
const GOSSIP_OVERHEAD: usize = 2048;

/// Everything the swarm speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Sync messages: one request, one response.
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Announcements per scope topic.
    pub gossip: gossipsub::Behaviour,
    /// Peers' listen addresses (so we can dial back) and agent versions.
    pub identify: identify::Behaviour,
    /// LAN discovery; absent (no socket at all) when switched off.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Raw streams for content.
    pub content: libp2p_stream::Behaviour,
}

/// Builds the swarm for `keypair` (must be called inside a tokio runtime).
pub(crate) fn build_swarm(
    keypair: Keypair,
    config: &NetConfig,
    events: &EventSink,
) -> Result<Swarm<Behaviour>, NetError> {
    let transport = |e: &dyn std::fmt::Display| NetError::Transport(e.to_string());
    let (idle, handshake) = (config.idle_timeout, config.dial_timeout);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| transport(&e))?
        .with_quic_config(|mut quic| {
            quic.handshake_timeout = handshake;
            quic
        })
        .with_behaviour(|key| behaviour(key, config, events))
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    Ok(swarm)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn behaviour(key: &Keypair, config: &NetConfig, events: &EventSink) -> Result<Behaviour, BoxError> {
    let sync = request_response::Behaviour::with_codec(
        SyncCodec::new(config.max_message_bytes).reporting_to(events.clone()),
        [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(config.max_concurrent_requests),
    );
    let gossip_config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(config.max_gossip_bytes + GOSSIP_OVERHEAD)
        // Every message is signed by its author and checked on receipt.
        .validation_mode(gossipsub::ValidationMode::Strict)
        .build()?;
    let gossip = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_config,
    )?;
    let identify = identify::Behaviour::new(
        identify::Config::new(PROTOCOL_VERSION.to_string(), key.public())
            .with_agent_version(format!("labmesh/{}", env!("CARGO_PKG_VERSION"))),
    );
    let mdns = if config.mdns {
        Some(mdns::tokio::Behaviour::new(
            mdns::Config::default(),
            key.public().to_peer_id(),
        )?)
    } else {
        None
    };
    Ok(Behaviour {
        sync,
        gossip,
        identify,
        mdns: Toggle::from(mdns),
        content: libp2p_stream::Behaviour::new(),
    })
}
