//! The libp2p transport (feature `net`) with real swarms in one process, on
//! 127.0.0.1 only (mDNS off): connections over QUIC and TCP, authenticated
//! messages, gossip, verified content transfer with liars, refusals and
//! interruptions, and hostile frames.
//!
//! Waits are on events with generous timeouts (loaded 2-core machines), not
//! fixed sleeps.

mod harness;

mod content;
mod hostile;
mod messages;
