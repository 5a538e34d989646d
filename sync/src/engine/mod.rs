//! The sync protocol as an I/O-free state machine.
//!
//! The driver owns the clock, the network and the storage. It calls the
//! engine with an input — a local write, a message from a peer, a timer
//! tick, a peer coming or going, a change of access — and the current time,
//! and gets back an [`Output`]: messages to send, [`Effect`]s to apply to
//! storage, and [`Event`]s to report. The driver applies the effects
//! atomically (one transaction) before it gives the engine its next input,
//! so the engine's reads through [`Store`] always see its earlier writes.
//! The engine keeps only soft state in memory (peers, pulls in flight, a
//! bootstrap in progress, refused repair documents), all of which can be
//! lost in a restart without losing data.

mod apply;
mod memo;
mod overlay;
mod repair;
mod revalidate;
mod serve;
mod snapshot;
mod traits;
mod types;
mod write;

use std::collections::{BTreeMap, BTreeSet};

use labmesh_crypto::{NodeKey, PublicKey};

pub use traits::{Access, Store};
pub use types::{Effect, Event, Outgoing, Output, Rejection, Stats};
pub use write::{LocalWrite, Receipt, Written};

use crate::error::{StoreError, WireError};
use crate::hlc::{Hlc, HlcClock};
use crate::ids::{RecordUid, ScopeId};
use crate::wire::{Marks, Message};

/// Tunables. The defaults suit a LAN or the simulator.
#[derive(Clone, Debug)]
pub struct Config {
    /// A remote clock further ahead of ours than this is flagged.
    pub max_drift_ms: u64,
    /// Budget of one response (batches, snapshot chunk, documents), below
    /// [`crate::wire::limits::MAX_MESSAGE_BYTES`]. A single item larger than
    /// the budget travels alone.
    pub max_response_bytes: usize,
    /// Records per snapshot chunk.
    pub snapshot_chunk_records: usize,
    /// Items per bucket page during repair.
    pub bucket_page: usize,
    /// After this long without an answer, a pull or a snapshot request is
    /// sent again.
    pub retry_ms: u64,
    /// Threads that load snapshot documents (1 = on the calling thread).
    /// Results do not depend on it.
    pub threads: usize,
    /// How long a document refused from a peer during repair stays out of
    /// the comparison with that peer (so repair does not resend it every
    /// round); after this, repair tries it again.
    pub refusal_memo_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_drift_ms: 60_000,
            max_response_bytes: 1 << 20,
            snapshot_chunk_records: 1024,
            bucket_page: 4096,
            retry_ms: 2_000,
            threads: 1,
            refusal_memo_ms: 60_000,
        }
    }
}

/// A snapshot bootstrap in progress.
#[derive(Clone, Debug)]
struct Bootstrap {
    peer: PublicKey,
    /// The server's marks, from the first chunk.
    marks: Option<Marks>,
    /// Resume point.
    after: Option<RecordUid>,
    records: u64,
    last_progress_ms: u64,
}

/// The soft state a refused message must leave as it was.
#[derive(Clone)]
struct Checkpoint {
    clock: HlcClock,
    inflight: BTreeMap<(ScopeId, PublicKey), (PublicKey, u64)>,
    bootstraps: BTreeMap<ScopeId, Bootstrap>,
    blocked: BTreeSet<(ScopeId, PublicKey)>,
    refusals: memo::Refusals,
    stats: Stats,
}

/// The sync state machine of one node.
pub struct Engine {
    key: NodeKey,
    me: PublicKey,
    config: Config,
    clock: HlcClock,
    last_seq: u64,
    /// Connected peers and the scopes we share with each.
    peers: BTreeMap<PublicKey, BTreeSet<ScopeId>>,
    /// Pulls sent after an announce: (scope, origin) -> (peer, when).
    inflight: BTreeMap<(ScopeId, PublicKey), (PublicKey, u64)>,
    bootstraps: BTreeMap<ScopeId, Bootstrap>,
    /// (scope, origin) whose next stored batch waits for another origin's
    /// change; retried from our own store on `tick`.
    blocked: BTreeSet<(ScopeId, PublicKey)>,
    /// Consecutive summaries from a peer whose documents differed.
    mismatches: BTreeMap<(PublicKey, ScopeId), u32>,
    /// Consecutive summaries from a peer whose marks differed.
    lagging: BTreeMap<(PublicKey, ScopeId), u32>,
    /// Documents refused from peers during repair (see `memo`).
    refusals: memo::Refusals,
    /// Digests of batches whose signature verified (bounded, oldest first).
    verified: VerifiedBatches,
    stats: Stats,
}

impl Engine {
    /// An engine for the node with `key`, resuming from the feed head in `store`.
    pub fn new(key: NodeKey, config: Config, store: &dyn Store) -> Result<Engine, StoreError> {
        let me = key.public_key();
        let (last_seq, last_hlc) = store.local_head()?;
        Ok(Engine {
            clock: HlcClock::new(&me, last_hlc, config.max_drift_ms),
            key,
            me,
            config,
            last_seq,
            peers: BTreeMap::new(),
            inflight: BTreeMap::new(),
            bootstraps: BTreeMap::new(),
            blocked: BTreeSet::new(),
            mismatches: BTreeMap::new(),
            lagging: BTreeMap::new(),
            refusals: memo::Refusals::default(),
            verified: VerifiedBatches::default(),
            stats: Stats::default(),
        })
    }

    /// This node's public key.
    pub fn id(&self) -> PublicKey {
        self.me
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The last HLC read or observed.
    pub fn clock(&self) -> Hlc {
        self.clock.last()
    }

    /// Whether a snapshot bootstrap of `scope` is in progress.
    pub fn bootstrapping(&self, scope: &ScopeId) -> bool {
        self.bootstraps.contains_key(scope)
    }

    /// A peer connected (authenticated by the transport) and both sides
    /// sync `scopes`. Starts anti-entropy with it at once.
    pub fn connect(
        &mut self,
        now_ms: u64,
        peer: PublicKey,
        scopes: &[ScopeId],
        store: &dyn Store,
        access: &dyn Access,
    ) -> Output {
        self.peers
            .entry(peer)
            .or_default()
            .extend(scopes.iter().cloned());
        let mut out = Output::default();
        for scope in scopes {
            if let Err(e) = self.send_summary(now_ms, peer, scope, store, access, &mut out) {
                return Output::store_failed(e);
            }
        }
        out
    }

    /// A peer went away.
    pub fn disconnect(&mut self, peer: &PublicKey) {
        self.peers.remove(peer);
        self.mismatches.retain(|(p, _), _| p != peer);
        self.lagging.retain(|(p, _), _| p != peer);
        self.inflight.retain(|_, (p, _)| p != peer);
        self.refusals.forget_peer(peer);
    }

    fn shares(&self, peer: &PublicKey, scope: &ScopeId) -> bool {
        self.peers.get(peer).is_some_and(|s| s.contains(scope))
    }

    /// Peers we share `scope` with, that may read it, except `except`.
    fn readers(
        &self,
        scope: &ScopeId,
        except: Option<&PublicKey>,
        access: &dyn Access,
    ) -> Vec<PublicKey> {
        self.peers
            .iter()
            .filter(|(p, scopes)| {
                Some(*p) != except && scopes.contains(scope) && access.may_read(p, scope)
            })
            .map(|(p, _)| *p)
            .collect()
    }

    /// `peer`'s clock reading "now", for checks of its current rights.
    fn now_of(now_ms: u64, peer: &PublicKey) -> Hlc {
        Hlc {
            ms: now_ms,
            logical: 0,
            node: Hlc::node_tag(peer),
        }
    }

    /// Whether `peer` is trusted with unsigned documents of `scope`
    /// (snapshots, repair): it may write the scope now (the owner may).
    fn may_serve_documents(
        now_ms: u64,
        peer: &PublicKey,
        scope: &ScopeId,
        access: &dyn Access,
    ) -> bool {
        access.may_write(peer, scope, Self::now_of(now_ms, peer))
    }

    /// Timer: anti-entropy summaries to every peer, retries of blocked
    /// batches and stalled bootstraps. Call every few seconds.
    pub fn tick(&mut self, now_ms: u64, store: &dyn Store, access: &dyn Access) -> Output {
        let clock_before = self.clock.last();
        let mut out = Output::default();
        let retry = self.config.retry_ms;
        self.inflight
            .retain(|_, (_, since)| now_ms.saturating_sub(*since) < retry);
        self.refusals.expire(now_ms);
        if let Err(e) = self.retry_blocked(now_ms, store, access, &mut out) {
            return Output::store_failed(e);
        }
        self.retry_bootstraps(now_ms, &mut out);
        let peers: Vec<(PublicKey, Vec<ScopeId>)> = self
            .peers
            .iter()
            .map(|(p, s)| (*p, s.iter().cloned().collect()))
            .collect();
        for (peer, scopes) in peers {
            for scope in scopes {
                if self.bootstraps.contains_key(&scope) {
                    continue;
                }
                if let Err(e) = self.send_summary(now_ms, peer, &scope, store, access, &mut out) {
                    return Output::store_failed(e);
                }
            }
        }
        self.persist_clock(clock_before, &mut out);
        out
    }

    /// A message from an authenticated peer. Malformed, oversized or badly
    /// signed input is refused whole, with a [`Event::BadMessage`], no
    /// effects and the engine's state as it was.
    pub fn handle(
        &mut self,
        now_ms: u64,
        from: PublicKey,
        bytes: &[u8],
        store: &dyn Store,
        access: &dyn Access,
    ) -> Output {
        let message = match Message::decode(bytes) {
            Ok(m) => m,
            Err(error) => return self.bad_message(from, error),
        };
        let clock_before = self.clock.last();
        // Only these can be refused after they changed soft state; the
        // others need no checkpoint (cheap: no clone per summary).
        let checkpoint = matches!(
            message,
            Message::Batches { .. } | Message::Docs { .. } | Message::SnapshotChunk { .. }
        )
        .then(|| self.checkpoint());
        let result = match message {
            Message::Announce { scope, marks } => {
                self.on_announce(now_ms, from, scope, marks, store, access)
            }
            Message::Pull { scope, full, marks } => {
                self.on_pull(from, scope, full, marks, store, access)
            }
            Message::Batches {
                scope,
                more,
                batches,
            } => self.on_batches(now_ms, from, scope, more, batches, store, access),
            Message::Summary {
                scope,
                marks_digest,
                docs_digest,
            } => self.on_summary(
                now_ms,
                from,
                scope,
                marks_digest,
                docs_digest,
                store,
                access,
            ),
            Message::Buckets { scope, digests } => {
                self.on_buckets(now_ms, from, scope, digests, store, access)
            }
            Message::BucketItems {
                scope,
                bucket,
                after,
                upto,
                items,
            } => self.on_bucket_items(
                now_ms, from, scope, bucket, after, upto, items, store, access,
            ),
            Message::Docs { scope, docs, want } => {
                self.on_docs(now_ms, from, scope, docs, want, store, access)
            }
            Message::SnapshotRequest { scope, after } => {
                self.on_snapshot_request(now_ms, from, scope, after, store, access)
            }
            Message::SnapshotChunk {
                scope,
                marks,
                records,
                next,
            } => self.on_snapshot_chunk(now_ms, from, scope, marks, records, next, store, access),
            Message::Denied { scope } => {
                self.bootstraps
                    .retain(|s, b| !(*s == scope && b.peer == from));
                Ok(Output {
                    events: vec![Event::RefusedBy { peer: from, scope }],
                    ..Output::default()
                })
            }
        };
        match result {
            Ok(mut out) => {
                self.persist_clock(clock_before, &mut out);
                out
            }
            Err(failure) => {
                if let Some(checkpoint) = checkpoint {
                    self.restore(checkpoint);
                }
                match failure {
                    Failure::Store(e) => Output::store_failed(e),
                    Failure::Bad(error) => self.bad_message(from, error),
                }
            }
        }
    }

    /// When observing remote clocks moved ours, the stored head's clock
    /// follows, so an engine restored from the store (the node builds one
    /// per local write) never reads below what this one observed.
    fn persist_clock(&self, before: Hlc, out: &mut Output) {
        let now = self.clock.last();
        if (now.ms, now.logical) > (before.ms, before.logical) {
            out.effects.push(Effect::RaiseClock { hlc: now });
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            clock: self.clock.clone(),
            inflight: self.inflight.clone(),
            bootstraps: self.bootstraps.clone(),
            blocked: self.blocked.clone(),
            refusals: self.refusals.clone(),
            stats: self.stats.clone(),
        }
    }

    fn restore(&mut self, c: Checkpoint) {
        self.clock = c.clock;
        self.inflight = c.inflight;
        self.bootstraps = c.bootstraps;
        self.blocked = c.blocked;
        self.refusals = c.refusals;
        self.stats = c.stats;
    }

    fn bad_message(&mut self, peer: PublicKey, error: WireError) -> Output {
        self.stats.bad_messages += 1;
        Output {
            events: vec![Event::BadMessage { peer, error }],
            ..Output::default()
        }
    }
}

/// Batches already verified: gossip delivers the same batch from several
/// peers, and a strict signature check costs ~50 µs. Keyed by the BLAKE3 of
/// the signed bytes, so a hit means the identical bytes verified before.
#[derive(Default)]
struct VerifiedBatches {
    set: BTreeSet<[u8; 32]>,
    order: std::collections::VecDeque<[u8; 32]>,
}

impl VerifiedBatches {
    const CAPACITY: usize = 8192;

    fn check(&mut self, batch: &crate::feed::SignedBatch) -> Result<(), WireError> {
        let digest = *blake3::hash(&batch.to_bytes()).as_bytes();
        if self.set.contains(&digest) {
            return Ok(());
        }
        batch.verify()?;
        if self.order.len() >= Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(digest);
        self.order.push_back(digest);
        Ok(())
    }
}

/// Why handling an input stopped; either way, no effects are returned.
#[derive(Debug)]
pub(crate) enum Failure {
    Store(StoreError),
    Bad(WireError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<overlay::LoadError> for Failure {
    fn from(e: overlay::LoadError) -> Self {
        match e {
            overlay::LoadError::Store(e) => Failure::Store(e),
            overlay::LoadError::Doc(e) => Failure::Store(StoreError::new(e)),
        }
    }
}
