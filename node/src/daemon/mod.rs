//! The node daemon: the sync engine of this instance on the libp2p mesh.
//!
//! One thread owns the instance and its `SyncSession` (SQLite is not
//! `Sync`); the transport runs on tokio workers. The loop reacts to:
//! - a connection: both sides send a hello (what they hold and want, the
//!   tokens they issued each other, revocations), then connect the engine
//!   for the scopes both hold and bootstrap empty subscriptions from the
//!   scope's owner or a writer (`hello`);
//! - a message: apply it in one transaction, answer in the reply;
//! - a change by another process (the CLI wrote to this instance, seen as
//!   SQLite's `data_version` moving): push this node's new feed batches to
//!   connected readers at once, announce them by gossip, send new content
//!   locations (`push`);
//! - the timer: the engine's anti-entropy and retries, redials. An idle
//!   node slows its timer down, so many idle subscriptions cost little.
//!
//! `labmesh sync` runs the same loop once: until every connected peer's
//! summary of every common scope matches this node's, or a deadline.

pub mod content;
pub mod envelope;
pub mod fetch;
mod hello;
mod locations;
mod lock;
mod node;
pub mod peers;
mod push;
mod state;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use labmesh_crypto::PublicKey;
use labmesh_sync::net::NetConfig;

use crate::error::{Error, Result};

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    pub net: NetConfig,
    /// One-shot (`labmesh sync`): stop once every common scope is in sync
    /// with every connected peer, or nothing has moved for this long after
    /// the first exchange. `None` runs until interrupted.
    pub until_quiet: Option<Duration>,
    /// Give up after this long (one-shot runs).
    pub deadline: Option<Duration>,
    /// Only these peers (default: every peer in the address book).
    pub only: Option<Vec<PublicKey>>,
    /// Set to stop a daemon running on another thread (the demo, tests).
    pub stop: Option<Arc<AtomicBool>>,
}

impl DaemonOptions {
    /// A long-running daemon.
    pub fn serve(net: NetConfig) -> DaemonOptions {
        DaemonOptions {
            net,
            until_quiet: None,
            deadline: None,
            only: None,
            stop: None,
        }
    }

    /// One round of sync, as `labmesh sync` runs it.
    pub fn once(net: NetConfig, deadline: Duration, only: Option<Vec<PublicKey>>) -> DaemonOptions {
        DaemonOptions {
            net,
            until_quiet: Some(Duration::from_secs(3)),
            deadline: Some(deadline),
            only,
            stop: None,
        }
    }

    /// The same, stopped by setting `stop`.
    pub fn stoppable(mut self, stop: Arc<AtomicBool>) -> DaemonOptions {
        self.stop = Some(stop);
        self
    }

    fn one_shot(&self) -> bool {
        self.until_quiet.is_some()
    }

    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

/// What the daemon reports as it runs (the CLI prints these).
#[derive(Clone, Debug)]
pub enum DaemonEvent {
    Listening(String),
    Connected(String),
    Disconnected(String),
    Synced {
        peer: String,
        messages: usize,
    },
    /// A subscription caught up with a peer.
    InSync {
        peer: String,
        scope: String,
    },
    Problem(String),
}

/// What a run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DaemonReport {
    pub peers_connected: usize,
    pub messages_in: u64,
    pub messages_out: u64,
    /// (peer, scope) pairs whose summaries matched at the end.
    pub in_sync: Vec<(String, String)>,
    /// (peer, scope) pairs still differing at the end.
    pub behind: Vec<(String, String)>,
}

/// Runs the daemon for the instance at `root` until interrupted, or once
/// until in sync. Opens its own connections to the instance.
pub fn run(
    root: &Path,
    opts: DaemonOptions,
    report: impl FnMut(DaemonEvent),
) -> Result<DaemonReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("labmesh-net")
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidArgument(format!("cannot start the network runtime: {e}")))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, node::run_loop(root, opts, Box::new(report)))
}

/// Whether a daemon (`labmesh serve`) is running for the instance at `root`,
/// and its pid.
pub fn running(root: &Path) -> Option<u32> {
    lock::running(root)
}

/// The configuration for a short-lived process (`labmesh sync`, `cache`):
/// the same interfaces as the node's, on free ports, without mDNS, so it
/// can run beside a daemon of the same instance and never listens where
/// the node is not configured to; dials give up sooner.
pub fn ephemeral(mut net: NetConfig) -> NetConfig {
    net.listen = net.listen.iter().map(free_port).collect();
    net.mdns = false;
    // Someone waits on the other end of a short-lived process.
    net.dial_timeout = net.dial_timeout.min(std::time::Duration::from_secs(5));
    net
}

/// `addr` with its TCP or UDP port set to 0.
fn free_port(addr: &labmesh_sync::net::Multiaddr) -> labmesh_sync::net::Multiaddr {
    use labmesh_sync::net::Protocol;
    addr.iter()
        .map(|p| match p {
            Protocol::Tcp(_) => Protocol::Tcp(0),
            Protocol::Udp(_) => Protocol::Udp(0),
            other => other,
        })
        .collect()
}
