//! The faults of the chaos phase: partitions, late joiners, restarts, links
//! going down, revocations, drift behind the engine's back — each spread
//! over the phase with the frequency the configuration asks for.

use rand::RngExt;

use labmesh_sync::Engine;

use crate::world::{STEP_MS, World, engine_config};

impl World {
    /// Probability per step of something that should happen `count` times
    /// over `fraction` of the chaos phase.
    fn per_step(&self, count: f64, fraction: f64) -> f64 {
        let steps = (self.cfg.chaos_ms / STEP_MS).max(1) as f64 * fraction;
        (count / steps.max(1.0)).min(1.0)
    }

    pub(crate) fn chaos_events(&mut self) {
        let half = self.cfg.chaos_ms / 2;
        // Partitions come and go (about five per run).
        if self.rng.random_bool(self.per_step(5.0, 1.0)) {
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
        if self.now < half
            && self.rng.random_bool(self.per_step(4.0, 0.5))
            && let Some(i) = (0..self.nodes.len()).find(|&i| !self.nodes[i].joined)
        {
            self.nodes[i].joined = true;
            self.connect_joined(i, true);
        }
        if self
            .rng
            .random_bool(self.per_step(self.cfg.writes as f64, 1.0))
        {
            self.random_write();
        }
        if self
            .rng
            .random_bool(self.per_step(self.cfg.large_writes as f64, 1.0))
        {
            self.large_write();
        }
        if self.now > half
            && self
                .rng
                .random_bool(self.per_step(self.cfg.drift_injections as f64, 0.5))
        {
            self.inject_drift();
        }
        // Revocations in the middle of the phase, so changes are written
        // before and after them.
        let window = self.cfg.chaos_ms / 5..self.cfg.chaos_ms * 7 / 10;
        if window.contains(&self.now)
            && self
                .rng
                .random_bool(self.per_step(self.cfg.revocations as f64, 0.5))
        {
            self.revoke_someone();
        }
        if self
            .rng
            .random_bool(self.per_step(self.cfg.restarts as f64, 1.0))
        {
            let i = self.rng.random_range(0..self.nodes.len());
            self.restart(i);
        }
        if self
            .rng
            .random_bool(self.per_step(self.cfg.disconnects as f64, 1.0))
        {
            self.take_a_link_down();
        }
    }

    /// Node `i` restarts: its engine's soft state is lost and it is rebuilt
    /// from the store; its links drop and come back.
    pub(crate) fn restart(&mut self, i: usize) {
        if !self.nodes[i].joined {
            return;
        }
        self.report.restarts += 1;
        let key = labmesh_crypto::NodeKey::from_secret_bytes(&self.nodes[i].secret);
        let config = engine_config(&self.cfg);
        match Engine::new(key, config, &self.nodes[i].store) {
            Ok(engine) => self.nodes[i].engine = engine,
            Err(e) => {
                self.violations
                    .push(format!("node {i} cannot restart from its store: {e}"));
                return;
            }
        }
        let me = self.nodes[i].id;
        let peers: Vec<usize> = self.links[i].keys().copied().collect();
        for p in peers {
            self.nodes[p].engine.disconnect(&me);
        }
        self.connect_joined(i, false);
        self.start_bootstraps(i);
    }

    /// A random link goes down for half a second to three seconds.
    fn take_a_link_down(&mut self) {
        let a = self.rng.random_range(0..self.nodes.len());
        let peers: Vec<usize> = self.links[a].keys().copied().collect();
        if peers.is_empty() || !self.nodes[a].joined {
            return;
        }
        let b = peers[self.rng.random_range(0..peers.len())];
        if !self.nodes[b].joined || !self.link_up(a, b) {
            return;
        }
        self.report.disconnects += 1;
        let link = (a.min(b), a.max(b));
        self.net.down.insert(link);
        let until = self.now + self.rng.random_range(500..=3_000);
        self.outages.push((link, until));
        let (ia, ib) = (self.nodes[a].id, self.nodes[b].id);
        self.nodes[a].engine.disconnect(&ib);
        self.nodes[b].engine.disconnect(&ia);
    }
}
