//! The CI sweep: a smaller version of
//! `cargo run --release -p labmesh-simulations -- --nodes 50 --seeds 1000`,
//! and the simulator's determinism.

use labmesh_simulations::{SimConfig, Totals, run};

/// The CI configuration: the full workload, with a smaller large write
/// (still past the 64 KiB an entry used to be limited to), so the sweep
/// stays within a minute in a debug build.
fn ci(seed: u64) -> SimConfig {
    SimConfig {
        large_bytes: 70_000,
        ..SimConfig::new(8, seed)
    }
}

#[test]
fn eight_nodes_thirty_seeds_all_converge_with_every_invariant() {
    let mut totals = Totals::default();
    let mut failures = Vec::new();
    for seed in 0..30 {
        match run(&ci(seed)) {
            Ok(report) => totals.add(&report),
            Err(e) => failures.push(format!(
                "seed {seed}: {e}\n  replay: cargo run --release -p labmesh-simulations -- --nodes 8 --seed {seed} --large-bytes 70000"
            )),
        }
    }
    eprintln!("{totals}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The runs exercised what they claim to.
    let s = &totals.sum;
    assert!(
        s.rogue_attempts > 0 && s.rejected > 0,
        "forged writes were attempted and rejected"
    );
    assert!(
        s.forged_docs > 0 && s.garbage > 0 && s.bad_messages > 0,
        "forged documents and garbage were sent and refused"
    );
    assert!(s.bootstraps > 0, "late joiners bootstrapped");
    assert!(s.clock_warnings > 0, "the fast clock was flagged");
    assert!(s.conflicts > 0, "concurrent writes left conflicts");
    assert!(
        s.restarts > 0 && s.disconnects > 0,
        "nodes restarted and links went down"
    );
    assert!(
        s.revocations > 0 && s.rebuilt > 0,
        "revocations arrived late somewhere and documents were rebuilt"
    );
    assert!(s.large_writes > 0, "large records travelled");
}

#[test]
fn one_seed_is_one_history() {
    let a = run(&SimConfig::new(6, 42)).unwrap();
    let b = run(&SimConfig::new(6, 42)).unwrap();
    // Everything: every counter, messages and bytes per kind, and a digest
    // of every node's final store.
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    let c = run(&SimConfig::new(6, 43)).unwrap();
    assert_ne!(a.state_digest, c.state_digest);
}
