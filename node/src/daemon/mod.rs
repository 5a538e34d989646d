//! The node daemon: the sync engine of this instance on the libp2p mesh.
//!
//! One thread owns the instance and its `SyncSession` (SQLite is not
//! `Sync`); the transport runs on tokio workers. The loop:
//! - on a connection: send a hello (subscriptions we want from the peer,
//!   tokens we issued to it), connect the engine for the scopes both sides
//!   may sync, bootstrap empty subscriptions from a snapshot;
//! - on a message: apply it (one transaction), answer in the reply;
//! - every 50 ms: if another process (the CLI) wrote to this node's feed,
//!   announce it (tick + gossip), so subscribers see an edit promptly;
//! - every 2 s: the engine's timer (anti-entropy, retries), redial peers.
//!
//! `labmesh sync` runs the same loop once, until the mesh is quiet.

pub mod content;
pub mod envelope;
pub mod fetch;
pub mod peers;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use labmesh_crypto::{PublicKey, Token};
use labmesh_sync::net::{NetConfig, NetEvent, Network, NetworkHandle, PeerId};
use labmesh_sync::{Access, Outgoing, ScopeId};
use rusqlite::OptionalExtension;
use tokio::sync::mpsc;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::mesh::parse_scope;
use crate::mesh::session::SyncSession;
use envelope::{Envelope, Hello};

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    pub net: NetConfig,
    /// Stop once nothing has moved for this long after the first exchange
    /// (`labmesh sync`); `None` runs until interrupted.
    pub until_quiet: Option<Duration>,
    /// Give up after this long (one-shot runs).
    pub deadline: Option<Duration>,
    /// Only these peers (default: every peer in the address book).
    pub only: Option<Vec<PublicKey>>,
}

/// What the daemon reports as it runs (the CLI prints these).
#[derive(Clone, Debug)]
pub enum DaemonEvent {
    Listening(String),
    Connected(String),
    Disconnected(String),
    Synced { peer: String, messages: usize },
    Problem(String),
}

/// What a run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DaemonReport {
    pub peers_connected: usize,
    pub messages_in: u64,
    pub messages_out: u64,
}

struct Peer {
    key: PublicKey,
    scopes: HashSet<ScopeId>,
    queue: mpsc::UnboundedSender<Vec<u8>>,
}

/// Runs the daemon for the instance at `root` until interrupted, or once
/// until quiet. Opens its own connections to the instance.
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
    local.block_on(&runtime, run_loop(root, opts, report))
}

async fn run_loop(
    root: &Path,
    opts: DaemonOptions,
    mut report: impl FnMut(DaemonEvent),
) -> Result<DaemonReport> {
    let instance = Instance::open(root)?;
    let serving = Instance::open(root)?;
    let mut session = SyncSession::new(&instance)?;
    let key = instance.node_key()?;
    let source = Arc::new(content::ServeContent {
        instance: Mutex::new(serving),
    });
    let (net, mut events) = Network::start(&key, opts.net.clone(), source)
        .map_err(|e| Error::InvalidArgument(format!("network: {e}")))?;
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<(PeerId, Vec<Vec<u8>>)>();
    let mut peers: HashMap<PeerId, Peer> = HashMap::new();
    let mut stats = DaemonReport::default();
    for share in instance.shares()? {
        let _ = net.subscribe(&share.scope).await;
    }
    dial_known(&instance, &net, opts.only.as_deref()).await;

    let started = Instant::now();
    let mut last_activity = Instant::now();
    let mut exchanged = false;
    let mut head = feed_head(&instance)?;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    let mut timer = tokio::time::interval(Duration::from_secs(2));
    let mut redial = tokio::time::interval(Duration::from_secs(10));
    loop {
        if let Some(deadline) = opts.deadline
            && started.elapsed() > deadline
        {
            break;
        }
        if let Some(quiet) = opts.until_quiet
            && exchanged
            && last_activity.elapsed() > quiet
        {
            break;
        }
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    NetEvent::Listening { addr } => report(DaemonEvent::Listening(format!("{addr}/p2p/{}", net.local_peer_id()))),
                    NetEvent::Connected { peer, addr, .. } => {
                        let Ok(pk) = PublicKey::from_peer_id(&peer) else { continue };
                        if opts.only.as_ref().is_some_and(|o| !o.contains(&pk)) {
                            continue;
                        }
                        let _ = instance.remember_address(&pk, &addr);
                        if let std::collections::hash_map::Entry::Vacant(slot) = peers.entry(peer) {
                            let queue = spawn_sender(net.clone(), peer, answers_tx.clone());
                            slot.insert(Peer { key: pk, scopes: HashSet::new(), queue });
                            stats.peers_connected += 1;
                            report(DaemonEvent::Connected(name_of(&instance, &pk)));
                            let hello = hello_for(&instance, &pk)?;
                            send_to(&peers, peer, Envelope::Hello(hello).encode());
                            let scopes = our_side_scopes(&instance, &pk)?;
                            let out = connect_scopes(&instance, &mut session, &mut peers, peer, scopes)?;
                            route(&peers, out, &mut stats);
                        }
                        last_activity = Instant::now();
                    }
                    NetEvent::Disconnected { peer } => {
                        if let Some(p) = peers.remove(&peer) {
                            session.disconnect(&p.key);
                            report(DaemonEvent::Disconnected(name_of(&instance, &p.key)));
                        }
                    }
                    NetEvent::Discovered { peer, addrs } => {
                        for a in addrs {
                            let _ = net.add_address(peer, a).await;
                        }
                        if let Ok(pk) = PublicKey::from_peer_id(&peer)
                            && instance.peer_info(&pk).is_ok()
                        {
                            let _ = net.connect(peer).await;
                        }
                    }
                    NetEvent::Message { peer, bytes, reply } => {
                        stats.messages_in += 1;
                        last_activity = Instant::now();
                        exchanged = true;
                        let Some(pk) = peers.get(&peer).map(|p| p.key).or_else(|| PublicKey::from_peer_id(&peer).ok()) else { continue };
                        peers.entry(peer).or_insert_with(|| Peer {
                            key: pk,
                            scopes: HashSet::new(),
                            queue: spawn_sender(net.clone(), peer, answers_tx.clone()),
                        });
                        let out = match Envelope::decode(&bytes) {
                            Ok(Envelope::Engine(b)) => session.handle(&instance, pk, &b)?,
                            Ok(Envelope::Hello(h)) => on_hello(&instance, &mut session, &mut peers, peer, h)?,
                            Err(e) => {
                                report(DaemonEvent::Problem(format!("{}: {e}", name_of(&instance, &pk))));
                                Vec::new()
                            }
                        };
                        let (mine, others): (Vec<Outgoing>, Vec<Outgoing>) = out.into_iter().partition(|o| o.to == pk);
                        let answer: Vec<Vec<u8>> = mine.into_iter().map(|o| Envelope::Engine(o.bytes).encode()).collect();
                        stats.messages_out += answer.len() as u64;
                        if let Err(leftover) = reply.send(answer) {
                            for b in leftover {
                                send_to(&peers, peer, b);
                            }
                        }
                        route(&peers, others, &mut stats);
                        report(DaemonEvent::Synced { peer: name_of(&instance, &pk), messages: 1 });
                    }
                    NetEvent::Gossip { .. } => {
                        // An announcement: the timer's anti-entropy pulls what is new.
                        let out = session.tick(&instance)?;
                        route(&peers, out, &mut stats);
                    }
                    NetEvent::Problem { peer, problem } => {
                        report(DaemonEvent::Problem(format!("{}: {problem:?}", peer.map(|p| p.to_string()).unwrap_or_default())));
                    }
                    _ => {}
                }
            }
            answer = answers.recv() => {
                let Some((peer, msgs)) = answer else { continue };
                let Some(pk) = peers.get(&peer).map(|p| p.key) else { continue };
                if !msgs.is_empty() {
                    last_activity = Instant::now();
                    exchanged = true;
                }
                for m in msgs {
                    stats.messages_in += 1;
                    if let Ok(Envelope::Engine(b)) = Envelope::decode(&m) {
                        let out = session.handle(&instance, pk, &b)?;
                        route(&peers, out, &mut stats);
                    }
                }
            }
            _ = poll.tick() => {
                let now_head = feed_head(&instance)?;
                if now_head != head {
                    head = now_head;
                    let out = session.tick(&instance)?;
                    route(&peers, out, &mut stats);
                    for share in instance.shares()? {
                        let _ = net.publish(&share.scope, head.to_be_bytes().to_vec()).await;
                    }
                }
            }
            _ = timer.tick() => {
                let out = session.tick(&instance)?;
                route(&peers, out, &mut stats);
            }
            _ = redial.tick() => {
                if opts.until_quiet.is_none() {
                    dial_known(&instance, &net, opts.only.as_deref()).await;
                }
            }
        }
    }
    net.shutdown().await;
    Ok(stats)
}

fn name_of(instance: &Instance, key: &PublicKey) -> String {
    instance
        .peer_info(key)
        .ok()
        .and_then(|p| p.name)
        .unwrap_or_else(|| key.to_string())
}

/// The last sequence number of this node's own feed.
fn feed_head(instance: &Instance) -> Result<i64> {
    Ok(instance
        .connection()
        .query_row("SELECT seq FROM sync_head WHERE id = 1", [], |r| r.get(0))
        .optional()
        .db(&instance.db_path())?
        .unwrap_or(0))
}

async fn dial_known(instance: &Instance, net: &NetworkHandle, only: Option<&[PublicKey]>) {
    let Ok(known) = instance.network_peers() else {
        return;
    };
    let connected: HashSet<PeerId> = net
        .connected_peers()
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    for p in known {
        let Ok(key) = p.peer_id.parse::<PublicKey>() else {
            continue;
        };
        if only.is_some_and(|o| !o.contains(&key)) || connected.contains(&key.to_peer_id()) {
            continue;
        }
        for addr in p.addresses.iter().filter_map(|a| a.parse().ok()) {
            let _ = net.add_address(key.to_peer_id(), addr).await;
        }
        if !p.addresses.is_empty() {
            let net = net.clone();
            tokio::spawn(async move {
                let _ = net.connect(key.to_peer_id()).await;
            });
        }
    }
}

/// One sending task per peer: messages go out in order, each waits for the
/// peer to handle it (back-pressure); the peer's answers come back here.
fn spawn_sender(
    net: NetworkHandle,
    peer: PeerId,
    answers: mpsc::UnboundedSender<(PeerId, Vec<Vec<u8>>)>,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let mut attempt = 0;
            loop {
                match net.send(peer, bytes.clone()).await {
                    Ok(replies) => {
                        let _ = answers.send((peer, replies));
                        break;
                    }
                    Err(labmesh_sync::net::SendError::Busy { .. }) if attempt < 5 => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                    }
                    // Unreachable: anti-entropy resends what matters later.
                    Err(_) => break,
                }
            }
        }
    });
    tx
}

fn send_to(peers: &HashMap<PeerId, Peer>, peer: PeerId, bytes: Vec<u8>) {
    if let Some(p) = peers.get(&peer) {
        let _ = p.queue.send(bytes);
    }
}

fn route(peers: &HashMap<PeerId, Peer>, out: Vec<Outgoing>, stats: &mut DaemonReport) {
    for o in out {
        stats.messages_out += 1;
        send_to(peers, o.to.to_peer_id(), Envelope::Engine(o.bytes).encode());
    }
}

/// Our hello to a peer: what we subscribe to from it, what we granted it.
fn hello_for(instance: &Instance, peer: &PublicKey) -> Result<Hello> {
    let db = instance.db_path();
    let conn = instance.connection();
    let subscriptions: Vec<String> = conn
        .prepare("SELECT scope FROM share WHERE owner = ?1 AND subscribed_from IS NOT NULL")
        .and_then(|mut s| s.query_map([peer.to_string()], |r| r.get(0))?.collect())
        .db(&db)?;
    let offers: Vec<String> = conn
        .prepare("SELECT text FROM token WHERE kind IN ('issued', 'delegated') AND holder = ?1")
        .and_then(|mut s| s.query_map([peer.to_string()], |r| r.get(0))?.collect())
        .db(&db)?;
    Ok(Hello {
        instance_uid: instance.uid().to_string(),
        name: instance.name().to_string(),
        subscriptions,
        offers,
    })
}

/// Scopes we sync with a peer on our own account: our subscriptions from it.
fn our_side_scopes(instance: &Instance, peer: &PublicKey) -> Result<Vec<ScopeId>> {
    let scopes: Vec<String> = instance
        .connection()
        .prepare("SELECT scope FROM share WHERE owner = ?1 AND subscribed_from IS NOT NULL")
        .and_then(|mut s| s.query_map([peer.to_string()], |r| r.get(0))?.collect())
        .db(&instance.db_path())?;
    scopes.iter().map(|s| parse_scope(s)).collect()
}

/// Connects the engine for new scopes with a peer; bootstraps empty
/// subscriptions from a snapshot.
fn connect_scopes(
    instance: &Instance,
    session: &mut SyncSession,
    peers: &mut HashMap<PeerId, Peer>,
    peer: PeerId,
    scopes: Vec<ScopeId>,
) -> Result<Vec<Outgoing>> {
    let Some(p) = peers.get_mut(&peer) else {
        return Ok(Vec::new());
    };
    let fresh: Vec<ScopeId> = scopes
        .into_iter()
        .filter(|s| p.scopes.insert(s.clone()))
        .collect();
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    let key = p.key;
    let mut out = session.connect(instance, key, &fresh)?;
    for scope in &fresh {
        let empty: bool = instance
            .connection()
            .query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM sync_document WHERE scope = ?1)",
                [scope.as_str()],
                |r| r.get(0),
            )
            .db(&instance.db_path())?;
        let ours = instance
            .shares()?
            .into_iter()
            .any(|s| s.scope == scope.as_str() && s.subscribed_from.is_none());
        if empty && !ours {
            out.extend(session.bootstrap(instance, key, scope)?);
        }
    }
    Ok(out)
}

/// A peer's hello: keep the tokens it issued us, note its instance, and
/// sync the scopes it subscribes to if it may read them.
fn on_hello(
    instance: &Instance,
    session: &mut SyncSession,
    peers: &mut HashMap<PeerId, Peer>,
    peer: PeerId,
    hello: Hello,
) -> Result<Vec<Outgoing>> {
    let key = PublicKey::from_peer_id(&peer)?;
    instance.remember_instance(&key, &hello.instance_uid, &hello.name)?;
    for text in &hello.offers {
        // Grants the peer made us while we were apart: keep those we hold.
        if let Ok(token) = Token::from_text(text) {
            let _ = instance.add_received_token(&token);
        }
    }
    let access = instance.sync_access(instance.connection())?;
    let wanted: Vec<ScopeId> = hello
        .subscriptions
        .iter()
        .filter_map(|s| ScopeId::new(s).ok())
        .filter(|s| access.owner(s).is_some() && access.may_read(&key, s))
        .collect();
    connect_scopes(instance, session, peers, peer, wanted)
}
