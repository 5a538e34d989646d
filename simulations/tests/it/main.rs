//! The CI sweep: a smaller version of
//! `cargo run --release -p labmesh-simulations -- --nodes 50 --seeds 1000`.

use labmesh_simulations::{SimConfig, Totals, run};

#[test]
fn eight_nodes_thirty_seeds_all_converge_with_every_invariant() {
    let mut totals = Totals::default();
    let mut failures = Vec::new();
    for seed in 0..30 {
        match run(&SimConfig::new(8, seed)) {
            Ok(report) => totals.add(&report),
            Err(e) => failures.push(format!(
                "seed {seed}: {e}\n  replay: cargo run --release -p labmesh-simulations -- --nodes 8 --seed {seed}"
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
    assert!(s.bootstraps > 0, "late joiners bootstrapped");
    assert!(s.clock_warnings > 0, "the fast clock was flagged");
    assert!(s.conflicts > 0, "concurrent writes left conflicts");
}

#[test]
fn one_seed_is_one_history() {
    let a = run(&SimConfig::new(6, 42)).unwrap();
    let b = run(&SimConfig::new(6, 42)).unwrap();
    assert_eq!(
        (a.messages, a.bytes, a.changes, a.rounds),
        (b.messages, b.bytes, b.changes, b.rounds)
    );
    let c = run(&SimConfig::new(6, 43)).unwrap();
    assert_ne!((a.messages, a.bytes), (c.messages, c.bytes));
}
