//! [`NetConfig`]: what the node puts in the `[net]` table of its TOML config.
//!
//! Every field has a default, so an empty table is a working daemon
//! configuration (QUIC and TCP on port 4001, mDNS on). Durations are written
//! the way people write them: `"30s"`, `"500ms"`, `"2m"`, or a bare number of
//! seconds.

use std::time::Duration;

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

use super::error::NetError;

/// How the transport listens, discovers and bounds what peers may send.
///
/// The limits exist because every byte arriving here comes from the network:
/// each one caps memory or time a misbehaving peer can make us spend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// Addresses to listen on: `/ip4/0.0.0.0/udp/4001/quic-v1` (QUIC) and/or
    /// `/ip4/0.0.0.0/tcp/4001` (TCP with noise and yamux). Port 0 picks a free
    /// port; the chosen address arrives as [`NetEvent::Listening`](super::NetEvent::Listening).
    pub listen: Vec<Multiaddr>,
    /// Multicast DNS discovery on the local network. Off means no mDNS
    /// socket is opened at all (tests keep every packet on loopback).
    pub mdns: bool,
    /// Largest sync message accepted or sent, and largest total of the reply
    /// messages to one request. The engine's own limit is 4 MiB.
    pub max_message_bytes: usize,
    /// Largest gossip payload. Announcements are ~80 bytes.
    pub max_gossip_bytes: usize,
    /// Bytes of inbound sync messages handed to the node and not yet
    /// answered. Past it, new requests get a `Busy` answer (the sender's
    /// [`send`](super::NetworkHandle::send) fails with
    /// [`SendError::Busy`](super::SendError::Busy)): back-pressure instead of
    /// unbounded queues.
    pub max_inbound_bytes: usize,
    /// Capacity of the event channel the node reads.
    pub event_queue: usize,
    /// A request not answered within this time fails (both sides).
    #[serde(with = "human_duration")]
    pub request_timeout: Duration,
    /// Concurrent sync requests (both directions) on one connection.
    pub max_concurrent_requests: usize,
    /// A connection with nothing to do for this long is closed.
    #[serde(with = "human_duration")]
    pub idle_timeout: Duration,
    /// Time to establish a connection (dial, handshake).
    #[serde(with = "human_duration")]
    pub dial_timeout: Duration,
    /// Concurrent content streams one peer may have us serve.
    pub max_content_streams_per_peer: usize,
    /// Concurrent content streams served to all peers together.
    pub max_content_streams: usize,
    /// A content stream that makes no progress for this long is dropped.
    #[serde(with = "human_duration")]
    pub content_timeout: Duration,
    /// Bytes per content read and write. Memory per transfer is a few times this.
    pub content_chunk_bytes: usize,
    /// Bytes per content stream in a verified fetch: a long object goes over
    /// several streams in turn, so receive windows that grew on one stream
    /// start small on the next (yamux never shrinks a stream's window and
    /// libp2p-yamux offers no cap). One extra round trip per segment.
    pub content_segment_bytes: u64,
    /// Fetch attempts per [`fetch_verified`](super::NetworkHandle::fetch_verified)
    /// call before giving up, over all holders together.
    pub max_fetch_attempts: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: vec![
                "/ip4/0.0.0.0/udp/4001/quic-v1"
                    .parse()
                    .expect("valid literal"),
                "/ip4/0.0.0.0/tcp/4001".parse().expect("valid literal"),
            ],
            mdns: true,
            max_message_bytes: 4 << 20,
            max_gossip_bytes: 64 << 10,
            max_inbound_bytes: 64 << 20,
            event_queue: 1024,
            request_timeout: Duration::from_secs(60),
            max_concurrent_requests: 32,
            idle_timeout: Duration::from_secs(120),
            dial_timeout: Duration::from_secs(20),
            max_content_streams_per_peer: 4,
            max_content_streams: 64,
            content_timeout: Duration::from_secs(30),
            content_chunk_bytes: 256 << 10,
            content_segment_bytes: 256 << 20,
            max_fetch_attempts: 8,
        }
    }
}

impl NetConfig {
    /// A configuration for tests and local demos: QUIC and TCP on
    /// 127.0.0.1 with free ports, mDNS off. Nothing leaves loopback.
    pub fn loopback() -> NetConfig {
        NetConfig {
            listen: vec![
                "/ip4/127.0.0.1/udp/0/quic-v1"
                    .parse()
                    .expect("valid literal"),
                "/ip4/127.0.0.1/tcp/0".parse().expect("valid literal"),
            ],
            mdns: false,
            ..NetConfig::default()
        }
    }

    /// Refuses values that would make the transport useless or unbounded.
    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |what: &str| Err(NetError::Config(what.to_string()));
        if self.max_message_bytes == 0 || self.max_message_bytes > 64 << 20 {
            return bad("max_message_bytes must be in 1 B ..= 64 MiB");
        }
        if self.max_gossip_bytes == 0 || self.max_gossip_bytes > 1 << 20 {
            return bad("max_gossip_bytes must be in 1 B ..= 1 MiB");
        }
        if self.max_inbound_bytes < self.max_message_bytes {
            return bad("max_inbound_bytes must be at least max_message_bytes");
        }
        if self.event_queue == 0 || self.max_concurrent_requests == 0 {
            return bad("event_queue and max_concurrent_requests must be positive");
        }
        if self.max_content_streams == 0 || self.max_content_streams_per_peer == 0 {
            return bad("content stream limits must be positive");
        }
        if !(4 << 10..=16 << 20).contains(&self.content_chunk_bytes) {
            return bad("content_chunk_bytes must be in 4 KiB ..= 16 MiB");
        }
        if self.content_segment_bytes < self.content_chunk_bytes as u64 {
            return bad("content_segment_bytes must be at least content_chunk_bytes");
        }
        if self.max_fetch_attempts == 0 {
            return bad("max_fetch_attempts must be positive");
        }
        for (name, d) in [
            ("request_timeout", self.request_timeout),
            ("idle_timeout", self.idle_timeout),
            ("dial_timeout", self.dial_timeout),
            ("content_timeout", self.content_timeout),
        ] {
            if d.is_zero() {
                return Err(NetError::Config(format!("{name} must be positive")));
            }
        }
        Ok(())
    }
}

/// Durations as `"1500ms"`, `"30s"`, `"2m"`, `"1h"` or a number of seconds.
mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
            s.serialize_str(&format!("{}s", d.as_secs()))
        } else {
            s.serialize_str(&format!("{}ms", d.as_millis()))
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => parse(&t).ok_or_else(|| {
                de::Error::custom(format!(
                    "bad duration {t:?}: expected e.g. \"500ms\", \"30s\", \"2m\", \"1h\""
                ))
            }),
        }
    }

    pub(super) fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().ok()?;
        let ms = match unit.trim() {
            "ms" => n,
            "s" => n.checked_mul(1_000)?,
            "m" | "min" => n.checked_mul(60_000)?,
            "h" => n.checked_mul(3_600_000)?,
            _ => return None,
        };
        Some(Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_people_write_them() {
        assert_eq!(
            human_duration::parse("500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(human_duration::parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(human_duration::parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(human_duration::parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(human_duration::parse("s"), None);
        assert_eq!(human_duration::parse("3 weeks"), None);
    }

    #[test]
    fn defaults_are_valid_and_loopback_stays_local() {
        NetConfig::default().validate().expect("default is valid");
        let c = NetConfig::loopback();
        c.validate().expect("loopback is valid");
        assert!(!c.mdns);
        assert!(
            c.listen
                .iter()
                .all(|a| a.to_string().starts_with("/ip4/127.0.0.1/"))
        );
    }
}
