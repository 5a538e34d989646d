//! The daemon's state and its event loop.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use labmesh_crypto::PublicKey;
use labmesh_sync::net::{NetEvent, Network, NetworkHandle, PeerId, Reply};
use labmesh_sync::{Outgoing, ScopeId};
use tokio::sync::mpsc;

use super::envelope::Envelope;
use super::state::SyncState;
use super::{DaemonEvent, DaemonOptions, DaemonReport, content, lock};
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::mesh::access::Presented;
use crate::mesh::session::SyncSession;

/// How often a change by another process is looked for.
const POLL: Duration = Duration::from_millis(50);
/// The engine's timer while anything moved in the last `ACTIVE_FOR`.
const TICK_ACTIVE: Duration = Duration::from_secs(2);
/// The engine's timer on a one-shot round.
const TICK_ONE_SHOT: Duration = Duration::from_millis(250);
/// The engine's timer on an idle node: anti-entropy is only the backstop
/// of pushes and announcements, so it need not run often.
const TICK_IDLE: Duration = Duration::from_secs(30);
const ACTIVE_FOR: Duration = Duration::from_secs(60);
const REDIAL: Duration = Duration::from_secs(10);
/// A one-shot round asks peers to confirm once nothing moved for this long.
const CHECK_AFTER: Duration = Duration::from_millis(300);

pub(super) struct Peer {
    pub key: PublicKey,
    /// Scopes the engine syncs with this peer.
    pub scopes: HashSet<ScopeId>,
    pub queue: mpsc::UnboundedSender<Vec<u8>>,
    /// Whether its hello arrived.
    pub hello: bool,
    /// The newest location (`seen_at`) sent to it.
    pub locations_sent_at: i64,
}

pub(super) struct Daemon<'r> {
    pub instance: Instance,
    pub session: SyncSession,
    pub net: NetworkHandle,
    pub peers: HashMap<PeerId, Peer>,
    pub stats: DaemonReport,
    pub state: SyncState,
    pub report: Box<dyn FnMut(DaemonEvent) + 'r>,
    pub opts: DaemonOptions,
    /// Tokens peers presented, shared with the content server.
    pub presented: Arc<Mutex<Presented>>,
    answers: mpsc::UnboundedSender<(PeerId, Vec<Vec<u8>>)>,
    /// This node's own feed: the last sequence number pushed to peers.
    pub pushed_seq: u64,
    /// Gossip topics subscribed.
    pub topics: HashSet<String>,
    pub last_activity: Instant,
    pub exchanged: bool,
    /// Dials started and failed (a one-shot round with every peer
    /// unreachable ends at once instead of at its deadline).
    dials: (usize, usize),
    dial_failed: mpsc::UnboundedSender<()>,
}

pub(super) async fn run_loop(
    root: &Path,
    opts: DaemonOptions,
    report: Box<dyn FnMut(DaemonEvent) + '_>,
) -> Result<DaemonReport> {
    let _lock = if opts.one_shot() {
        None
    } else {
        Some(lock::acquire(root)?)
    };
    let instance = Instance::open(root)?;
    let presented = Arc::new(Mutex::new(Presented::default()));
    let source = Arc::new(content::ServeContent {
        instance: Mutex::new(Instance::open(root)?),
        presented: presented.clone(),
    });
    let key = instance.node_key()?;
    let session = SyncSession::new(&instance)?;
    let (net, mut events) = Network::start(&key, opts.net.clone(), source)
        .map_err(|e| Error::InvalidArgument(format!("network: {e}")))?;
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let state = SyncState::new(&instance, !opts.one_shot())?;
    let (dial_failed, mut dial_failures) = mpsc::unbounded_channel();
    let mut d = Daemon {
        pushed_seq: super::push::own_head(&instance)?,
        instance,
        session,
        net,
        peers: HashMap::new(),
        stats: DaemonReport::default(),
        state,
        report,
        opts,
        presented,
        answers: answers_tx,
        topics: HashSet::new(),
        last_activity: Instant::now(),
        exchanged: false,
        dials: (0, 0),
        dial_failed,
    };
    d.follow_topics().await;
    d.dial_known().await;

    let started = Instant::now();
    let mut last_tick = Instant::now();
    let mut poll = tokio::time::interval(POLL);
    let mut timer = tokio::time::interval(if d.opts.one_shot() {
        TICK_ONE_SHOT
    } else {
        TICK_ACTIVE
    });
    let mut redial = tokio::time::interval(REDIAL);
    let outcome = loop {
        if d.opts
            .deadline
            .is_some_and(|limit| started.elapsed() > limit)
            || d.done()
            || d.opts.stopped()
        {
            break Ok(());
        }
        let step = tokio::select! {
            event = events.recv() => match event {
                Some(event) => d.on_net_event(event).await,
                None => break Ok(()),
            },
            answer = answers.recv() => match answer {
                Some((peer, msgs)) => d.on_answers(peer, msgs),
                None => Ok(()),
            },
            Some(()) = dial_failures.recv() => {
                d.dials.1 += 1;
                Ok(())
            }
            _ = poll.tick() => d.on_poll().await,
            _ = timer.tick() => {
                let idle = d.last_activity.elapsed() > ACTIVE_FOR;
                if !idle || last_tick.elapsed() >= TICK_IDLE {
                    last_tick = Instant::now();
                    d.on_tick()
                } else {
                    Ok(())
                }
            }
            _ = redial.tick() => {
                if !d.opts.one_shot() {
                    d.dial_known().await;
                }
                Ok(())
            }
        };
        if let Err(e) = step {
            break Err(e);
        }
    };
    d.state.finish(&d.instance);
    d.net.shutdown().await;
    outcome?;
    d.stats.in_sync = d.state.pairs(true, &d.instance);
    d.stats.behind = d.state.pairs(false, &d.instance);
    Ok(d.stats)
}

impl Daemon<'_> {
    pub fn name_of(&self, key: &PublicKey) -> String {
        self.instance
            .peer_info(key)
            .ok()
            .and_then(|p| p.name)
            .unwrap_or_else(|| key.to_string())
    }

    /// One-shot: every connected peer said hello, every common scope is in
    /// sync with it, and no bootstrap is under way; or nothing moved for
    /// the quiet period after the first exchange.
    fn done(&self) -> bool {
        let Some(quiet) = self.opts.until_quiet else {
            return false;
        };
        if self.peers.is_empty() && self.dials.0 > 0 && self.dials.1 >= self.dials.0 {
            return true; // every peer was dialed, and none answered
        }
        if !self.exchanged {
            return false;
        }
        let settled = !self.peers.is_empty()
            && self.peers.values().all(|p| {
                p.hello
                    && p.scopes
                        .iter()
                        .all(|s| !self.session.bootstrapping(s) && self.state.in_sync(&p.key, s))
            });
        // Quiet for long enough also ends the round, but never before every
        // connected peer's hello (its grants and revocations) has arrived.
        let greeted = self.peers.values().all(|p| p.hello);
        settled && self.last_activity.elapsed() > Duration::from_millis(200)
            || greeted && self.last_activity.elapsed() > quiet
    }

    /// Something moved: the timer runs at its active pace for a while.
    pub fn touch(&mut self) {
        self.last_activity = Instant::now();
        self.exchanged = true;
    }

    /// Whether `bytes` (an envelope) is only a summary that matches ours:
    /// peers in sync keep exchanging those, which must not keep the node
    /// from going idle.
    fn is_idle_chatter(&self, bytes: &[u8]) -> bool {
        match bytes.split_first() {
            Some((1, engine)) => super::state::compare_summary(&self.instance, engine)
                .ok()
                .flatten()
                .is_some_and(|(_, equal)| equal),
            _ => false,
        }
    }

    async fn on_net_event(&mut self, event: NetEvent) -> Result<()> {
        match event {
            NetEvent::Listening { addr } => {
                let text = format!("{addr}/p2p/{}", self.net.local_peer_id());
                (self.report)(DaemonEvent::Listening(text));
            }
            NetEvent::Connected { peer, addr, .. } => {
                let Ok(key) = PublicKey::from_peer_id(&peer) else {
                    return Ok(());
                };
                if self.opts.only.as_ref().is_some_and(|o| !o.contains(&key)) {
                    return Ok(());
                }
                let _ = self.instance.remember_address(&key, &addr);
                self.add_peer(peer, key)?;
                self.touch();
            }
            NetEvent::Disconnected { peer } => {
                if let Some(p) = self.peers.remove(&peer) {
                    self.session.disconnect(&p.key);
                    if let Ok(mut presented) = self.presented.lock() {
                        presented.forget(&p.key);
                    }
                    self.state.disconnected(&self.instance, &p.key);
                    let name = self.name_of(&p.key);
                    (self.report)(DaemonEvent::Disconnected(name));
                }
            }
            NetEvent::Discovered { peer, addrs } => {
                for a in addrs {
                    let _ = self.net.add_address(peer, a).await;
                }
                // Only peers in the address book: mDNS finds strangers too.
                if let Ok(key) = PublicKey::from_peer_id(&peer)
                    && self.instance.peer_info(&key).is_ok()
                {
                    let _ = self.net.connect(peer).await;
                }
            }
            NetEvent::Message { peer, bytes, reply } => self.on_message(peer, bytes, reply)?,
            NetEvent::Gossip {
                from, topic, bytes, ..
            } => self.on_gossip(from, &topic, &bytes)?,
            NetEvent::Problem { peer, problem } => {
                let who = peer.map(|p| p.to_string()).unwrap_or_default();
                (self.report)(DaemonEvent::Problem(format!("{who}: {problem:?}")));
            }
            _ => {}
        }
        Ok(())
    }

    /// A peer seen for the first time — by its connection or by its first
    /// message, whichever the transport reports first: remember it and
    /// send it our hello (exactly once per connection).
    fn add_peer(&mut self, peer: PeerId, key: PublicKey) -> Result<()> {
        if self.peers.contains_key(&peer) {
            return Ok(());
        }
        self.peers.insert(
            peer,
            Peer {
                key,
                scopes: HashSet::new(),
                queue: spawn_sender(self.net.clone(), peer, self.answers.clone()),
                hello: false,
                locations_sent_at: 0,
            },
        );
        self.stats.peers_connected += 1;
        self.state.connected(&self.instance, &key);
        let name = self.name_of(&key);
        (self.report)(DaemonEvent::Connected(name));
        let hello = self.hello_for(&key)?;
        self.send_to(peer, Envelope::Hello(Box::new(hello)).encode());
        Ok(())
    }

    /// A request from a peer: handle it, answer in the reply.
    fn on_message(&mut self, peer: PeerId, bytes: Vec<u8>, reply: Reply) -> Result<()> {
        self.stats.messages_in += 1;
        if self.is_idle_chatter(&bytes) {
            self.exchanged = true;
        } else {
            self.touch();
        }
        let key = match self.peers.get(&peer) {
            Some(p) => p.key,
            None => {
                let Ok(key) = PublicKey::from_peer_id(&peer) else {
                    return Ok(());
                };
                if self.opts.only.as_ref().is_some_and(|o| !o.contains(&key)) {
                    return Ok(());
                }
                self.add_peer(peer, key)?;
                key
            }
        };
        let out = self.handle_envelope(peer, key, &bytes)?;
        let (mine, others): (Vec<Outgoing>, Vec<Outgoing>) =
            out.into_iter().partition(|o| o.to == key);
        let answer: Vec<Vec<u8>> = mine
            .into_iter()
            .map(|o| Envelope::Engine(o.bytes).encode())
            .collect();
        self.stats.messages_out += answer.len() as u64;
        if let Err(leftover) = reply.send(answer) {
            for b in leftover {
                self.send_to(peer, b);
            }
        }
        self.route(others);
        let name = self.name_of(&key);
        (self.report)(DaemonEvent::Synced {
            peer: name,
            messages: 1,
        });
        Ok(())
    }

    /// Answers to messages this node sent.
    fn on_answers(&mut self, peer: PeerId, msgs: Vec<Vec<u8>>) -> Result<()> {
        let Some(key) = self.peers.get(&peer).map(|p| p.key) else {
            return Ok(());
        };
        if msgs.iter().any(|m| !self.is_idle_chatter(m)) {
            self.touch();
        }
        for m in msgs {
            self.stats.messages_in += 1;
            let out = self.handle_envelope(peer, key, &m)?;
            self.route(out);
        }
        Ok(())
    }

    fn handle_envelope(
        &mut self,
        peer: PeerId,
        key: PublicKey,
        bytes: &[u8],
    ) -> Result<Vec<Outgoing>> {
        match Envelope::decode(bytes) {
            Ok(Envelope::Engine(b)) => {
                if let Some((scope, equal)) = super::state::compare_summary(&self.instance, &b)? {
                    let was = self.state.in_sync(&key, &scope);
                    self.state.observe(&self.instance, &key, &scope, equal);
                    if equal && !was {
                        let name = self.name_of(&key);
                        (self.report)(DaemonEvent::InSync {
                            peer: name,
                            scope: scope.to_string(),
                        });
                    }
                }
                self.session.handle(&self.instance, key, &b)
            }
            Ok(Envelope::Hello(h)) => self.on_hello(peer, key, *h),
            Ok(Envelope::Locations(list)) => {
                self.instance.accept_locations(&key, &list)?;
                Ok(Vec::new())
            }
            Ok(Envelope::Check(scopes)) => {
                // Summaries of the scopes we sync with it (the engine sends
                // them only where the peer may read).
                let ours: Vec<ScopeId> = match self.peers.get(&peer) {
                    Some(p) => scopes
                        .iter()
                        .filter_map(|s| ScopeId::new(s).ok())
                        .filter(|s| p.scopes.contains(s))
                        .collect(),
                    None => Vec::new(),
                };
                if ours.is_empty() {
                    return Ok(Vec::new());
                }
                self.session.connect(&self.instance, key, &ours)
            }
            Err(e) => {
                let name = self.name_of(&key);
                (self.report)(DaemonEvent::Problem(format!("{name}: {e}")));
                Ok(Vec::new())
            }
        }
    }

    fn on_gossip(&mut self, from: PeerId, topic: &str, bytes: &[u8]) -> Result<()> {
        // An announcement of new marks: the engine pulls what it lacks from
        // the neighbour that forwarded it (which shares the scope).
        let Some(key) = self.peers.get(&from).map(|p| p.key) else {
            return Ok(());
        };
        let Ok(scope) = ScopeId::new(topic) else {
            return Ok(());
        };
        if !self
            .peers
            .get(&from)
            .is_some_and(|p| p.scopes.contains(&scope))
        {
            return Ok(());
        }
        let out = self.session.handle(&self.instance, key, bytes)?;
        self.route(out);
        Ok(())
    }

    fn on_tick(&mut self) -> Result<()> {
        let out = self.session.tick(&self.instance)?;
        self.route(out);
        if self.opts.one_shot() && self.last_activity.elapsed() > CHECK_AFTER {
            self.ask_for_checks();
        }
        Ok(())
    }

    /// One-shot: once nothing moves, ask each peer for its summaries of
    /// the scopes not known to agree yet, rather than wait for its timer.
    fn ask_for_checks(&mut self) {
        let asks: Vec<(PeerId, Vec<String>)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.hello)
            .map(|(peer, p)| {
                let open: Vec<String> = p
                    .scopes
                    .iter()
                    .filter(|s| !self.session.bootstrapping(s) && !self.state.in_sync(&p.key, s))
                    .map(|s| s.to_string())
                    .collect();
                (*peer, open)
            })
            .filter(|(_, open)| !open.is_empty())
            .collect();
        for (peer, open) in asks {
            self.send_to(peer, Envelope::Check(open).encode());
        }
    }

    pub fn send_to(&self, peer: PeerId, bytes: Vec<u8>) {
        if let Some(p) = self.peers.get(&peer) {
            let _ = p.queue.send(bytes);
        }
    }

    pub fn route(&mut self, out: Vec<Outgoing>) {
        for o in out {
            self.stats.messages_out += 1;
            self.send_to(o.to.to_peer_id(), Envelope::Engine(o.bytes).encode());
        }
    }

    async fn dial_known(&mut self) {
        let Ok(known) = self.instance.network_peers() else {
            return;
        };
        let connected: HashSet<PeerId> = self
            .net
            .connected_peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
        let only = self.opts.only.as_deref();
        for p in known {
            let Ok(key) = p.peer_id.parse::<PublicKey>() else {
                continue;
            };
            if only.is_some_and(|o| !o.contains(&key)) || connected.contains(&key.to_peer_id()) {
                continue;
            }
            for addr in p.addresses.iter().filter_map(|a| a.parse().ok()) {
                let _ = self.net.add_address(key.to_peer_id(), addr).await;
            }
            if !p.addresses.is_empty() {
                let net = self.net.clone();
                let failed = self.dial_failed.clone();
                self.dials.0 += 1;
                tokio::spawn(async move {
                    if net.connect(key.to_peer_id()).await.is_err() {
                        let _ = failed.send(());
                    }
                });
            }
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
                    Err(e) if attempt < 5 && worth_retrying(&e) => {
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

/// Whether a failed send is worth repeating: the peer was busy, or the
/// stream went out on a connection that closed while the peer stays
/// connected (two dials crossing leave one connection of the two). A lost
/// hello would leave the pair connected but never syncing, and the
/// engine's messages are idempotent, so both are sent again; a peer that
/// is really gone fails the next attempt as unreachable at once.
fn worth_retrying(e: &labmesh_sync::net::SendError) -> bool {
    use labmesh_sync::net::SendError;
    matches!(
        e,
        SendError::Busy(_)
            | SendError::ConnectionClosed(_)
            | SendError::NoAnswer(_)
            | SendError::Io { .. }
    )
}
