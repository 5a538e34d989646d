//! Deterministic simulation of the labmesh sync core.
//!
//! N nodes, each a real [`labmesh_sync::Engine`] over a
//! [`labmesh_sync::memory::MemoryStore`], exchange real encoded messages
//! over a simulated network that loses, duplicates, delays and reorders
//! them, splits into partitions and takes links down; each node's clock is
//! skewed (one is two minutes ahead, beyond the engine's drift threshold).
//! During the chaos phase, random nodes create records, write fields,
//! splice and update text (some of it long), delete fields, tombstone and
//! restore records and resolve conflicts; nodes restart (their engine
//! rebuilt from the store); the owner revokes a writer, and the revocation
//! travels as a record, so nodes learn it at different times and rebuild
//! what they applied too early; read-only nodes try to write too (their
//! engine refuses, so they forge signed batches, documents and snapshot
//! chunks in a writer's name, and send garbage); late joiners bootstrap
//! from snapshots (sometimes asking a forger); some records are rolled back
//! behind the engine's back, as a restored backup would, for drift repair
//! to fix. Then the network heals (a node restarts and a record drifts
//! once more) and every node runs anti-entropy rounds until all replicas
//! are identical, and the invariants in [`invariants`](crate) are checked
//! against the ground truth of what honest writers really wrote.
//!
//! Everything random comes from the seed (xoshiro256++, a fixed algorithm),
//! and nothing reads the wall clock, so one seed is one history:
//! `cargo run --release -p labmesh-simulations -- --nodes 8 --seed 17`
//! replays run 17 exactly.

mod chaos;
mod config;
mod invariants;
mod net;
mod report;
mod rogue;
mod selftest;
mod topology;
mod truth;
mod workload;
mod world;

pub use config::{Fault, SimConfig};
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
    /// A self-test fault found nothing to break in this run.
    #[error("the planted fault found nothing to break in this run")]
    NothingToBreak,
}

/// Runs one simulation to convergence and checks every invariant.
pub fn run(cfg: &SimConfig) -> Result<Report, SimError> {
    let mut world = world::World::new(cfg.clone())?;
    let steps = cfg.chaos_ms / world::STEP_MS;
    for _ in 0..steps {
        world.step(true);
    }
    let rounds = world.heal_and_converge()?;
    if let Some(fault) = cfg.fault
        && !world.plant(fault)
    {
        return Err(SimError::NothingToBreak);
    }
    world.check_invariants().map_err(SimError::Invariant)?;
    let mut report = world.report.clone();
    report.rounds = rounds;
    report.messages = world.net.messages;
    report.bytes = world.net.bytes;
    report.dropped = world.net.dropped;
    report.by_kind = world.net.by_kind.clone();
    report.state_digest = world.state_digest();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken(fault: Option<Fault>) -> String {
        let mut cfg = SimConfig::new(5, 7);
        cfg.fault = fault;
        match run(&cfg) {
            Err(SimError::Invariant(e)) => e,
            other => panic!("{fault:?}: the invariant did not fire: {other:?}"),
        }
    }

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

    #[test]
    fn the_same_run_without_a_fault_passes() {
        run(&SimConfig::new(5, 7)).unwrap();
    }

    #[test]
    fn different_conflicts_on_one_replica_are_caught() {
        let e = broken(Some(Fault::CorruptConflicts));
        assert!(e.contains("shows other conflicts"), "{e}");
    }

    #[test]
    fn a_lost_acknowledged_change_is_caught() {
        let e = broken(Some(Fault::DropAckedChange));
        assert!(e.contains("an acknowledged change is missing"), "{e}");
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let e = broken(Some(Fault::PhantomWrite));
        assert!(e.contains("was lost"), "{e}");
    }

    #[test]
    fn changes_applied_by_a_mesh_that_lets_anyone_write_are_caught() {
        let e = broken(Some(Fault::PermissiveAccess));
        assert!(e.contains("no honest writer made"), "{e}");
    }

    #[test]
    fn a_change_forged_under_a_writers_actor_id_is_caught() {
        let e = broken(Some(Fault::ImpersonatedChange));
        assert!(e.contains("no honest writer made"), "{e}");
    }
}
