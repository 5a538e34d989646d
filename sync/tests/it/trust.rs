//! Who is trusted with what: unsigned documents only from writers, the
//! scope's metadata only to readers, refused input leaves no trace.

use labmesh_crypto::NodeKey;
use labmesh_sync::wire::Message;
use labmesh_sync::{Edit, Effect, Event, FieldValue, Hlc, RecordDoc, Rejection};

use crate::harness::*;

fn hlc(ms: u64, key: &labmesh_crypto::PublicKey) -> Hlc {
    Hlc {
        ms,
        logical: 0,
        node: Hlc::node_tag(key),
    }
}

fn no_documents(effects: &[Effect]) -> bool {
    !effects
        .iter()
        .any(|e| matches!(e, Effect::PutDocument { .. }))
}

#[test]
fn a_reader_cannot_merge_documents_forged_in_a_writers_name() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let q = nodes[0].set(T0, &access, 1, "key", s("a"));
    run(&mut nodes, &access, T0, tag(q, 0));
    let (owner, reader) = (nodes[0].id(), nodes[1].id());

    // The reader edits its copy in the owner's name (an actor id needs no
    // private key) and offers it as a repair document.
    let mut doc = RecordDoc::load(&nodes[1].store.record(&scope(), &uid(1)).unwrap().doc).unwrap();
    doc.edit(&owner, hlc(T0 + 1, &owner), &[Edit::set("key", s("evil"))])
        .unwrap();
    let (planted, _) = RecordDoc::create(
        &owner,
        hlc(T0 + 1, &owner),
        [("key".to_string(), s("planted"))],
    )
    .unwrap();
    let mut planted = planted;
    let forged = Message::Docs {
        scope: scope(),
        docs: vec![(uid(1), doc.save()), (uid(9), planted.save())],
        want: vec![],
    };
    let out = nodes[0].handle(T0 + 1, reader, &forged.encode(), &access);
    assert!(no_documents(&out.effects), "{:?}", out.effects);
    let refused: Vec<_> = out
        .events
        .iter()
        .filter(|e| {
            matches!(e, Event::Rejected { origin, reason: Rejection::NotAuthorized, .. } if *origin == reader)
        })
        .collect();
    assert_eq!(refused.len(), 2, "{:?}", out.events);
    nodes[0].take(out);
    assert_eq!(nodes[0].field(1, "key"), Some(s("a")));
    assert!(nodes[0].store.record(&scope(), &uid(9)).is_none());
}

#[test]
fn a_snapshot_from_a_peer_that_may_not_write_is_refused_whole() {
    // Node 0 writes; node 1 reads and serves a snapshot; node 2 asks node 1.
    let mut nodes: Vec<Node> = (1..=3).map(Node::new).collect();
    let access = acl(&nodes, &[0]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let q = nodes[0].set(T0, &access, 1, "key", s("a"));
    drop(q);
    let (reader, joiner) = (nodes[1].id(), nodes[2].id());
    // The reader holds a record (forged in the writer's name, say).
    let owner = nodes[0].id();
    let (doc, _) =
        RecordDoc::create(&owner, hlc(T0, &owner), [("key".to_string(), s("x"))]).unwrap();
    nodes[1].store.overwrite_document(&scope(), &uid(5), doc);
    let out = nodes[2].engine.bootstrap(T0, reader, scope());
    let request = nodes[2].take(out).remove(0);
    let out = nodes[1].handle(T0, joiner, &request.bytes, &access);
    let chunk = nodes[1].take(out).remove(0);
    assert!(matches!(
        Message::decode(&chunk.bytes),
        Ok(Message::SnapshotChunk { ref records, .. }) if records.len() == 1
    ));
    let out = nodes[2].handle(T0, reader, &chunk.bytes, &access);
    assert!(no_documents(&out.effects));
    assert!(out.effects.is_empty(), "no marks either: {:?}", out.effects);
    assert!(matches!(
        out.events[..],
        [Event::Rejected {
            reason: Rejection::NotAuthorized,
            uid: None,
            ..
        }]
    ));
    assert!(
        !nodes[2].engine.bootstrapping(&scope()),
        "the bootstrap ends"
    );
}

#[test]
fn a_reader_is_repaired_by_asking_a_writer_for_its_documents() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    for n in 0..10 {
        let q = nodes[0].set(T0, &access, n, "key", s("v1"));
        run(&mut nodes, &access, T0, tag(q, 0));
    }
    let old = RecordDoc::load(&nodes[1].store.record(&scope(), &uid(3)).unwrap().doc).unwrap();
    let q = nodes[0].set(T0 + 1, &access, 3, "key", s("v2"));
    run(&mut nodes, &access, T0 + 1, tag(q, 0));
    nodes[1].store.overwrite_document(&scope(), &uid(3), old);
    tick_all(&mut nodes, &access, T0 + 1_000);
    assert!(identical(&nodes));
    assert_eq!(nodes[1].field(3, "key"), Some(s("v2")));
}

#[test]
fn nothing_of_a_scope_goes_to_a_peer_that_may_not_read_it() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0]); // node 1 may read ...
    let outsider = NodeKey::from_secret_bytes(&[9; 32]).public_key(); // ... this one may not
    let q = nodes[0].set(T0, &access, 1, "key", s("secret"));
    drop(q);
    let out = nodes[0].connect(T0, outsider, &[scope()], &access);
    assert!(out.messages.is_empty(), "no summary to an outsider");
    let other = NodeKey::from_secret_bytes(&[8; 32]).public_key();
    let probes = [
        Message::Summary {
            scope: scope(),
            marks_digest: [1; 32],
            docs_digest: [2; 32],
        },
        Message::Announce {
            scope: scope(),
            marks: vec![(other, 50)],
        },
        Message::Buckets {
            scope: scope(),
            digests: vec![[3; 16]; 64],
        },
        Message::BucketItems {
            scope: scope(),
            bucket: 0,
            after: None,
            upto: None,
            items: vec![],
        },
        Message::Docs {
            scope: scope(),
            docs: vec![],
            want: vec![uid(1)],
        },
    ];
    // Summaries repeatedly (a pull after two, repair after four), the rest once.
    for round in 0..5 {
        for probe in &probes {
            if round > 0 && !matches!(probe, Message::Summary { .. }) {
                continue;
            }
            let out = nodes[0].handle(T0 + round, outsider, &probe.encode(), &access);
            assert!(
                out.messages.is_empty(),
                "{probe:?} got an answer: {:?}",
                out.messages
                    .iter()
                    .map(|m| Message::decode(&m.bytes))
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// A change that makes automerge 0.6.1 index out of bounds (found by
/// mutating a valid change), against the document `panic_base` builds.
const PANICS: &str = "856f4a83e948b8f201c10101371cb51bd2f378671329887c36daa6b18249bd2d1077d956e73fc152805c44b2208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394010f020001208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c0c0104020411061307150c3403420656075703700671027304040100020402000203017f0000027c06017e0c000200047e0473697a65036b6579020202020303017f03020002167e1400585904020103007f01033b7d060107";

fn panic_base() -> RecordDoc {
    let k1 = NodeKey::from_secret_bytes(&[1; 32]).public_key();
    let at = Hlc {
        ms: 1,
        logical: 0,
        node: 0,
    };
    let fields = [
        ("key".to_string(), s("a")),
        (
            "description".to_string(),
            FieldValue::Text("hello world".into()),
        ),
    ];
    RecordDoc::create(&k1, at, fields).unwrap().0
}

#[test]
fn a_change_that_makes_automerge_panic_leaves_the_engine_as_it_was() {
    let origin_key = NodeKey::from_secret_bytes(&[2; 32]);
    let origin = origin_key.public_key();
    let mut rx = Node::new(3);
    let mut access = labmesh_sync::memory::StaticAccess::new();
    access.grant_write(origin, &scope());
    access.grant_read(rx.id(), &scope());
    let out = rx.connect(T0, origin, &[scope()], &access);
    drop(rx.take(out));
    rx.store.overwrite_document(&scope(), &uid(1), panic_base());
    // An announce makes the receiver pull: a pull is in flight.
    let announce = Message::Announce {
        scope: scope(),
        marks: vec![(origin, 2)],
    }
    .encode();
    let out = rx.handle(T0, origin, &announce, &access);
    assert_eq!(rx.take(out).len(), 1, "a pull");
    // One batch: a valid change far ahead (it would move the clock), then
    // the change automerge panics on.
    let far = T0 + 3_600_000;
    let tag = Hlc::node_tag(&origin);
    let hlc = |ms| Hlc {
        ms,
        logical: 0,
        node: tag,
    };
    let first = RecordDoc::new()
        .edit(&origin, hlc(far), &[Edit::set("key", s("x"))])
        .unwrap()
        .unwrap();
    let panics: Vec<u8> = (0..PANICS.len() / 2)
        .map(|i| u8::from_str_radix(&PANICS[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let batch = labmesh_sync::feed::Batch {
        origin,
        scope: scope(),
        prev: 0,
        first_seq: 1,
        entries: vec![
            labmesh_sync::feed::Entry {
                hlc: hlc(far),
                uid: uid(2),
                change: first,
            },
            labmesh_sync::feed::Entry {
                hlc: hlc(far + 1),
                uid: uid(1),
                change: panics,
            },
        ],
    };
    let message = Message::Batches {
        scope: scope(),
        more: false,
        batches: vec![labmesh_sync::feed::SignedBatch::sign(&origin_key, batch).unwrap()],
    };
    let clock = rx.engine.clock();
    let out = rx.handle(T0, origin, &message.encode(), &access);
    assert!(out.effects.is_empty() && out.messages.is_empty(), "{out:?}");
    assert!(matches!(out.events[..], [Event::BadMessage { .. }]));
    assert_eq!(rx.engine.clock(), clock, "the clock did not move");
    // The pull is still in flight: the same announce does not pull again.
    let out = rx.handle(T0 + 1, origin, &announce, &access);
    assert!(out.messages.is_empty(), "the pull in flight was kept");
}

#[test]
fn a_refused_message_leaves_the_engine_as_it_was() {
    // A pull is in flight for node 0's feed; a message whose second batch
    // is badly signed must not clear it, nor move the clock.
    let mut nodes: Vec<Node> = (1..=3).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1, 2]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let ahead = T0 + 3_600_000;
    let q0 = nodes[0].set(ahead, &access, 1, "key", s("a"));
    let push = q0.iter().find(|m| m.to == nodes[2].id()).unwrap().clone();
    let Ok(Message::Batches { batches, .. }) = Message::decode(&push.bytes) else {
        panic!("a push");
    };
    let q1 = nodes[1].set(T0, &access, 2, "key", s("b"));
    let Ok(Message::Batches { batches: other, .. }) =
        Message::decode(&q1.iter().find(|m| m.to == nodes[2].id()).unwrap().bytes)
    else {
        panic!("a push");
    };
    let mut bad = other[0].to_bytes();
    let at = bad.len() - 1;
    bad[at] ^= 1;
    let bad = labmesh_sync::feed::SignedBatch::decode(&bad).unwrap();
    let message = Message::Batches {
        scope: scope(),
        more: false,
        batches: vec![batches[0].clone(), bad],
    };
    let clock = nodes[2].engine.clock();
    let stats = nodes[2].engine.stats().clone();
    let from = nodes[0].id();
    let out = nodes[2].handle(T0, from, &message.encode(), &access);
    assert!(out.effects.is_empty() && out.messages.is_empty());
    assert!(matches!(out.events[..], [Event::BadMessage { .. }]));
    assert_eq!(nodes[2].engine.clock(), clock, "the clock did not move");
    assert_eq!(nodes[2].engine.stats().rejected, stats.rejected);
    // The genuine push still applies, and moves the clock.
    let out = nodes[2].handle(T0, from, &push.bytes, &access);
    nodes[2].take(out);
    assert_eq!(nodes[2].field(1, "key"), Some(s("a")));
    assert!(nodes[2].engine.clock().ms >= ahead);
    let _ = FieldValue::Null;
}
