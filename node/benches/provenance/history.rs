//! Links at the shape that used to cost a whole-history walk: a chain of
//! 200,000 runs (each reading the previous run's output) and an artifact
//! read by 50,000 runs. A run at the end of the chain that saves the
//! popular artifact's content again used to walk the chain (~140 ms,
//! holding the write lock); now each check stops after `WALK_BUDGET` runs
//! from each end.

use std::path::Path;
use std::time::Duration;

use labmesh::provenance::{TrackOptions, WALK_BUDGET};
use labmesh::{InitOptions, Instance, SaveOptions};
use rusqlite::params;

use crate::{report, time};

/// Writes the chain and the readers as plain rows; returns the chain's
/// artifact uids (a0 … aN). `popular` must be saved already.
fn build(root: &Path, chain: usize, readers: usize, popular: &str) -> Vec<String> {
    let mut conn = rusqlite::Connection::open(root.join(".labmesh/instance.db")).unwrap();
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")
        .unwrap();
    let tx = conn.transaction().unwrap();
    let popular_id: i64 = tx
        .query_row("SELECT id FROM artifact WHERE uid = ?1", [popular], |r| {
            r.get(0)
        })
        .unwrap();
    tx.execute(
        "INSERT INTO transform (uid, key, kind, is_latest, created_at, created_by, origin_id)
         VALUES (?1, 'history/step.py', 'script', 1, 1, 1, 1)",
        [labmesh::uid::new_family()],
    )
    .unwrap();
    let transform = tx.last_insert_rowid();
    let mut uids = Vec::with_capacity(chain + 1);
    {
        let mut artifact = tx
            .prepare(
                "INSERT INTO artifact (uid, key, kind, suffix, hash, size, storage_id, is_latest,
                                       created_at, created_by, origin_id)
                 VALUES (?1, ?2, 'file', '.csv', printf('%064x', ?3), 10, 1, 1, ?3, 1, 1)",
            )
            .unwrap();
        let mut run = tx
            .prepare(
                "INSERT INTO run (uid, transform_id, status, started_at, finished_at, created_by,
                                  origin_id)
                 VALUES (?1, ?2, 'completed', ?3, ?3 + 1, 1, 1)",
            )
            .unwrap();
        let mut input = tx
            .prepare("INSERT INTO run_input (run_id, artifact_id, linked_at) VALUES (?1, ?2, ?3)")
            .unwrap();
        let mut output = tx
            .prepare(
                "INSERT INTO run_output (run_id, artifact_id, created, linked_at)
                 VALUES (?1, ?2, 1, ?3)",
            )
            .unwrap();
        let mut n = 0i64;
        let mut add = |key: String| -> (i64, String) {
            n += 1;
            let uid = labmesh::uid::new_family();
            artifact.execute(params![uid, key, n]).unwrap();
            (tx.last_insert_rowid(), uid)
        };
        let mut step = |from: i64, to: i64, at: i64| {
            run.execute(params![labmesh::uid::random(16), transform, at])
                .unwrap();
            let r = tx.last_insert_rowid();
            input.execute(params![r, from, at]).unwrap();
            output.execute(params![r, to, at]).unwrap();
        };
        let (mut previous, uid) = add("chain/a0.csv".into());
        uids.push(uid);
        for i in 1..=chain {
            let (id, uid) = add(format!("chain/a{i}.csv"));
            step(previous, id, i as i64);
            uids.push(uid);
            previous = id;
        }
        for j in 0..readers {
            let (out, _) = add(format!("readers/out{j}.csv"));
            step(popular_id, out, j as i64);
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    uids
}

/// Saves of content that is already saved, without a run and inside one:
/// the difference is the link (its cycle check included).
fn resave(lab: &Instance, path: &Path, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| time(|| lab.save(path, &SaveOptions::default()).unwrap()))
        .collect()
}

fn track<'a>(lab: &'a Instance, key: &str) -> labmesh::provenance::RunContext<'a> {
    lab.track(&TrackOptions {
        key: Some(key.into()),
        ..TrackOptions::default()
    })
    .unwrap()
}

pub fn links_at_the_bad_shape(work: &Path, quick: bool) {
    let (chain, readers) = if quick {
        (20_000, 5_000)
    } else {
        (200_000, 50_000)
    };
    let root = work.join("history");
    let lab = Instance::init(&root, &InitOptions::default()).unwrap();
    let popular_path = root.join("popular.csv");
    std::fs::write(&popular_path, "gene,weight\nTP53,1\n").unwrap();
    let popular = lab
        .save(&popular_path, &SaveOptions::default())
        .unwrap()
        .artifact;
    let started = std::time::Instant::now();
    let uids = build(&root, chain, readers, &popular.uid);
    let lab = Instance::open(&root).unwrap();
    println!(
        "history: a chain of {chain} runs, an artifact read by {readers} runs (built in {:.1} s); \
         each cycle check walks at most {WALK_BUDGET} runs from each end",
        started.elapsed().as_secs_f64()
    );
    let n = if quick { 100 } else { 300 };

    let plain = report(
        "save of saved content, no run",
        resave(&lab, &popular_path, n),
    );

    // A run at the end of the chain re-produces the popular artifact: both
    // ends are past the budget, the link is refused unproven.
    let deep = track(&lab, "history/deep");
    deep.add_input(uids.last().unwrap()).unwrap();
    let refused = report(
        "  same, in a run at the end of the chain",
        resave(&lab, &popular_path, n),
    );
    println!(
        "{:<46} {:.1} µs (target <= 200 µs; was ~140 ms)",
        "=> output check, both ends long (refused)",
        (refused.as_secs_f64() - plain.as_secs_f64()) * 1e6
    );
    report(
        "  add_output of a chain artifact (cycle found)",
        uids[uids.len() - 50..]
            .iter()
            .map(|u| time(|| deep.add_output(u).is_err()))
            .collect(),
    );
    deep.finish().unwrap();

    // A run with no history re-produces it: its own end is short, linked.
    let fresh = track(&lab, "history/fresh");
    let linked = report(
        "  same, in a run with no history (linked)",
        resave(&lab, &popular_path, n),
    );
    println!(
        "{:<46} {:.1} µs (target <= 200 µs)",
        "=> output check, one end long",
        (linked.as_secs_f64() - plain.as_secs_f64()) * 1e6
    );
    // Inputs of that run: its end now reaches the popular artifact's readers.
    report(
        "  add_input, artifact without history (linked)",
        uids[..1]
            .iter()
            .cycle()
            .take(n)
            .map(|u| time(|| fresh.add_input(u).unwrap()))
            .collect(),
    );
    report(
        "  add_input, artifact deep in the chain (refused)",
        uids[uids.len() - n..]
            .iter()
            .map(|u| time(|| fresh.add_input(u).is_err()))
            .collect(),
    );
    fresh.finish().unwrap();
    println!();
}
