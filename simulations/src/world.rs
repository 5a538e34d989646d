//! The simulated mesh: nodes, links, time, and the main loop.

use std::collections::{BTreeMap, BTreeSet};

use labmesh_crypto::{NodeKey, PublicKey};
use labmesh_sync::memory::{MemoryStore, StaticAccess};
use labmesh_sync::wire::Message;
use labmesh_sync::{Access, Config, Effect, Engine, Event, FieldValue, Hlc, Output, ScopeId};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::config::{Fault, SimConfig};
use crate::net::{Faults, Network, Packet};
use crate::topology::topology;
use crate::truth::Truth;
use crate::workload::{Acks, REVOKES};
use crate::{Report, SimError};

/// Simulated wall clocks start here (ms since the epoch, Nov 2025).
const EPOCH_MS: u64 = 1_764_000_000_000;
/// Granularity of simulated time.
pub(crate) const STEP_MS: u64 = 10;
/// The engine's clock-drift threshold in the simulation.
const MAX_DRIFT_MS: u64 = 60_000;

pub(crate) struct SimNode {
    /// The node's secret, to build its engine again after a restart.
    pub(crate) secret: [u8; 32],
    pub(crate) key: NodeKey,
    pub(crate) id: PublicKey,
    pub(crate) engine: Engine,
    pub(crate) store: MemoryStore,
    pub(crate) writer: bool,
    pub(crate) skew_ms: i64,
    pub(crate) scopes: Vec<ScopeId>,
    pub(crate) joined: bool,
    /// What this node knows of access: the grants, and the revocations
    /// whose records it holds.
    pub(crate) access: StaticAccess,
    /// Scopes still to bootstrap from a snapshot.
    pub(crate) bootstrap_todo: BTreeSet<ScopeId>,
    /// Forged-feed state of a read-only node: its next fake seq, and its
    /// previous one per scope.
    pub(crate) rogue_seq: u64,
    pub(crate) rogue_prev: BTreeMap<ScopeId, u64>,
}

/// A node's access as its engine sees it (or, for the `PermissiveAccess`
/// self-test, a broken one that lets anyone write).
pub(crate) struct View<'a> {
    pub(crate) acl: &'a StaticAccess,
    pub(crate) permissive: bool,
}

impl Access for View<'_> {
    fn may_read(&self, peer: &PublicKey, scope: &ScopeId) -> bool {
        self.acl.may_read(peer, scope)
    }
    fn may_write(&self, origin: &PublicKey, scope: &ScopeId, at: Hlc) -> bool {
        self.permissive || self.acl.may_write(origin, scope, at)
    }
    fn held_write(&self, origin: &PublicKey, scope: &ScopeId) -> bool {
        self.permissive || self.acl.held_write(origin, scope)
    }
}

pub(crate) struct World {
    pub(crate) cfg: SimConfig,
    pub(crate) rng: Xoshiro256PlusPlus,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) index: BTreeMap<PublicKey, usize>,
    pub(crate) scopes: Vec<ScopeId>,
    /// Links: node -> peer -> shared scopes.
    pub(crate) links: Vec<BTreeMap<usize, Vec<ScopeId>>>,
    pub(crate) net: Network,
    pub(crate) now: u64,
    pub(crate) faults: Option<Faults>,
    pub(crate) acks: Acks,
    pub(crate) truth: Truth,
    /// Changes some receiver rejected (none may be a valid one).
    pub(crate) rejected: BTreeSet<[u8; 32]>,
    /// Links that are down, and when they come back.
    pub(crate) outages: Vec<((usize, usize), u64)>,
    pub(crate) report: Report,
    /// Violations seen while running (e.g. an honest message refused).
    pub(crate) violations: Vec<String>,
}

impl World {
    pub(crate) fn new(cfg: SimConfig) -> Result<World, SimError> {
        if cfg.nodes < 2 || cfg.scopes == 0 {
            return Err(SimError::Config("at least 2 nodes and 1 scope".into()));
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
        let mut scopes =
            vec![ScopeId::new("instance:Lab0").map_err(|e| SimError::Config(e.to_string()))?];
        for s in 1..cfg.scopes {
            scopes.push(
                ScopeId::new(&format!("collection:C{s}"))
                    .map_err(|e| SimError::Config(e.to_string()))?,
            );
        }
        let mut grants = StaticAccess::new();
        let mut nodes = Vec::with_capacity(cfg.nodes);
        let mut index = BTreeMap::new();
        let mut plans = Vec::new();
        for i in 0..cfg.nodes {
            let mut secret = [0u8; 32];
            secret.copy_from_slice(
                blake3::hash(format!("sim {} node {i}", cfg.seed).as_bytes()).as_bytes(),
            );
            // Node 0 (the owner, never revoked) always writes, so every scope
            // has a writer to bootstrap from; node 1 (the fast clock) too.
            let writer = i < 2 || !rng.random_bool(cfg.readonly);
            let mut node_scopes = vec![scopes[0].clone()];
            for s in &scopes[1..] {
                if i < 2 || rng.random_bool(0.5) {
                    node_scopes.push(s.clone());
                }
            }
            let id = NodeKey::from_secret_bytes(&secret).public_key();
            for s in &node_scopes {
                if writer {
                    grants.grant_write(id, s);
                } else {
                    grants.grant_read(id, s);
                }
            }
            let skew_ms = if i == 1 {
                // One node's clock is far ahead: accepted, and flagged.
                2 * MAX_DRIFT_MS as i64
            } else {
                rng.random_range(-3_000..=3_000)
            };
            let joined = i < 2 || !rng.random_bool(cfg.late);
            plans.push((secret, writer, node_scopes, skew_ms, joined));
        }
        for (i, (secret, writer, node_scopes, skew_ms, joined)) in plans.into_iter().enumerate() {
            let store = MemoryStore::new();
            let engine = Engine::new(
                NodeKey::from_secret_bytes(&secret),
                engine_config(&cfg),
                &store,
            )
            .map_err(|e| SimError::Config(e.to_string()))?;
            let key = NodeKey::from_secret_bytes(&secret);
            let id = key.public_key();
            index.insert(id, i);
            nodes.push(SimNode {
                secret,
                key,
                id,
                engine,
                store,
                writer,
                skew_ms,
                scopes: node_scopes,
                joined,
                access: grants.clone(),
                bootstrap_todo: BTreeSet::new(),
                rogue_seq: 0,
                rogue_prev: BTreeMap::new(),
            });
        }
        let links = topology(&nodes, &scopes, cfg.degree, &mut rng);
        let faults = Some(Faults {
            loss: cfg.loss,
            duplicate: cfg.duplicate,
            max_delay_ms: cfg.max_delay_ms,
        });
        let report = Report {
            seed: cfg.seed,
            ..Report::default()
        };
        let truth = Truth::new(grants);
        let mut world = World {
            net: Network::new(cfg.nodes),
            cfg,
            rng,
            nodes,
            index,
            scopes,
            links,
            now: 0,
            faults,
            acks: Acks::default(),
            truth,
            rejected: BTreeSet::new(),
            outages: Vec::new(),
            report,
            violations: Vec::new(),
        };
        for i in 0..world.nodes.len() {
            if world.nodes[i].joined {
                world.connect_joined(i, false);
            }
        }
        Ok(world)
    }

    /// A node's wall clock.
    pub(crate) fn wall(&self, i: usize) -> u64 {
        (EPOCH_MS + self.now).saturating_add_signed(self.nodes[i].skew_ms)
    }

    fn permissive(&self) -> bool {
        self.cfg.fault == Some(Fault::PermissiveAccess)
    }

    /// Calls node `i`'s engine with its store and access, then processes
    /// the output.
    pub(crate) fn call(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Engine, u64, &MemoryStore, &dyn Access) -> Output,
    ) {
        let now = self.wall(i);
        let permissive = self.permissive();
        let node = &mut self.nodes[i];
        let view = View {
            acl: &node.access,
            permissive,
        };
        let out = f(&mut node.engine, now, &node.store, &view);
        self.process(i, out);
    }

    /// Whether the link between `a` and `b` is up.
    pub(crate) fn link_up(&self, a: usize, b: usize) -> bool {
        !self.net.down.contains(&(a.min(b), a.max(b)))
    }

    /// Connects node `i` to its joined peers; with `bootstrap`, it will also
    /// bootstrap each of its scopes from a snapshot.
    pub(crate) fn connect_joined(&mut self, i: usize, bootstrap: bool) {
        let links: Vec<(usize, Vec<ScopeId>)> =
            self.links[i].iter().map(|(p, s)| (*p, s.clone())).collect();
        for (p, scopes) in &links {
            if !self.nodes[*p].joined || *p == i || !self.link_up(i, *p) {
                continue;
            }
            self.connect_pair(i, *p, scopes);
        }
        if bootstrap {
            let scopes = self.nodes[i].scopes.clone();
            self.nodes[i].bootstrap_todo.extend(scopes);
            self.start_bootstraps(i);
        }
    }

    pub(crate) fn connect_pair(&mut self, a: usize, b: usize, scopes: &[ScopeId]) {
        for (x, y) in [(a, b), (b, a)] {
            let peer = self.nodes[y].id;
            self.call(x, |e, now, store, access| {
                e.connect(now, peer, scopes, store, access)
            });
        }
    }

    /// The peers node `i` could bootstrap `scope` from now (joined, linked
    /// for it, link up), and those of them it believes may write the scope:
    /// only a writer's snapshot is trusted.
    fn bootstrap_sources(&self, i: usize, scope: &ScopeId) -> (Vec<usize>, Vec<usize>) {
        let candidates: Vec<usize> = self.links[i]
            .iter()
            .filter(|(p, s)| self.nodes[**p].joined && s.contains(scope) && self.link_up(i, **p))
            .map(|(p, _)| *p)
            .collect();
        let at = Hlc {
            ms: self.wall(i),
            logical: 0,
            node: 0,
        };
        let writers = candidates
            .iter()
            .copied()
            .filter(|&p| self.nodes[i].access.may_write(&self.nodes[p].id, scope, at))
            .collect();
        (candidates, writers)
    }

    /// A bootstrap node `i` still owes although a writer it could take the
    /// snapshot from is linked. A node with no writer among its peers
    /// cannot bootstrap (it must not trust a reader's unsigned snapshot)
    /// and catches up from the signed feeds its peers relay instead.
    fn owed_bootstrap(&self) -> Option<(usize, ScopeId)> {
        self.nodes.iter().enumerate().find_map(|(i, n)| {
            n.bootstrap_todo
                .iter()
                .find(|scope| !self.bootstrap_sources(i, scope).1.is_empty())
                .map(|scope| (i, scope.clone()))
        })
    }

    /// Starts the bootstraps node `i` still owes, each from a linked peer:
    /// during chaos sometimes a read-only one (whose forged chunk must be
    /// refused), otherwise one the node believes may write the scope.
    pub(crate) fn start_bootstraps(&mut self, i: usize) {
        if !self.nodes[i].joined {
            return;
        }
        let todo: Vec<ScopeId> = self.nodes[i].bootstrap_todo.iter().cloned().collect();
        for scope in todo {
            if self.nodes[i].engine.bootstrapping(&scope) {
                continue;
            }
            let (candidates, writers) = self.bootstrap_sources(i, &scope);
            let rogues: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&p| !self.nodes[p].writer)
                .collect();
            let source = if self.faults.is_some() && !rogues.is_empty() && self.rng.random_bool(0.3)
            {
                rogues[self.rng.random_range(0..rogues.len())]
            } else if let Some(&w) = writers.first() {
                w
            } else {
                continue;
            };
            let peer = self.nodes[source].id;
            self.call(i, |e, now, _, _| e.bootstrap(now, peer, scope));
        }
    }

    /// Applies an output of node `i`: effects, then messages, then events;
    /// then, if the effects brought revocations this node did not know,
    /// it learns them and rebuilds its documents.
    pub(crate) fn process(&mut self, i: usize, out: Output) {
        let learned = self.revocations_in(i, &out.effects);
        self.nodes[i].store.apply(out.effects);
        for m in out.messages {
            let Some(&to) = self.index.get(&m.to) else {
                continue;
            };
            let packet = Packet {
                from: i,
                to,
                bytes: m.bytes,
            };
            self.net
                .send(self.now, packet, self.faults.as_ref(), &mut self.rng);
        }
        for event in out.events {
            self.event(i, event);
        }
        for (scope, origin, at_ms) in learned {
            self.nodes[i].access.revoke_write(origin, &scope, at_ms);
            self.call(i, |e, now, store, access| {
                e.revalidate(now, &scope, Some(&origin), store, access)
            });
        }
    }

    fn event(&mut self, i: usize, event: Event) {
        match event {
            Event::Rejected { change, .. } => {
                self.report.rejected += 1;
                if let Some(hash) = change {
                    self.rejected.insert(hash);
                }
            }
            Event::ClockAhead { .. } => self.report.clock_warnings += 1,
            Event::BadMessage { peer, error } => {
                let honest = self.index.get(&peer).is_some_and(|&p| self.nodes[p].writer);
                if honest {
                    self.violations.push(format!(
                        "node {i} refused a message from writer {peer}: {error}"
                    ));
                } else {
                    self.report.bad_messages += 1;
                }
            }
            Event::StoreFailed { error } => self.violations.push(format!("node {i}: {error}")),
            Event::Bootstrapped { scope, .. } => {
                self.report.bootstraps += 1;
                self.nodes[i].bootstrap_todo.remove(&scope);
            }
            Event::Oversized { scope, uid, bytes } => self.violations.push(format!(
                "node {i}: {scope}/{uid} grew to {bytes} bytes and cannot be served"
            )),
            Event::Rebuilt { records, .. } => self.report.rebuilt += records as u64,
            Event::Denied { .. } | Event::RefusedBy { .. } | Event::Repaired { .. } => {}
        }
    }

    /// Revocation records among `effects` that node `i` does not know yet:
    /// (scope, revoked writer, the revocation's time).
    fn revocations_in(&self, i: usize, effects: &[Effect]) -> Vec<(ScopeId, PublicKey, u64)> {
        let mut out = Vec::new();
        for effect in effects {
            let Effect::PutDocument { scope, view, .. } = effect else {
                continue;
            };
            let (Some(FieldValue::Bytes(key)), Some(created)) =
                (view.fields.get(REVOKES), view.created)
            else {
                continue;
            };
            let Some(origin) = <&[u8; 32]>::try_from(key.as_slice())
                .ok()
                .and_then(|k| PublicKey::from_bytes(k).ok())
            else {
                continue;
            };
            let known = self.nodes[i].access.revoked_at(&origin, scope);
            if known.is_none_or(|k| k > created.ms) {
                out.push((scope.clone(), origin, created.ms));
            }
        }
        out
    }

    /// Advances time by one step: chaos, deliveries, ticks.
    pub(crate) fn step(&mut self, chaos: bool) {
        self.now += STEP_MS;
        if chaos {
            self.chaos_events();
        }
        self.end_outages(false);
        while let Some(packet) = self.net.next_due(self.now) {
            let to = packet.to;
            if !self.nodes[to].joined {
                continue;
            }
            if !self.nodes[to].writer
                && packet.bytes.get(1) == Some(&8)
                && !self.permissive()
                && let Ok(Message::SnapshotRequest { scope, .. }) = Message::decode(&packet.bytes)
            {
                // A read-only node answers snapshot requests with forgeries.
                self.forge_snapshot(to, packet.from, scope);
                continue;
            }
            let from = self.nodes[packet.from].id;
            self.call(to, |e, now, store, access| {
                e.handle(now, from, &packet.bytes, store, access)
            });
        }
        for i in 0..self.nodes.len() {
            let phase = (i as u64 * 7 * STEP_MS) % self.cfg.tick_ms;
            if self.nodes[i].joined && (self.now + phase).is_multiple_of(self.cfg.tick_ms) {
                self.call(i, |e, now, store, access| e.tick(now, store, access));
                if !self.nodes[i].bootstrap_todo.is_empty() {
                    self.start_bootstraps(i);
                }
            }
        }
    }

    /// Brings back links whose outage is over (all of them with `all`).
    pub(crate) fn end_outages(&mut self, all: bool) {
        let now = self.now;
        let (over, left): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outages)
            .into_iter()
            .partition(|(_, until)| all || *until <= now);
        self.outages = left;
        for ((a, b), _) in over {
            self.net.down.remove(&(a, b));
            if let Some(scopes) = self.links[a].get(&b).cloned()
                && self.nodes[a].joined
                && self.nodes[b].joined
            {
                self.connect_pair(a, b, &scopes);
            }
        }
    }

    /// Heals everything and runs anti-entropy rounds until all replicas are
    /// identical; returns the rounds it took. A node restarts and a record
    /// drifts in the first round, so convergence is also shown from faults
    /// that strike after the heal.
    pub(crate) fn heal_and_converge(&mut self) -> Result<u64, SimError> {
        self.net.heal();
        self.faults = None;
        self.end_outages(true);
        for i in 0..self.nodes.len() {
            if !self.nodes[i].joined {
                self.nodes[i].joined = true;
                self.connect_joined(i, true);
            }
        }
        if self.cfg.restarts > 0 {
            let i = self.rng.random_range(0..self.nodes.len());
            self.restart(i);
        }
        if self.cfg.drift_injections > 0 {
            self.inject_drift();
        }
        for round in 1..=self.cfg.max_rounds {
            for _ in 0..self.cfg.tick_ms / STEP_MS {
                self.step(false);
            }
            if self.diverged().is_none() && self.owed_bootstrap().is_none() {
                self.report.feed_catch_ups = self
                    .nodes
                    .iter()
                    .map(|n| n.bootstrap_todo.len() as u64)
                    .sum();
                return Ok(round);
            }
        }
        Err(SimError::Invariant(format!(
            "no convergence after {} rounds: {}",
            self.cfg.max_rounds,
            self.diverged().unwrap_or_else(|| self.stuck_bootstrap())
        )))
    }

    /// Subscribers of a scope.
    pub(crate) fn subscribers(&self, scope: &ScopeId) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].scopes.contains(scope))
            .collect()
    }

    /// Which node still owes a bootstrap, and what it can bootstrap from.
    fn stuck_bootstrap(&self) -> String {
        let Some((i, scope)) = self.owed_bootstrap() else {
            return "no bootstrap is stuck".into();
        };
        let (_, writers) = self.bootstrap_sources(i, &scope);
        format!(
            "node {i} never finished bootstrapping {scope} (under way: {}) although writers {writers:?} are linked",
            self.nodes[i].engine.bootstrapping(&scope),
        )
    }

    /// The first difference between replicas, if any.
    pub(crate) fn diverged(&self) -> Option<String> {
        for scope in &self.scopes {
            let subs = self.subscribers(scope);
            let Some(&first) = subs.first() else { continue };
            let reference: Vec<_> = self.nodes[first]
                .store
                .records(scope)
                .map(|(u, r)| (u, &r.heads, &r.view))
                .collect();
            for &i in &subs[1..] {
                let other: Vec<_> = self.nodes[i]
                    .store
                    .records(scope)
                    .map(|(u, r)| (u, &r.heads, &r.view))
                    .collect();
                if other != reference {
                    let first_difference =
                        match reference.iter().zip(other.iter()).find(|(x, y)| x != y) {
                            Some((x, y)) if x.0 == y.0 => format!("{} differs", x.0),
                            Some((x, y)) => format!("{} where it holds {}", x.0, y.0),
                            None => "the rest is missing".to_string(),
                        };
                    return Some(format!(
                        "{scope}: node {i} ({} records) differs from node {first} ({} records): first at {first_difference}",
                        other.len(),
                        reference.len()
                    ));
                }
            }
        }
        None
    }

    /// A digest of every node's stored state: one seed, one digest.
    pub(crate) fn state_digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for node in &self.nodes {
            for scope in &self.scopes {
                h.update(scope.as_str().as_bytes());
                for (uid, r) in node.store.records(scope) {
                    h.update(uid.as_str().as_bytes());
                    h.update(&r.doc);
                    for head in &r.heads {
                        h.update(head);
                    }
                }
            }
        }
        *h.finalize().as_bytes()
    }
}

/// The engine configuration of every simulated node.
pub(crate) fn engine_config(cfg: &SimConfig) -> Config {
    Config {
        max_drift_ms: MAX_DRIFT_MS,
        retry_ms: 4 * cfg.tick_ms,
        refusal_memo_ms: 10 * cfg.tick_ms,
        ..Config::default()
    }
}
