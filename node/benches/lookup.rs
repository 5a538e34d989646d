//! Lookups in an instance of 1,000,000 artifacts.
//!
//! Targets (issue 2): `describe` by key or uid <= 1 ms inside the process;
//! `ls --limit 50` <= 5 ms.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use labmesh::{InitOptions, Instance, ListOptions};
use rand::RngExt;

const N: usize = 1_000_000;

/// Fills the registry with `N` artifact rows (content is not needed to look
/// rows up), in families of up to 3 versions, like a real instance.
fn populate(lab: &Instance, root: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let mut conn = rusqlite::Connection::open(root.join(".labmesh/instance.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    let tx = conn.transaction().unwrap();
    let mut keys = Vec::new();
    let mut uids = Vec::new();
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO artifact (uid, key, kind, suffix, hash, size, storage_id, is_latest,
                                       created_at, created_by, origin_id)
                 VALUES (?1, ?2, 'file', '.csv', ?3, ?4, 1, ?5, ?6, 1, 1)",
            )
            .unwrap();
        let mut rng = rand::rng();
        let mut i = 0;
        while i < N {
            let stem = labmesh::uid::random(16);
            let key = format!("raw/batch{:04}/sample{i:07}.csv", i / 1000);
            let versions = 1 + (i % 3).min(N - i - 1);
            for v in 0..versions {
                let uid = format!("{stem}{}", labmesh::uid::random(4));
                let hash: String = (0..64)
                    .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap())
                    .collect();
                stmt.execute(rusqlite::params![
                    uid,
                    key,
                    hash,
                    rng.random_range(100..1_000_000i64),
                    (v + 1 == versions) as i64,
                    1_700_000_000_000i64 + i as i64 * 10 + v as i64,
                ])
                .unwrap();
                if i % 997 == 0 {
                    uids.push(uid);
                }
                i += 1;
            }
            if i % 991 < 3 {
                keys.push(key);
            }
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let _ = lab;
    (keys, uids)
}

fn bench(c: &mut Criterion) {
    let work =
        tempfile::tempdir_in(std::env::var("LABMESH_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    let root = work.path().join("lab");
    let lab = Instance::init(&root, &InitOptions::default()).unwrap();
    let started = std::time::Instant::now();
    let (keys, uids) = populate(&lab, &root);
    eprintln!(
        "populated {N} artifacts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let lab = Instance::open(&root).unwrap();
    assert_eq!(lab.info().unwrap().versions, N as u64);

    let mut group = c.benchmark_group("lookup_1m");
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0;
    group.bench_function("get_by_key", |b| {
        b.iter(|| {
            i += 1;
            lab.get(&keys[i % keys.len()]).unwrap()
        })
    });
    group.bench_function("get_by_uid", |b| {
        b.iter(|| {
            i += 1;
            lab.get(&uids[i % uids.len()]).unwrap()
        })
    });
    group.bench_function("get_by_uid_prefix_8", |b| {
        b.iter(|| {
            i += 1;
            lab.get(&uids[i % uids.len()][..8]).unwrap()
        })
    });
    // What `describe` does: the record, its family and its location.
    group.bench_function("describe_by_key", |b| {
        b.iter(|| {
            i += 1;
            let a = lab.get(&keys[i % keys.len()]).unwrap();
            let versions = lab.versions(&a.uid).unwrap();
            (lab.location(&a).unwrap(), versions.len())
        })
    });
    group.bench_function("ls_limit_50", |b| {
        let opts = ListOptions {
            limit: 50,
            ..Default::default()
        };
        b.iter(|| {
            let rows = lab.list(&opts).unwrap();
            assert_eq!(rows.len(), 50);
            rows
        })
    });
    group.bench_function("ls_prefix_limit_50", |b| {
        let opts = ListOptions {
            limit: 50,
            key_prefix: Some("raw/batch0500/".into()),
            ..Default::default()
        };
        b.iter(|| lab.list(&opts).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
