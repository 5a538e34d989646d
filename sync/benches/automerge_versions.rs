//! The automerge version decision, measured: the same per-record workload on
//! automerge 0.6.1 (what `labmesh-sync` uses) and 0.12.0 (the current
//! release), in one run so the ratio is meaningful on a noisy machine.
//!
//! The workload is ours: one small document per record (8 scalar fields and
//! a short `description` as Text), a 32-byte actor (the origin's public key),
//! the change timestamped with the write's clock.
//!
//! ```text
//! cargo bench -p labmesh-sync --features compare-automerge --bench automerge_versions
//! ```

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Records per measured iteration.
const N: usize = 500;

macro_rules! workload {
    ($modname:ident, $am:ident) => {
        mod $modname {
            use $am::transaction::{CommitOptions, Transactable};
            use $am::{ActorId, Automerge, Change, ObjType, ROOT, ReadDoc};

            pub fn actor(i: u8) -> ActorId {
                ActorId::from([i; 32].as_slice())
            }

            /// A new record document: its saved bytes and the change that made it.
            pub fn create(i: usize, actor: &ActorId) -> (Vec<u8>, Vec<u8>) {
                let mut doc = Automerge::new().with_actor(actor.clone());
                let mut tx = doc.transaction();
                tx.put(ROOT, "key", format!("raw/plate{i}.parquet"))
                    .unwrap();
                tx.put(ROOT, "suffix", ".parquet").unwrap();
                tx.put(ROOT, "size", i as i64 * 1000).unwrap();
                tx.put(ROOT, "hash", "46a84d82c441818aa9d3b1fb0c6a1e7e")
                    .unwrap();
                tx.put(ROOT, "kind", "dataset").unwrap();
                tx.put(ROOT, "created_at", 1_764_009_767_123_i64 + i as i64)
                    .unwrap();
                tx.put(ROOT, "is_latest", true).unwrap();
                let text = tx.put_object(ROOT, "description", ObjType::Text).unwrap();
                tx.splice_text(&text, 0, 0, "plate 1, first run").unwrap();
                tx.commit_with(CommitOptions::default().with_time(1_764_009_767_123));
                let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
                (doc.save(), change)
            }

            /// Load a saved record, set one field, commit: the change and the new save.
            pub fn update(saved: &[u8], actor: &ActorId) -> (Vec<u8>, Vec<u8>) {
                let mut doc = Automerge::load(saved).unwrap().with_actor(actor.clone());
                let mut tx = doc.transaction();
                tx.put(ROOT, "size", 7_i64).unwrap();
                tx.commit_with(CommitOptions::default().with_time(1_764_009_767_999));
                let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
                (doc.save(), change)
            }

            /// Load, apply a remote change, read the row, save.
            pub fn apply_remote(saved: &[u8], change: &[u8]) -> usize {
                let mut doc = Automerge::load(saved).unwrap();
                let change = Change::from_bytes(change.to_vec()).unwrap();
                doc.apply_changes([change]).unwrap();
                let fields = read(&doc);
                doc.save().len() + fields
            }

            /// Load a snapshot document and read its fields (bootstrap).
            pub fn load_read(saved: &[u8]) -> usize {
                let doc = Automerge::load(saved).unwrap();
                read(&doc)
            }

            fn read(doc: &Automerge) -> usize {
                let mut n = 0;
                for key in doc.keys(ROOT) {
                    if let Some((value, id)) = doc.get(ROOT, &key).unwrap() {
                        n += match value {
                            $am::Value::Object(_) => doc.text(&id).unwrap().len(),
                            $am::Value::Scalar(_) => 1,
                        };
                    }
                }
                n
            }
        }
    };
}

workload!(v06, automerge);
workload!(v12, automerge_next);

fn versions(c: &mut Criterion) {
    let mut group = c.benchmark_group("automerge_per_record");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);

    macro_rules! run {
        ($label:literal, $m:ident) => {{
            let actor = $m::actor(7);
            let other = $m::actor(9);
            let created: Vec<(Vec<u8>, Vec<u8>)> = (0..N).map(|i| $m::create(i, &actor)).collect();
            let remote: Vec<Vec<u8>> = created
                .iter()
                .map(|(s, _)| $m::update(s, &other).1)
                .collect();
            group.bench_function(concat!($label, "/create+save"), |b| {
                b.iter(|| (0..N).map(|i| $m::create(i, &actor).0.len()).sum::<usize>())
            });
            group.bench_function(concat!($label, "/load+update+save"), |b| {
                b.iter(|| {
                    created
                        .iter()
                        .map(|(s, _)| $m::update(s, &actor).0.len())
                        .sum::<usize>()
                })
            });
            group.bench_function(concat!($label, "/load+apply_remote+read+save"), |b| {
                b.iter_batched(
                    || (),
                    |()| {
                        created
                            .iter()
                            .zip(&remote)
                            .map(|((s, _), c)| $m::apply_remote(s, c))
                            .sum::<usize>()
                    },
                    BatchSize::PerIteration,
                )
            });
            group.bench_function(concat!($label, "/load+read"), |b| {
                b.iter(|| created.iter().map(|(s, _)| $m::load_read(s)).sum::<usize>())
            });
            let saved: usize = created.iter().map(|(s, _)| s.len()).sum::<usize>() / N;
            let change: usize = remote.iter().map(Vec::len).sum::<usize>() / N;
            eprintln!(
                "{}: saved {saved} B/record, update change {change} B",
                $label
            );
        }};
    }
    run!("0.6.1", v06);
    run!("0.12.0", v12);
    group.finish();
}

criterion_group!(benches, versions);
criterion_main!(benches);
