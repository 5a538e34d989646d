//! The swarm task: owns the libp2p swarm, turns handle commands into swarm
//! calls and swarm events into [`NetEvent`]s.
//!
//! It must never block on the node: if the event channel is full, inbound
//! sync messages are answered `Busy` at once (the sender backs off), gossip
//! is dropped (anti-entropy repairs what gossip misses), and connection
//! events wait in a small backlog that drains as the node reads.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{Future, StreamExt};
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, mdns};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::codec::SyncResponse;
use super::config::NetConfig;
use super::error::{GossipError, NetError, SendError};
use super::event::{EventSink, NetEvent, Problem, Reply};
use super::handle::Command;

/// Addresses remembered per peer for redials.
const MAX_ADDRS_PER_PEER: usize = 16;
/// Connection events kept while the node is not reading.
const MAX_BACKLOG: usize = 4096;

/// Where the answer to one `send` goes.
type AnswerTx = oneshot::Sender<Result<Vec<Vec<u8>>, SendError>>;

type PendingReply =
    Pin<Box<dyn Future<Output = (ResponseChannel<SyncResponse>, usize, Vec<Vec<u8>>)> + Send>>;

pub(crate) struct Driver {
    pub swarm: Swarm<Behaviour>,
    pub commands: mpsc::Receiver<Command>,
    pub events: EventSink,
    pub config: NetConfig,
    pub server: JoinHandle<()>,
    backlog: VecDeque<NetEvent>,
    /// Answers the node owes, each with the size of its request.
    replies: FuturesUnordered<PendingReply>,
    inbound_bytes: usize,
    sends: HashMap<OutboundRequestId, (PeerId, AnswerTx)>,
    dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NetError>>>,
    waiters: HashMap<PeerId, Vec<oneshot::Sender<Result<(), NetError>>>>,
    addrs: HashMap<PeerId, Vec<Multiaddr>>,
}

/// The `/p2p/<peer id>` at the end of an address, if any.
fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

impl Driver {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: EventSink,
        config: NetConfig,
        server: JoinHandle<()>,
    ) -> Driver {
        Driver {
            swarm,
            commands,
            events,
            config,
            server,
            backlog: VecDeque::new(),
            replies: FuturesUnordered::new(),
            inbound_bytes: 0,
            sends: HashMap::new(),
            dials: HashMap::new(),
            waiters: HashMap::new(),
            addrs: HashMap::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some((channel, len, messages)) = self.replies.next(), if !self.replies.is_empty() => {
                    self.inbound_bytes -= len;
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, SyncResponse::Ok(messages));
                }
                permit = self.events.sender().clone().reserve_owned(), if !self.backlog.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.backlog.pop_front() {
                            permit.send(event);
                        }
                    }
                    Err(_) => self.backlog.clear(),
                },
            }
        }
        self.stop().await;
    }

    /// Ends transfers, closes connections politely, then drops the swarm.
    async fn stop(mut self) {
        self.server.abort();
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let drain = async {
            while self.swarm.connected_peers().next().is_some() {
                let _ = self.swarm.select_next_some().await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }

    /// Queues an event the node must see (connections, listeners).
    fn emit(&mut self, event: NetEvent) {
        if self.backlog.is_empty() {
            match self.events.sender().try_send(event) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(event)) => self.backlog.push_back(event),
            }
        } else {
            self.backlog.push_back(event);
        }
        if self.backlog.len() > MAX_BACKLOG {
            self.backlog.pop_front();
        }
    }

    fn remember(&mut self, peer: PeerId, addr: Multiaddr) {
        let addr = if peer_of(&addr).is_some() {
            let mut a = addr;
            a.pop();
            a
        } else {
            addr
        };
        let known = self.addrs.entry(peer).or_default();
        if !known.contains(&addr) {
            if known.len() >= MAX_ADDRS_PER_PEER {
                known.remove(0);
            }
            known.push(addr.clone());
            self.swarm.add_peer_address(peer, addr);
        }
    }

    fn known(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.addrs.get(peer).cloned().unwrap_or_default()
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial { addr, reply } => self.dial(addr, reply),
            Command::Connect { peer, reply } => self.connect(peer, reply),
            Command::AddAddress { peer, addr } => self.remember(peer, addr),
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::Send { peer, bytes, reply } => {
                let addrs = self.known(&peer);
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request_with_addresses(&peer, bytes, addrs);
                self.sends.insert(id, (peer, reply));
            }
            Command::Publish {
                topic,
                bytes,
                reply,
            } => {
                let topic = gossipsub::IdentTopic::new(topic);
                let result = match self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(topic.clone(), bytes)
                {
                    Ok(_) => Ok(()),
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                        Err(GossipError::NoPeers(topic.to_string()))
                    }
                    Err(gossipsub::PublishError::MessageTooLarge) => Err(GossipError::TooLarge),
                    Err(e) => Err(GossipError::Other(e.to_string())),
                };
                let _ = reply.send(result);
            }
            Command::Subscribe { topic, on, reply } => {
                let topic = gossipsub::IdentTopic::new(topic);
                let gossip = &mut self.swarm.behaviour_mut().gossip;
                let result = if on {
                    gossip
                        .subscribe(&topic)
                        .map(|_| ())
                        .map_err(|e| NetError::Config(format!("cannot subscribe: {e:?}")))
                } else {
                    gossip.unsubscribe(&topic);
                    Ok(())
                };
                let _ = reply.send(result);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Shutdown => {}
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, NetError>>) {
        let named = peer_of(&addr);
        if let Some(peer) = named {
            self.remember(peer, addr.clone());
            if self.swarm.is_connected(&peer) {
                let _ = reply.send(Ok(peer));
                return;
            }
        }
        let opts = match named {
            Some(peer) => DialOpts::peer_id(peer)
                .addresses(vec![addr])
                .condition(PeerCondition::Always)
                .build(),
            None => DialOpts::unknown_peer_id().address(addr).build(),
        };
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.dials.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(dial_error(named, &e)));
            }
        }
    }

    fn connect(&mut self, peer: PeerId, reply: oneshot::Sender<Result<(), NetError>>) {
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(self.known(&peer))
            .extend_addresses_through_behaviour()
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {
                self.waiters.entry(peer).or_default().push(reply);
            }
            Err(e) => {
                let _ = reply.send(Err(dial_error(Some(peer), &e)));
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                for waiter in self.waiters.remove(&peer_id).unwrap_or_default() {
                    let _ = waiter.send(Ok(()));
                }
                if endpoint.is_dialer() {
                    self.remember(peer_id, endpoint.get_remote_address().clone());
                }
                if num_established.get() == 1 {
                    self.emit(NetEvent::Connected {
                        peer: peer_id,
                        addr: endpoint.get_remote_address().clone(),
                        inbound: endpoint.is_listener(),
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.emit(NetEvent::Disconnected { peer: peer_id }),
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(dial_error(peer_id, &error)));
                }
                if let Some(peer) = peer_id {
                    for waiter in self.waiters.remove(&peer).unwrap_or_default() {
                        let _ = waiter.send(Err(dial_error(Some(peer), &error)));
                    }
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                self.emit(NetEvent::Listening { addr: address })
            }
            SwarmEvent::ListenerClosed {
                reason: Err(e),
                addresses,
                ..
            } => self.emit(NetEvent::Problem {
                peer: None,
                problem: Problem::Listener(format!("listener on {addresses:?} closed: {e}")),
            }),
            SwarmEvent::ListenerError { error, .. } => self.emit(NetEvent::Problem {
                peer: None,
                problem: Problem::Listener(error.to_string()),
            }),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Sync(event) => self.on_sync_event(event),
            BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            }) => {
                // Gossip is best effort: dropped when the node is behind.
                let _ = self.events.sender().try_send(NetEvent::Gossip {
                    from: propagation_source,
                    origin: message.source,
                    topic: message.topic.into_string(),
                    bytes: message.data,
                });
            }
            BehaviourEvent::Gossip(gossipsub::Event::Subscribed { peer_id, topic, .. }) => self
                .emit(NetEvent::PeerSubscribed {
                    peer: peer_id,
                    topic: topic.into_string(),
                }),
            BehaviourEvent::Gossip(_) => {}
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for addr in info.listen_addrs {
                    self.remember(peer_id, addr);
                }
            }
            BehaviourEvent::Identify(_) => {}
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                let mut by_peer: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
                for (peer, addr) in found {
                    by_peer.entry(peer).or_default().push(addr);
                }
                for (peer, addrs) in by_peer {
                    for addr in &addrs {
                        self.remember(peer, addr.clone());
                    }
                    self.emit(NetEvent::Discovered { peer, addrs });
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Expired(_)) => {}
            BehaviourEvent::Content(()) => {}
        }
    }

    fn on_sync_event(&mut self, event: request_response::Event<Vec<u8>, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((peer, reply)) = self.sends.remove(&request_id) {
                        let _ = reply.send(match response {
                            SyncResponse::Ok(messages) => Ok(messages),
                            SyncResponse::Busy => Err(SendError::Busy(peer)),
                        });
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((_, reply)) = self.sends.remove(&request_id) {
                    let _ = reply.send(Err(send_error(peer, error)));
                }
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request(&mut self, peer: PeerId, bytes: Vec<u8>, channel: ResponseChannel<SyncResponse>) {
        let len = bytes.len();
        let over = self.inbound_bytes + len > self.config.max_inbound_bytes;
        if over || !self.backlog.is_empty() {
            return self.busy(peer, channel);
        }
        let (reply, rx) = Reply::new(self.config.max_message_bytes);
        match self
            .events
            .sender()
            .try_send(NetEvent::Message { peer, bytes, reply })
        {
            Ok(()) => {
                self.inbound_bytes += len;
                let wait = self.config.request_timeout;
                self.replies.push(Box::pin(async move {
                    // No answer in time, or the Reply dropped: an empty answer.
                    let messages = match tokio::time::timeout(wait, rx).await {
                        Ok(Ok(messages)) => messages,
                        _ => Vec::new(),
                    };
                    (channel, len, messages)
                }));
            }
            Err(_) => self.busy(peer, channel),
        }
    }

    fn busy(&mut self, peer: PeerId, channel: ResponseChannel<SyncResponse>) {
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, SyncResponse::Busy);
        self.events
            .problem(Some(peer), Problem::Overloaded("sync messages"));
    }
}

fn dial_error(peer: Option<PeerId>, e: &DialError) -> NetError {
    NetError::Dial {
        peer,
        reason: e.to_string(),
    }
}

fn send_error(peer: PeerId, e: OutboundFailure) -> SendError {
    match e {
        OutboundFailure::DialFailure => SendError::Unreachable(peer),
        OutboundFailure::Timeout => SendError::Timeout(peer),
        OutboundFailure::ConnectionClosed => SendError::ConnectionClosed(peer),
        OutboundFailure::UnsupportedProtocols => SendError::Unsupported(peer),
        OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            SendError::NoAnswer(peer)
        }
        OutboundFailure::Io(e) => SendError::Io {
            peer,
            reason: e.to_string(),
        },
    }
}
