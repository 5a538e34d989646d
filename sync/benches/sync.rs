//! The sync core's performance targets (issue 6), each measured here:
//!
//! - `local_write/create` and `/update`: shared-record writes in batches —
//!   document create/update, feed append, batch signing (target ≥ 10,000/s);
//! - `apply_remote/update`: incremental remote changes, verified and applied
//!   (target ≥ 10,000/s);
//! - `snapshot/apply_chunk`: bootstrap documents (target ≥ 50,000/s; the
//!   1,000,000-record streaming run with its memory is `--bench bootstrap_1m`).
//!
//! Wire overhead and steady-state anti-entropy bytes are asserted by the
//! integration tests and printed by `bootstrap_1m`.
//!
//! ```text
//! cargo bench -p labmesh-sync --bench sync
//! ```

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use labmesh_crypto::NodeKey;
use labmesh_sync::memory::{MemoryStore, StaticAccess};
use labmesh_sync::wire::Message;
use labmesh_sync::{Config, Edit, Effect, Engine, FieldValue, LocalWrite, RecordUid, ScopeId};

const N: usize = 1000;
const T0: u64 = 1_764_000_000_000;

fn scope() -> ScopeId {
    ScopeId::new("collection:C1").unwrap_or_else(|_| unreachable!())
}

fn uid(n: usize) -> RecordUid {
    RecordUid::new(&format!("Fq8cM2uX0aB1{n:08}")).unwrap_or_else(|_| unreachable!())
}

fn fields(n: usize) -> Vec<Edit> {
    vec![
        Edit::set("key", FieldValue::Str(format!("raw/plate{n}.parquet"))),
        Edit::set("suffix", FieldValue::Str(".parquet".into())),
        Edit::set("size", FieldValue::Int(n as i64 * 1000)),
        Edit::set(
            "hash",
            FieldValue::Str("46a84d82c441818aa9d3b1fb0c6a1e7e".into()),
        ),
        Edit::set("kind", FieldValue::Str("dataset".into())),
        Edit::set("created_by", FieldValue::Str("ada".into())),
        Edit::set("is_latest", FieldValue::Bool(true)),
        Edit::set("description", FieldValue::Text("plate 1, first run".into())),
    ]
}

struct Setup {
    access: StaticAccess,
    writer: (NodeKey, MemoryStore),
    reader_key: NodeKey,
    /// The reader after the creates.
    reader: MemoryStore,
    /// Pushed messages of the update batch.
    updates: Vec<Vec<u8>>,
}

fn setup() -> Setup {
    let wkey = NodeKey::from_secret_bytes(&[1; 32]);
    let rkey = NodeKey::from_secret_bytes(&[2; 32]);
    let mut access = StaticAccess::new();
    access.grant_write(wkey.public_key(), &scope());
    access.grant_write(rkey.public_key(), &scope());
    let mut wstore = MemoryStore::new();
    let mut rstore = MemoryStore::new();
    let mut writer = Engine::new(
        NodeKey::from_secret_bytes(&[1; 32]),
        Config::default(),
        &wstore,
    )
    .unwrap_or_else(|_| unreachable!());
    let mut reader = Engine::new(
        NodeKey::from_secret_bytes(&[2; 32]),
        Config::default(),
        &rstore,
    )
    .unwrap_or_else(|_| unreachable!());
    let o = writer.connect(T0, rkey.public_key(), &[scope()], &wstore, &access);
    wstore.apply(o.effects);
    let o = reader.connect(T0, wkey.public_key(), &[scope()], &rstore, &access);
    rstore.apply(o.effects);
    let creates: Vec<LocalWrite> = (0..N)
        .map(|n| LocalWrite {
            scope: scope(),
            uid: uid(n),
            edits: fields(n),
        })
        .collect();
    let w = writer
        .write(T0, &creates, &wstore, &access)
        .unwrap_or_else(|_| unreachable!());
    wstore.apply(w.output.effects);
    for m in &w.output.messages {
        let o = reader.handle(T0, wkey.public_key(), &m.bytes, &rstore, &access);
        rstore.apply(o.effects);
    }
    let updates: Vec<LocalWrite> = (0..N)
        .map(|n| LocalWrite {
            scope: scope(),
            uid: uid(n),
            edits: vec![Edit::set("size", FieldValue::Int(7))],
        })
        .collect();
    let w = writer
        .write(T0 + 1, &updates, &wstore, &access)
        .unwrap_or_else(|_| unreachable!());
    let updates = w.output.messages.iter().map(|m| m.bytes.clone()).collect();
    wstore.apply(w.output.effects);
    Setup {
        access,
        writer: (wkey, wstore),
        reader_key: rkey,
        reader: rstore,
        updates,
    }
}

fn benches(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("sync");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);

    group.bench_function("local_write/create", |b| {
        b.iter_batched(
            || {
                (
                    MemoryStore::new(),
                    Engine::new(
                        NodeKey::from_secret_bytes(&[1; 32]),
                        Config::default(),
                        &MemoryStore::new(),
                    ),
                )
            },
            |(mut store, engine)| {
                let mut engine = engine.unwrap_or_else(|_| unreachable!());
                let creates: Vec<LocalWrite> = (0..N)
                    .map(|n| LocalWrite {
                        scope: scope(),
                        uid: uid(n),
                        edits: fields(n),
                    })
                    .collect();
                let w = engine
                    .write(T0, &creates, &store, &s.access)
                    .unwrap_or_else(|_| unreachable!());
                store.apply(w.output.effects);
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("local_write/update", |b| {
        b.iter_batched(
            || {
                (
                    s.writer.1.clone(),
                    Engine::new(
                        NodeKey::from_secret_bytes(&[1; 32]),
                        Config::default(),
                        &s.writer.1,
                    ),
                )
            },
            |(mut store, engine)| {
                let mut engine = engine.unwrap_or_else(|_| unreachable!());
                let updates: Vec<LocalWrite> = (0..N)
                    .map(|n| LocalWrite {
                        scope: scope(),
                        uid: uid(n),
                        edits: vec![Edit::set("size", FieldValue::Int(9))],
                    })
                    .collect();
                let w = engine
                    .write(T0 + 2, &updates, &store, &s.access)
                    .unwrap_or_else(|_| unreachable!());
                store.apply(w.output.effects);
            },
            BatchSize::PerIteration,
        )
    });

    let from = s.writer.0.public_key();
    group.bench_function("apply_remote/update", |b| {
        b.iter_batched(
            || {
                let store = s.reader.clone();
                let mut engine = Engine::new(
                    NodeKey::from_secret_bytes(&[2; 32]),
                    Config::default(),
                    &store,
                )
                .unwrap_or_else(|_| unreachable!());
                let _ = engine.connect(T0, from, &[scope()], &store, &s.access);
                (store, engine)
            },
            |(mut store, mut engine)| {
                for m in &s.updates {
                    let o = engine.handle(T0 + 1, from, m, &store, &s.access);
                    assert!(o.effects.len() > 1);
                    store.apply(o.effects);
                }
            },
            BatchSize::PerIteration,
        )
    });

    // One snapshot chunk of N records, as the server sends it.
    let chunk = {
        let mut server = Engine::new(
            NodeKey::from_secret_bytes(&[1; 32]),
            Config::default(),
            &s.writer.1,
        )
        .unwrap_or_else(|_| unreachable!());
        let req = Message::SnapshotRequest {
            scope: scope(),
            after: None,
        }
        .encode();
        let o = server.handle(T0, s.reader_key.public_key(), &req, &s.writer.1, &s.access);
        o.messages[0].bytes.clone()
    };
    for threads in [1, 2] {
        group.bench_function(format!("snapshot/apply_chunk/{threads}_threads"), |b| {
            b.iter_batched(
                || {
                    let store = MemoryStore::new();
                    let config = Config {
                        threads,
                        ..Config::default()
                    };
                    let mut engine =
                        Engine::new(NodeKey::from_secret_bytes(&[3; 32]), config, &store)
                            .unwrap_or_else(|_| unreachable!());
                    let _ = engine.bootstrap(T0, from, scope());
                    (store, engine)
                },
                |(store, mut engine)| {
                    let o = engine.handle(T0, from, &chunk, &store, &s.access);
                    let docs = o
                        .effects
                        .iter()
                        .filter(|e| matches!(e, Effect::PutDocument { .. }))
                        .count();
                    assert_eq!(docs, N);
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(sync, benches);
criterion_main!(sync);
