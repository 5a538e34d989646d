//! Properties: order and duplication do not matter; decoding never panics;
//! encodings round-trip.

use std::collections::BTreeMap;

use labmesh_crypto::NodeKey;
use labmesh_sync::feed::{Batch, Entry, SignedBatch};
use labmesh_sync::memory::StaticAccess;
use labmesh_sync::wire::Message;
use labmesh_sync::{Edit, Effect, FieldValue, Hlc, LocalWrite, RecordDoc, ScopeId};
use proptest::prelude::*;

use crate::harness::*;

/// One step of the origins' history: node `who` writes `field` of record
/// `rec`, or node `who` hears everything node `from` wrote so far.
#[derive(Clone, Debug)]
enum Step {
    Write {
        who: usize,
        rec: u32,
        field: usize,
        value: i64,
    },
    Splice {
        who: usize,
        rec: u32,
        pos: usize,
    },
    Hear {
        who: usize,
        from: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, 0..4u32, 0..3usize, any::<i64>()).prop_map(|(who, rec, field, value)| {
            Step::Write {
                who,
                rec,
                field,
                value,
            }
        }),
        (0..3usize, 0..4u32, 0..20usize).prop_map(|(who, rec, pos)| Step::Splice { who, rec, pos }),
        (0..3usize, 0..3usize).prop_map(|(who, from)| Step::Hear { who, from }),
    ]
}

/// Runs the history on three writers; returns every signed batch they made
/// (with causal dependencies across origins) in creation order. Nodes 3 and
/// 4 are readers that heard nothing yet.
fn history(steps: &[Step]) -> (Vec<Vec<u8>>, StaticAccess, Vec<Node>) {
    let mut nodes: Vec<Node> = (1..=5).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1, 2]);
    let mut batches: Vec<Vec<u8>> = Vec::new();
    let mut outboxes: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    let fields = ["key", "size", "kind"];
    for (t, step) in steps.iter().enumerate() {
        let now = T0 + t as u64;
        match step {
            Step::Write {
                who,
                rec,
                field,
                value,
            } => {
                let w = LocalWrite {
                    scope: scope(),
                    uid: uid(*rec),
                    edits: vec![Edit::set(fields[*field], FieldValue::Int(*value))],
                };
                record(
                    &mut nodes[*who],
                    now,
                    &access,
                    w,
                    &mut batches,
                    &mut outboxes[*who],
                );
            }
            Step::Splice { who, rec, pos } => {
                let edit = Edit::Splice {
                    field: "description".into(),
                    pos: *pos,
                    delete: 1,
                    insert: format!("{who}"),
                };
                let w = LocalWrite {
                    scope: scope(),
                    uid: uid(*rec),
                    edits: vec![edit],
                };
                record(
                    &mut nodes[*who],
                    now,
                    &access,
                    w,
                    &mut batches,
                    &mut outboxes[*who],
                );
            }
            Step::Hear { who, from } if who != from => {
                let from_id = nodes[*from].id();
                for bytes in outboxes[*from].clone() {
                    let node = &mut nodes[*who];
                    let out = node
                        .engine
                        .handle(now, from_id, &bytes, &node.store, &access);
                    node.store.apply(out.effects);
                }
            }
            Step::Hear { .. } => {}
        }
    }
    (batches, access, nodes)
}

fn record(
    node: &mut Node,
    now: u64,
    access: &StaticAccess,
    w: LocalWrite,
    batches: &mut Vec<Vec<u8>>,
    outbox: &mut Vec<Vec<u8>>,
) {
    let written = node.engine.write(now, &[w], &node.store, access).unwrap();
    for e in &written.output.effects {
        if let Effect::StoreBatch { bytes, .. } = e {
            batches.push(bytes.clone());
            let batch = SignedBatch::decode(bytes).unwrap();
            outbox.push(
                Message::Batches {
                    scope: scope(),
                    more: false,
                    batches: vec![batch],
                }
                .encode(),
            );
        }
    }
    node.store.apply(written.output.effects);
}

/// Node `rx` receives the batch messages in the given order, once each
/// (as relays deliver them, duplicates included), retrying what waits for
/// dependencies on its own ticks.
fn deliver(nodes: &mut [Node], rx: usize, access: &StaticAccess, order: &[Vec<u8>]) {
    let ids: Vec<_> = nodes.iter().map(Node::id).collect();
    let rx = &mut nodes[rx];
    for id in &ids[..3] {
        let out = rx.engine.connect(T0, *id, &[scope()], &rx.store, access);
        rx.store.apply(out.effects);
    }
    for bytes in order {
        let b = SignedBatch::decode(bytes).unwrap();
        let from = b.batch().origin;
        let msg = Message::Batches {
            scope: scope(),
            more: false,
            batches: vec![b],
        }
        .encode();
        let out = rx.engine.handle(T0, from, &msg, &rx.store, access);
        rx.store.apply(out.effects);
    }
    let out = rx.engine.tick(T0, &rx.store, access);
    rx.store.apply(out.effects);
}

/// Anti-entropy between all nodes until nothing changes any more.
fn settle(nodes: &mut [Node], access: &StaticAccess) {
    let q = mesh(nodes, access);
    run(nodes, access, T0, q);
    for round in 1..=6 {
        tick_all(nodes, access, T0 + 1_000 * round);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_order_and_duplication_of_batches_gives_the_same_state(
        steps in proptest::collection::vec(step(), 1..14),
        shuffle in proptest::collection::vec(any::<u32>(), 0..40),
    ) {
        let (batches, access, mut in_order) = history(&steps);
        prop_assume!(!batches.is_empty());
        // In creation order every dependency comes first: one pass applies all.
        deliver(&mut in_order, 3, &access, &batches);
        let expected = state(&in_order[3]);

        // A permutation with duplicates, driven by `shuffle`, delivered
        // once; batches that arrive before their feed predecessor are
        // skipped, and the protocol pulls them in order afterwards.
        let mut order = batches.clone();
        for (i, r) in shuffle.iter().enumerate() {
            let a = i % order.len();
            let b = *r as usize % order.len();
            order.swap(a, b);
            if r % 3 == 0 {
                order.push(batches[*r as usize % batches.len()].clone());
            }
        }
        let (_, _, mut nodes) = history(&steps);
        deliver(&mut nodes, 3, &access, &order);
        settle(&mut nodes, &access);
        prop_assert_eq!(&state(&nodes[3]), &expected);
        // And every writer's own replica, now that it heard everything
        // through the protocol, holds the same state.
        for (w, node) in nodes.iter().enumerate().take(3) {
            prop_assert_eq!(&state(node), &expected, "writer {}", w);
        }
    }

    #[test]
    fn a_snapshot_then_the_feed_and_repair_give_the_same_state(
        steps in proptest::collection::vec(step(), 1..14),
        server in 0..3usize,
        rollback in any::<u32>(),
    ) {
        let (batches, access, mut in_order) = history(&steps);
        prop_assume!(!batches.is_empty());
        deliver(&mut in_order, 3, &access, &batches);
        let expected = state(&in_order[3]);

        // Node 4 bootstraps from one writer's snapshot (documents merged
        // whole, whatever that writer had heard), then follows the feed.
        let (_, _, mut nodes) = history(&steps);
        let server_id = nodes[server].id();
        let joiner = nodes[4].id();
        let out = nodes[server].connect(T0, joiner, &[scope()], &access);
        drop(nodes[server].take(out));
        let out = nodes[4].connect(T0, server_id, &[scope()], &access);
        drop(nodes[4].take(out));
        let out = nodes[4].engine.bootstrap(T0, server_id, scope());
        let q = tag(nodes[4].take(out), 4);
        run(&mut nodes, &access, T0, q);
        prop_assert!(!nodes[4].engine.bootstrapping(&scope()));
        // A record of node 3 rolls back to an empty document behind its
        // engine's back; repair must bring it back.
        let uids: Vec<_> = nodes[server].store.records(&scope()).map(|(u, _)| u.clone()).collect();
        settle(&mut nodes, &access);
        if !uids.is_empty() {
            let u = &uids[rollback as usize % uids.len()];
            nodes[3].store.overwrite_document(&scope(), u, RecordDoc::new());
            settle(&mut nodes, &access);
        }
        for (n, node) in nodes.iter().enumerate() {
            prop_assert_eq!(&state(node), &expected, "node {}", n);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Message::decode(&bytes);
        let _ = SignedBatch::decode(&bytes);
        let _ = RecordDoc::load(&bytes);
        let mut with_header = vec![1u8, bytes.first().copied().unwrap_or(3) % 11];
        with_header.extend_from_slice(&bytes);
        let _ = Message::decode(&with_header);
    }

    #[test]
    fn corrupted_valid_messages_are_refused_or_decode_canonically(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        for message in sample_messages() {
            let mut bytes = message.encode();
            for (at, x) in &flips {
                let i = at % bytes.len();
                bytes[i] ^= x | 1;
            }
            if let Ok(decoded) = Message::decode(&bytes) {
                prop_assert_eq!(decoded.encode(), bytes, "canonical");
            }
        }
    }

    #[test]
    fn messages_round_trip(
        seqs in proptest::collection::vec(any::<u64>(), 0..6),
        digest in any::<[u8; 16]>(),
        doc in proptest::collection::vec(any::<u8>(), 0..300),
        more in any::<bool>(),
    ) {
        let keys: Vec<_> = (0..seqs.len() as u8).map(|i| NodeKey::from_secret_bytes(&[i + 40; 32]).public_key()).collect();
        let mut marks: Vec<_> = keys.into_iter().zip(seqs).collect();
        marks.sort_by_key(|m| m.0);
        let messages = vec![
            Message::Announce { scope: scope(), marks: marks.clone() },
            Message::Pull { scope: scope(), full: more, marks: marks.clone() },
            Message::Summary { scope: scope(), marks_digest: [digest[0]; 32], docs_digest: [digest[1]; 32] },
            Message::Buckets { scope: scope(), digests: vec![digest; 64] },
            Message::BucketItems { scope: scope(), bucket: 63, after: Some(uid(1)), upto: None, items: vec![(uid(2), digest), (uid(3), digest)] },
            Message::Docs { scope: scope(), docs: vec![(uid(1), doc.clone())], want: vec![uid(5)] },
            Message::SnapshotRequest { scope: scope(), after: more.then(|| uid(9)) },
            Message::SnapshotChunk { scope: scope(), marks, records: vec![(uid(1), doc.clone()), (uid(2), doc)], next: None },
            Message::Denied { scope: ScopeId::new("registry:ulabel").unwrap() },
        ];
        for m in messages.into_iter().chain(sample_messages()) {
            let bytes = m.encode();
            prop_assert_eq!(Message::decode(&bytes).unwrap(), m);
        }
    }
}

/// One message of each kind that carries batches.
fn sample_messages() -> Vec<Message> {
    let key = NodeKey::from_secret_bytes(&[77; 32]);
    let node = Hlc::node_tag(&key.public_key());
    let batch = Batch {
        origin: key.public_key(),
        scope: scope(),
        prev: 0,
        first_seq: 1,
        entries: vec![
            Entry {
                hlc: Hlc {
                    ms: T0,
                    logical: 0,
                    node,
                },
                uid: uid(1),
                change: vec![1, 2, 3],
            },
            Entry {
                hlc: Hlc {
                    ms: T0,
                    logical: 1,
                    node,
                },
                uid: uid(2),
                change: vec![],
            },
        ],
    };
    let signed = SignedBatch::sign(&key, batch).unwrap();
    let mut marks = BTreeMap::new();
    marks.insert(key.public_key(), 2u64);
    vec![
        Message::Batches {
            scope: scope(),
            more: true,
            batches: vec![signed],
        },
        Message::Pull {
            scope: scope(),
            full: true,
            marks: marks.into_iter().collect(),
        },
    ]
}
