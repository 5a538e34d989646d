//! Properties: order and duplication do not matter; decoding never panics;
//! encodings round-trip.

use std::collections::BTreeMap;

use labmesh_crypto::NodeKey;
use labmesh_sync::feed::{Batch, Entry, SignedBatch};
use labmesh_sync::memory::StaticAccess;
use labmesh_sync::wire::Message;
use labmesh_sync::{Edit, Effect, FieldValue, Hlc, LocalWrite, RecordDoc, RecordUid, ScopeId};
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
/// (with causal dependencies across origins) in creation order.
fn history(steps: &[Step]) -> (Vec<Vec<u8>>, StaticAccess, Vec<Node>) {
    let mut nodes: Vec<Node> = (1..=4).map(Node::new).collect();
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

/// Delivers batch messages to node 3 in the given order, repeating rounds
/// (as re-pulls would) until nothing changes; returns its final state.
fn receive(
    nodes: &mut [Node],
    access: &StaticAccess,
    order: &[Vec<u8>],
) -> Vec<(RecordUid, Vec<[u8; 32]>, labmesh_sync::RecordView)> {
    let ids: Vec<_> = nodes.iter().map(Node::id).collect();
    let rx = &mut nodes[3];
    for id in &ids[..3] {
        let out = rx.engine.connect(T0, *id, &[scope()], &rx.store, access);
        rx.store.apply(out.effects);
    }
    for _ in 0..order.len() + 2 {
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
    rx.store
        .records(&scope())
        .map(|(u, r)| (u.clone(), r.heads.clone(), r.view.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_order_and_duplication_of_batches_gives_the_same_state(
        steps in proptest::collection::vec(step(), 1..14),
        shuffle in proptest::collection::vec(any::<u32>(), 0..40),
    ) {
        let (batches, access, _) = history(&steps);
        prop_assume!(!batches.is_empty());
        let (_, _, mut in_order_nodes) = history(&steps);
        let expected = receive(&mut in_order_nodes, &access, &batches);

        // A permutation with duplicates, driven by `shuffle`.
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
        let got = receive(&mut nodes, &access, &order);
        prop_assert_eq!(&got, &expected);
        // And the writers' own replicas agree with the receiver once they all heard everything.
        let mut writer_view = history(&steps).2;
        let everything = receive(&mut writer_view, &access, &batches);
        prop_assert_eq!(everything, expected);
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
