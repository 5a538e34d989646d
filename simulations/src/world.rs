//! The simulated mesh: nodes, links, time, and the main loop.

use std::collections::{BTreeMap, BTreeSet};

use labmesh_crypto::{NodeKey, PublicKey};
use labmesh_sync::memory::{MemoryStore, StaticAccess};
use labmesh_sync::{Config, Engine, Event, Output, ScopeId};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::config::SimConfig;
use crate::net::{Faults, Network, Packet};
use crate::workload::Acks;
use crate::{Report, SimError};

/// Simulated wall clocks start here (ms since the epoch, Nov 2025).
const EPOCH_MS: u64 = 1_764_000_000_000;
/// Granularity of simulated time.
pub(crate) const STEP_MS: u64 = 10;
/// The engine's clock-drift threshold in the simulation.
const MAX_DRIFT_MS: u64 = 60_000;

pub(crate) struct SimNode {
    pub(crate) key: NodeKey,
    pub(crate) id: PublicKey,
    pub(crate) engine: Engine,
    pub(crate) store: MemoryStore,
    pub(crate) writer: bool,
    pub(crate) skew_ms: i64,
    pub(crate) scopes: Vec<ScopeId>,
    pub(crate) joined: bool,
    /// Forged-feed state of a read-only node: its next fake seq, and its
    /// previous one per scope.
    pub(crate) rogue_seq: u64,
    pub(crate) rogue_prev: BTreeMap<ScopeId, u64>,
}

pub(crate) struct World {
    pub(crate) cfg: SimConfig,
    pub(crate) rng: Xoshiro256PlusPlus,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) index: BTreeMap<PublicKey, usize>,
    pub(crate) access: StaticAccess,
    pub(crate) scopes: Vec<ScopeId>,
    /// Links: node -> peer -> shared scopes.
    pub(crate) links: Vec<BTreeMap<usize, Vec<ScopeId>>>,
    pub(crate) net: Network,
    pub(crate) now: u64,
    pub(crate) faults: Option<Faults>,
    pub(crate) acks: Acks,
    pub(crate) report: Report,
    /// Violations seen while running (e.g. an honest change rejected).
    pub(crate) violations: Vec<String>,
}

impl World {
    pub(crate) fn new(cfg: SimConfig) -> Result<World, SimError> {
        if cfg.nodes < 2 {
            return Err(SimError::Config("at least 2 nodes".into()));
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
        let scopes = vec![
            ScopeId::new("instance:Lab0").map_err(|e| SimError::Config(e.to_string()))?,
            ScopeId::new("collection:C1").map_err(|e| SimError::Config(e.to_string()))?,
        ];
        let mut access = StaticAccess::new();
        let mut nodes = Vec::with_capacity(cfg.nodes);
        let mut index = BTreeMap::new();
        for i in 0..cfg.nodes {
            let mut secret = [0u8; 32];
            secret.copy_from_slice(
                blake3::hash(format!("sim {} node {i}", cfg.seed).as_bytes()).as_bytes(),
            );
            let key = NodeKey::from_secret_bytes(&secret);
            let id = key.public_key();
            // Node 0 always writes, so every scope has a writer to bootstrap from.
            let writer = i == 0 || !rng.random_bool(cfg.readonly);
            let mut node_scopes = vec![scopes[0].clone()];
            if i < 2 || rng.random_bool(0.5) {
                node_scopes.push(scopes[1].clone());
            }
            for s in &node_scopes {
                if writer {
                    access.grant_write(id, s);
                } else {
                    access.grant_read(id, s);
                }
            }
            let skew_ms = if i == 1 {
                // One node's clock is far ahead: accepted, and flagged.
                2 * MAX_DRIFT_MS as i64
            } else {
                rng.random_range(-3_000..=3_000)
            };
            let store = MemoryStore::new();
            let config = Config {
                max_drift_ms: MAX_DRIFT_MS,
                retry_ms: 4 * cfg.tick_ms,
                ..Config::default()
            };
            let engine = Engine::new(NodeKey::from_secret_bytes(&secret), config, &store)
                .map_err(|e| SimError::Config(e.to_string()))?;
            let joined = i < 2 || !rng.random_bool(cfg.late);
            index.insert(id, i);
            nodes.push(SimNode {
                key,
                id,
                engine,
                store,
                writer,
                skew_ms,
                scopes: node_scopes,
                joined,
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
        let mut world = World {
            net: Network::new(cfg.nodes),
            cfg,
            rng,
            nodes,
            index,
            access,
            scopes,
            links,
            now: 0,
            faults,
            acks: Acks::default(),
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

    /// Connects node `i` to its joined peers; with `bootstrap`, it also asks
    /// a writer peer for a snapshot of each scope.
    pub(crate) fn connect_joined(&mut self, i: usize, bootstrap: bool) {
        let links: Vec<(usize, Vec<ScopeId>)> =
            self.links[i].iter().map(|(p, s)| (*p, s.clone())).collect();
        for (p, scopes) in &links {
            if !self.nodes[*p].joined || *p == i {
                continue;
            }
            for (a, b) in [(i, *p), (*p, i)] {
                let peer = self.nodes[b].id;
                let now = self.wall(a);
                let node = &mut self.nodes[a];
                let out = node
                    .engine
                    .connect(now, peer, scopes, &node.store, &self.access);
                self.process(a, out);
            }
        }
        if bootstrap {
            for scope in self.nodes[i].scopes.clone() {
                let source = links.iter().find(|(p, s)| {
                    self.nodes[*p].joined && self.nodes[*p].writer && s.contains(&scope)
                });
                if let Some((p, _)) = source {
                    let peer = self.nodes[*p].id;
                    let now = self.wall(i);
                    let out = self.nodes[i].engine.bootstrap(now, peer, scope);
                    self.process(i, out);
                }
            }
        }
    }

    /// Applies an output of node `i`: effects, then messages, then events.
    pub(crate) fn process(&mut self, i: usize, out: Output) {
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
            match event {
                Event::Rejected { origin, reason, .. } => {
                    self.report.rejected += 1;
                    let honest = self
                        .index
                        .get(&origin)
                        .is_some_and(|&o| self.nodes[o].writer);
                    if honest {
                        self.violations.push(format!(
                            "node {i} rejected a change by writer {origin}: {reason:?}"
                        ));
                    }
                }
                Event::ClockAhead { .. } => self.report.clock_warnings += 1,
                Event::BadMessage { peer, error } => self
                    .violations
                    .push(format!("node {i} refused a message from {peer}: {error}")),
                Event::StoreFailed { error } => self.violations.push(format!("node {i}: {error}")),
                Event::Bootstrapped { .. } => self.report.bootstraps += 1,
                Event::Denied { .. } | Event::RefusedBy { .. } | Event::Repaired { .. } => {}
            }
        }
    }

    /// Advances time by one step: partitions, deliveries, ticks, writes.
    pub(crate) fn step(&mut self, chaos: bool) {
        self.now += STEP_MS;
        if chaos {
            self.chaos_events();
        }
        while let Some(packet) = self.net.next_due(self.now) {
            let to = packet.to;
            if !self.nodes[to].joined {
                continue;
            }
            let from = self.nodes[packet.from].id;
            let now = self.wall(to);
            let node = &mut self.nodes[to];
            let out = node
                .engine
                .handle(now, from, &packet.bytes, &node.store, &self.access);
            self.process(to, out);
        }
        for i in 0..self.nodes.len() {
            let phase = (i as u64 * 7 * STEP_MS) % self.cfg.tick_ms;
            if self.nodes[i].joined && (self.now + phase).is_multiple_of(self.cfg.tick_ms) {
                let now = self.wall(i);
                let node = &mut self.nodes[i];
                let out = node.engine.tick(now, &node.store, &self.access);
                self.process(i, out);
            }
        }
    }

    fn chaos_events(&mut self) {
        let steps = (self.cfg.chaos_ms / STEP_MS).max(1) as f64;
        // Partitions come and go (about five per run).
        if self.rng.random_bool((5.0 / steps).min(1.0)) {
            if self.net.groups.iter().all(|g| *g == 0) {
                let groups = self.rng.random_range(2..=3u8);
                for g in self.net.groups.iter_mut() {
                    *g = self.rng.random_range(0..groups);
                }
            } else {
                self.net.heal();
            }
        }
        // Late joiners arrive during the first half.
        if self.now < self.cfg.chaos_ms / 2
            && self.rng.random_bool((4.0 / steps).min(1.0))
            && let Some(i) = (0..self.nodes.len()).find(|&i| !self.nodes[i].joined)
        {
            self.nodes[i].joined = true;
            self.connect_joined(i, true);
        }
        if self
            .rng
            .random_bool((self.cfg.writes as f64 / steps).min(1.0))
        {
            self.random_write();
        }
        if self.now > self.cfg.chaos_ms / 2
            && self
                .rng
                .random_bool((self.cfg.drift_injections as f64 * 2.0 / steps).min(1.0))
        {
            self.inject_drift();
        }
    }

    /// Heals everything and runs anti-entropy rounds until all replicas are
    /// identical; returns the rounds it took.
    pub(crate) fn heal_and_converge(&mut self) -> Result<u64, SimError> {
        self.net.heal();
        self.faults = None;
        for i in 0..self.nodes.len() {
            if !self.nodes[i].joined {
                self.nodes[i].joined = true;
                self.connect_joined(i, true);
            }
        }
        for round in 1..=self.cfg.max_rounds {
            for _ in 0..self.cfg.tick_ms / STEP_MS {
                self.step(false);
            }
            if self.diverged().is_none() {
                return Ok(round);
            }
        }
        Err(SimError::Invariant(format!(
            "no convergence after {} rounds: {}",
            self.cfg.max_rounds,
            self.diverged().unwrap_or_default()
        )))
    }

    /// Subscribers of a scope.
    pub(crate) fn subscribers(&self, scope: &ScopeId) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].scopes.contains(scope))
            .collect()
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
                    return Some(format!(
                        "{scope}: node {i} ({} records) differs from node {first} ({} records)",
                        other.len(),
                        reference.len()
                    ));
                }
            }
        }
        None
    }
}

/// A ring per scope over its subscribers, plus `degree` random links per node.
fn topology(
    nodes: &[SimNode],
    scopes: &[ScopeId],
    degree: usize,
    rng: &mut Xoshiro256PlusPlus,
) -> Vec<BTreeMap<usize, Vec<ScopeId>>> {
    let n = nodes.len();
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    for scope in scopes {
        let subs: Vec<usize> = (0..n)
            .filter(|&i| nodes[i].scopes.contains(scope))
            .collect();
        for w in 0..subs.len() {
            let (a, b) = (subs[w], subs[(w + 1) % subs.len()]);
            if a != b {
                edges.insert((a.min(b), a.max(b)));
            }
        }
    }
    for a in 0..n {
        for _ in 0..degree {
            let b = rng.random_range(0..n);
            if a != b {
                edges.insert((a.min(b), a.max(b)));
            }
        }
    }
    let mut links = vec![BTreeMap::new(); n];
    for (a, b) in edges {
        let shared: Vec<ScopeId> = nodes[a]
            .scopes
            .iter()
            .filter(|s| nodes[b].scopes.contains(s))
            .cloned()
            .collect();
        if shared.is_empty() {
            continue;
        }
        links[a].insert(b, shared.clone());
        links[b].insert(a, shared);
    }
    links
}
