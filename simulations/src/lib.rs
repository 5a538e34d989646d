//! Deterministic simulation of the labmesh sync core.
//!
//! N nodes, each a real [`labmesh_sync::Engine`] over a
//! [`labmesh_sync::memory::MemoryStore`], exchange real encoded messages
//! over a simulated network that loses, duplicates, delays and reorders
//! them and splits into partitions; each node's clock is skewed (one is
//! two minutes ahead, beyond the engine's drift threshold). During the chaos
//! phase, random nodes create records, write fields, splice text, delete
//! fields, tombstone and restore records and resolve conflicts; read-only
//! nodes try to write too (their engine refuses, so they forge signed
//! batches by hand and send them); late joiners bootstrap from snapshots;
//! some records are rolled back behind the engine's back, as a restored
//! backup would, for drift repair to fix. Then the network heals and every
//! node runs anti-entropy rounds until all replicas are identical, and the
//! invariants in [`invariants`](crate) are checked.
//!
//! Everything random comes from the seed (xoshiro256++, a fixed algorithm),
//! and nothing reads the wall clock, so one seed is one history:
//! `cargo run --release -p labmesh-simulations -- --nodes 8 --seed 17`
//! replays run 17 exactly.

mod config;
mod invariants;
mod net;
mod report;
mod workload;
mod world;

pub use config::SimConfig;
pub use report::{Report, Totals};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot run.
    #[error("bad configuration: {0}")]
    Config(String),
    /// An invariant did not hold.
    #[error("invariant violated: {0}")]
    Invariant(String),
}

/// Runs one simulation to convergence and checks every invariant.
pub fn run(cfg: &SimConfig) -> Result<Report, SimError> {
    let mut world = world::World::new(cfg.clone())?;
    let steps = cfg.chaos_ms / world::STEP_MS;
    for _ in 0..steps {
        world.step(true);
    }
    let rounds = world.heal_and_converge()?;
    world.check_invariants().map_err(SimError::Invariant)?;
    let mut report = world.report.clone();
    report.rounds = rounds;
    report.messages = world.net.messages;
    report.bytes = world.net.bytes;
    report.dropped = world.net.dropped;
    report.by_kind = world.net.by_kind.clone();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checker is not vacuous: a replica changed behind the mesh's back
    /// after convergence is reported.
    #[test]
    fn a_planted_divergence_is_caught() {
        let cfg = SimConfig::new(4, 7);
        let mut world = world::World::new(cfg.clone()).unwrap();
        for _ in 0..cfg.chaos_ms / world::STEP_MS {
            world.step(true);
        }
        world.heal_and_converge().unwrap();
        world.check_invariants().unwrap();
        let scope = world.scopes[0].clone();
        let uid = world.nodes[0]
            .store
            .records(&scope)
            .next()
            .map(|(u, _)| u.clone())
            .unwrap();
        world.nodes[0]
            .store
            .overwrite_document(&scope, &uid, labmesh_sync::RecordDoc::new());
        let err = world.check_invariants().unwrap_err();
        assert!(err.contains("replicas differ"), "{err}");
    }
}
