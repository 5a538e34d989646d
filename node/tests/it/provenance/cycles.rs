//! The cycle checks at the shape that used to cost a whole-history walk:
//! a long chain of runs and an artifact read by many runs. Every check
//! walks at most `WALK_BUDGET` runs from each end; what it cannot prove
//! within that is refused (and said so), and no cycle is ever recorded.

use labmesh::provenance::{TrackOptions, WALK_BUDGET};
use labmesh::{Artifact, SaveOptions, SaveStatus};
use rusqlite::params;

use crate::Lab;

/// Runs in the chain, and readers of the popular artifact: both well past
/// the budget, so neither end of a link between them can be walked whole.
const CHAIN: usize = 2 * WALK_BUDGET as usize + 100;
const READERS: usize = WALK_BUDGET as usize + 50;

struct Shape {
    /// uids of a0 … a{CHAIN}: a{i} is the output of run i, which read a{i-1}.
    chain: Vec<String>,
    /// A saved file read by READERS runs.
    popular: Artifact,
}

/// Builds the shape in one transaction of plain rows (the lineage is what
/// matters here; only `popular` has content).
fn shape(lab: &Lab) -> Shape {
    let path = lab.write("popular.csv", "gene,weight\nTP53,1\n");
    let popular = lab
        .instance
        .save(&path, &SaveOptions::default())
        .unwrap()
        .artifact;
    let conn = lab.instance.connection();
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let (user, node) = (
        one("SELECT id FROM user LIMIT 1"),
        one("SELECT id FROM node WHERE is_self = 1"),
    );
    let storage = one("SELECT id FROM storage LIMIT 1");
    let popular_id = one(&format!(
        "SELECT id FROM artifact WHERE uid = '{}'",
        popular.uid
    ));
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn.execute(
        "INSERT INTO transform (uid, key, kind, is_latest, created_at, created_by, origin_id)
         VALUES (?1, 'fixture/step.py', 'script', 1, 1, ?2, ?3)",
        params![labmesh::uid::new_family(), user, node],
    )
    .unwrap();
    let transform = conn.last_insert_rowid();
    let mut n = 0u64;
    let mut artifact = |key: String| -> (i64, String) {
        n += 1;
        let uid = labmesh::uid::new_family();
        conn.execute(
            "INSERT INTO artifact (uid, key, kind, suffix, hash, size, storage_id, is_latest,
                                   created_at, created_by, origin_id)
             VALUES (?1, ?2, 'file', '.csv', ?3, 10, ?4, 1, 1, ?5, ?6)",
            params![uid, key, format!("{n:064x}"), storage, user, node],
        )
        .unwrap();
        (conn.last_insert_rowid(), uid)
    };
    let run = |input: i64, output: i64| {
        conn.execute(
            "INSERT INTO run (uid, transform_id, status, started_at, finished_at, created_by, origin_id)
             VALUES (?1, ?2, 'completed', 1, 2, ?3, ?4)",
            params![labmesh::uid::random(16), transform, user, node],
        )
        .unwrap();
        let r = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO run_input (run_id, artifact_id, linked_at) VALUES (?1, ?2, 1)",
            params![r, input],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO run_output (run_id, artifact_id, created, linked_at) VALUES (?1, ?2, 1, 2)",
            params![r, output],
        )
        .unwrap();
    };
    let mut chain = Vec::new();
    let (mut previous, uid) = artifact("chain/a0.csv".into());
    chain.push(uid);
    for i in 1..=CHAIN {
        let (id, uid) = artifact(format!("chain/a{i}.csv"));
        run(previous, id);
        chain.push(uid);
        previous = id;
    }
    for j in 0..READERS {
        let (out, _) = artifact(format!("readers/out{j}.csv"));
        run(popular_id, out);
    }
    conn.execute_batch("COMMIT").unwrap();
    Shape { chain, popular }
}

fn track<'a>(lab: &'a Lab, key: &str) -> labmesh::provenance::RunContext<'a> {
    lab.instance
        .track(&TrackOptions {
            key: Some(key.into()),
            ..TrackOptions::default()
        })
        .unwrap()
}

/// Whether any run reaches itself, walking the whole graph (the test can
/// afford what a save cannot).
fn has_cycle(lab: &Lab) -> bool {
    lab.instance
        .connection()
        .query_row(
            "WITH RECURSIVE down(start, run_id) AS (
                 SELECT id, id FROM run
                 UNION
                 SELECT d.start, i.run_id FROM down d
                 JOIN run_output o ON o.run_id = d.run_id
                 JOIN run_input i ON i.artifact_id = o.artifact_id
             )
             SELECT EXISTS (SELECT 1 FROM down d
                            JOIN run_output o ON o.run_id = d.run_id
                            JOIN run_input i ON i.artifact_id = o.artifact_id
                            WHERE i.run_id = d.start)",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_deep_run_reproducing_a_popular_artifact_is_bounded_and_never_cyclic() {
    let lab = Lab::new();
    let s = shape(&lab);
    let tip = s.chain.last().unwrap();

    // A run with the whole chain behind it.
    let deep = track(&lab, "deep");
    deep.add_input(tip).unwrap();
    // Saving the popular artifact's content again: both ends are past the
    // budget, so the link is refused unproven (the save itself succeeds).
    let again = lab.write("again.csv", "gene,weight\nTP53,1\n");
    let saved = lab.instance.save(&again, &SaveOptions::default()).unwrap();
    assert_eq!(saved.status, SaveStatus::Existing);
    assert_eq!(saved.artifact.uid, s.popular.uid);
    let refused = format!("would walk more than {WALK_BUDGET} runs");
    assert!(
        saved.notices.iter().any(|n| n.contains(&refused)),
        "{:?}",
        saved.notices
    );
    // A few hops up the chain: found from the run's end, an exact refusal.
    let near = &s.chain[s.chain.len() - 5];
    let err = deep.add_output(near).unwrap_err().to_string();
    assert!(err.contains("cannot produce what it consumed"), "{err}");
    // Far up the chain (a real cycle, past both budgets): refused unproven.
    let err = deep.add_output(&s.chain[10]).unwrap_err().to_string();
    assert!(err.contains(&refused) && err.contains("hint:"), "{err}");
    let deep = deep.finish().unwrap();
    assert_eq!((deep.n_inputs, deep.n_outputs), (1, 0));
    assert!(
        deep.notes.iter().any(|n| n.contains(&refused)),
        "{:?}",
        deep.notes
    );
    assert!(!has_cycle(&lab));
}

#[test]
fn a_short_end_decides_exactly_however_long_the_other_is() {
    let lab = Lab::new();
    let s = shape(&lab);
    let raw = lab
        .instance
        .save(lab.write("raw.csv", "x\n1\n"), &SaveOptions::default())
        .unwrap()
        .artifact;

    // A fresh run (no history) re-produces the popular artifact: its own
    // end is short, so the link is proven safe and made.
    let fresh = track(&lab, "fresh");
    let saved = lab
        .instance
        .save(
            lab.write("copy.csv", "gene,weight\nTP53,1\n"),
            &SaveOptions::default(),
        )
        .unwrap();
    assert!(
        saved.notices.iter().all(|n| !n.contains("not recorded")),
        "{:?}",
        saved.notices
    );
    // An artifact with no producer: its end is empty, linked at once.
    lab.instance.cache(&raw.uid).unwrap();
    // The chain's tip: the run's end now reaches the popular artifact's
    // readers and the tip's end is the whole chain — refused unproven.
    let err = fresh
        .add_input(s.chain.last().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("more than {WALK_BUDGET} runs")),
        "{err}"
    );
    // The chain's first artifact has no producer: linked.
    fresh.add_input(&s.chain[0]).unwrap();
    let fresh = fresh.finish().unwrap();
    assert_eq!((fresh.n_inputs, fresh.n_outputs), (2, 1));
    let outputs = lab.instance.run_outputs(&fresh).unwrap();
    assert_eq!(outputs[0].artifact.uid, s.popular.uid);
    assert!(!outputs[0].created, "produced again");
    assert!(!has_cycle(&lab));
}
