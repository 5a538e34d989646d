//! The protocol's flows, end to end between engines.

use labmesh_crypto::NodeKey;
use labmesh_sync::feed::{Batch, Entry, SignedBatch};
use labmesh_sync::wire::Message;
use labmesh_sync::{
    Edit, Effect, Event, FieldValue, Hlc, LocalWrite, RecordDoc, Rejection, WriteError,
};

use crate::harness::*;

#[test]
fn a_write_reaches_every_peer_and_concurrent_writes_merge() {
    let mut nodes: Vec<Node> = (1..=3).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1, 2]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);

    let q = nodes[0].set(T0, &access, 1, "key", s("raw/a.csv"));
    run(&mut nodes, &access, T0, tag(q, 0));
    assert_eq!(nodes[2].field(1, "key"), Some(s("raw/a.csv")));

    // Partitioned: node 0 and node 1 write the same field, node 2 another.
    let q0 = nodes[0].set(T0 + 10, &access, 1, "key", s("from-0"));
    let q1 = nodes[1].set(T0 + 10, &access, 1, "key", s("from-1"));
    let q2 = nodes[2].set(T0 + 10, &access, 1, "size", FieldValue::Int(7));
    drop((q0, q1, q2)); // lost: anti-entropy must recover them
    tick_all(&mut nodes, &access, T0 + 1_000);
    tick_all(&mut nodes, &access, T0 + 2_000);
    assert!(identical(&nodes));
    let rec = nodes[2].store.record(&scope(), &uid(1)).unwrap();
    assert_eq!(rec.view.conflicted, vec!["key".to_string()]);
    assert_eq!(rec.view.fields.get("size"), Some(&FieldValue::Int(7)));
    let doc = RecordDoc::load(&rec.doc).unwrap();
    assert_eq!(doc.conflicts()[0].values, vec![s("from-0"), s("from-1")]);

    // Resolving on one node clears the conflict everywhere.
    let q = nodes[2].write(
        T0 + 3_000,
        &access,
        vec![LocalWrite {
            scope: scope(),
            uid: uid(1),
            edits: vec![Edit::resolve("key", s("agreed"))],
        }],
    );
    run(&mut nodes, &access, T0 + 3_000, tag(q, 2));
    for n in &nodes {
        let view = &n.store.record(&scope(), &uid(1)).unwrap().view;
        assert!(view.conflicted.is_empty());
        assert_eq!(view.fields.get("key"), Some(&s("agreed")));
    }
}

#[test]
fn read_only_nodes_cannot_write_and_forged_batches_are_rejected() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let q = nodes[0].set(T0, &access, 1, "key", s("a"));
    run(&mut nodes, &access, T0, tag(q, 0));

    // The read-only node's own engine refuses.
    let w = LocalWrite {
        scope: scope(),
        uid: uid(1),
        edits: vec![Edit::set("key", s("evil"))],
    };
    let err = nodes[1].try_write(T0, &[w], &access).unwrap_err();
    assert!(matches!(err, WriteError::NotAuthorized { .. }), "{err}");

    // It forges a correctly signed batch anyway.
    let rogue = NodeKey::from_secret_bytes(&[2; 32]);
    let mut doc = RecordDoc::load(&nodes[1].store.record(&scope(), &uid(1)).unwrap().doc).unwrap();
    let hlc = Hlc {
        ms: T0,
        logical: 0,
        node: Hlc::node_tag(&rogue.public_key()),
    };
    let change = doc
        .edit(&rogue.public_key(), hlc, &[Edit::set("key", s("evil"))])
        .unwrap()
        .unwrap();
    let batch = Batch {
        origin: rogue.public_key(),
        scope: scope(),
        prev: 0,
        first_seq: 1,
        entries: vec![Entry {
            hlc,
            uid: uid(1),
            change,
        }],
    };
    let bytes = Message::Batches {
        scope: scope(),
        more: false,
        batches: vec![SignedBatch::sign(&rogue, batch).unwrap()],
    }
    .encode();
    let out = nodes[0].handle(T0, rogue.public_key(), &bytes, &access);
    assert!(out.events.iter().any(|e| matches!(e, Event::Rejected { reason: Rejection::NotAuthorized, origin, .. } if *origin == rogue.public_key())));
    assert!(
        !out.effects
            .iter()
            .any(|e| matches!(e, Effect::PutDocument { .. } | Effect::StoreBatch { .. }))
    );
    nodes[0].take(out);
    assert_eq!(nodes[0].field(1, "key"), Some(s("a")));
}

#[test]
fn a_badly_signed_or_malformed_message_changes_nothing() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let q = nodes[0].set(T0, &access, 1, "key", s("a"));
    let push = q.into_iter().find(|m| m.to == nodes[1].id()).unwrap();
    let mut bytes = push.bytes.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40; // inside the signature
    let from = nodes[0].id();
    let out = nodes[1].handle(T0, from, &bytes, &access);
    assert!(out.effects.is_empty() && out.messages.is_empty());
    assert!(matches!(out.events[..], [Event::BadMessage { .. }]));
    for junk in [&[][..], &[1][..], &[9, 3][..], &bytes[..bytes.len() / 2]] {
        let out = nodes[1].handle(T0, from, junk, &access);
        assert!(out.effects.is_empty(), "{junk:?}");
    }
    assert_eq!(nodes[1].engine.stats().bad_messages, 5);
    // The genuine message still applies.
    let out = nodes[1].handle(T0, from, &push.bytes, &access);
    nodes[1].take(out);
    assert_eq!(nodes[1].field(1, "key"), Some(s("a")));
}

#[test]
fn a_new_subscriber_bootstraps_from_a_snapshot_then_follows_the_feed() {
    bootstrap_with(1);
}

#[test]
fn bootstrapping_on_several_threads_gives_the_same_replica() {
    bootstrap_with(3);
}

fn bootstrap_with(threads: usize) {
    let config = labmesh_sync::Config {
        threads,
        ..labmesh_sync::Config::default()
    };
    let mut nodes = vec![Node::new(1), Node::with_config(2, config)];
    let access = acl(&nodes, &[0]);
    let writes: Vec<LocalWrite> = (0..2500)
        .map(|n| LocalWrite {
            scope: scope(),
            uid: uid(n),
            edits: vec![Edit::set("key", s(&format!("k{n}")))],
        })
        .collect();
    let written = nodes[0].try_write(T0, &writes, &access).unwrap();
    nodes[0].take(written.output);

    let server = nodes[0].id();
    let out = nodes[1].connect(T0, server, &[scope()], &access);
    let mut q = tag(nodes[1].take(out), 1);
    let peer = nodes[1].id();
    let out = nodes[0].connect(T0, peer, &[scope()], &access);
    drop(nodes[0].take(out));
    let out = nodes[1].engine.bootstrap(T0, server, scope());
    q.extend(tag(nodes[1].take(out), 1));
    run(&mut nodes, &access, T0, q);
    assert!(
        nodes[1]
            .events
            .iter()
            .any(|e| matches!(e, Event::Bootstrapped { records: 2500, .. }))
    );
    assert!(identical(&nodes));
    assert!(
        nodes[1].store.bytes() < nodes[0].store.bytes(),
        "no feed history was copied"
    );

    // Later writes arrive through the feed.
    let q = nodes[0].set(T0 + 5, &access, 7, "key", s("later"));
    run(&mut nodes, &access, T0 + 5, tag(q, 0));
    assert_eq!(nodes[1].field(7, "key"), Some(s("later")));
}

#[test]
fn drift_behind_the_engines_back_is_found_and_repaired() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    for n in 0..20 {
        let q = nodes[0].set(T0 + u64::from(n), &access, n, "key", s("v1"));
        run(&mut nodes, &access, T0, tag(q, 0));
    }
    let old = RecordDoc::load(&nodes[1].store.record(&scope(), &uid(3)).unwrap().doc).unwrap();
    let q = nodes[0].set(T0 + 100, &access, 3, "key", s("v2"));
    run(&mut nodes, &access, T0 + 100, tag(q, 0));
    // Node 1 "restores a backup" of record 3: its marks still say it has v2.
    nodes[1].store.overwrite_document(&scope(), &uid(3), old);
    assert_eq!(nodes[1].field(3, "key"), Some(s("v1")));
    assert!(!identical(&nodes));
    tick_all(&mut nodes, &access, T0 + 1_000);
    assert!(identical(&nodes));
    assert_eq!(nodes[1].field(3, "key"), Some(s("v2")));
}

#[test]
fn identical_peers_exchange_under_a_kibibyte_per_scope_per_round() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let writes: Vec<LocalWrite> = (0..500)
        .map(|n| LocalWrite {
            scope: scope(),
            uid: uid(n),
            edits: vec![Edit::set("key", s("x"))],
        })
        .collect();
    let q = nodes[0].write(T0, &access, writes);
    run(&mut nodes, &access, T0, tag(q, 0));
    assert!(identical(&nodes));
    let (messages, bytes) = tick_all(&mut nodes, &access, T0 + 1_000);
    assert_eq!(messages, 2, "one summary each way");
    eprintln!("steady state: {messages} messages, {bytes} bytes per scope per round");
    assert!(bytes <= 1024, "{bytes} bytes");
}

#[test]
fn batched_changes_cost_under_one_and_a_half_times_their_bytes_on_the_wire() {
    // Three nodes: the writer pushes to both readers, who then gossip; every
    // byte the mesh exchanges until it is quiet counts, per receiver.
    let mut nodes: Vec<Node> = (1..=3).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1, 2]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let create: Vec<LocalWrite> = (0..100)
        .map(|n| LocalWrite {
            scope: scope(),
            uid: uid(n),
            edits: vec![Edit::set("key", s("raw/plate.parquet"))],
        })
        .collect();
    let q = nodes[0].write(T0, &access, create);
    run(&mut nodes, &access, T0, tag(q, 0));
    let update: Vec<LocalWrite> = (0..100)
        .map(|n| LocalWrite {
            scope: scope(),
            uid: uid(n),
            edits: vec![Edit::set("size", FieldValue::Int(i64::from(n)))],
        })
        .collect();
    let written = nodes[0].try_write(T0 + 1, &update, &access).unwrap();
    let changes: usize = written
        .output
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::StoreBatch { bytes, .. } => SignedBatch::decode(bytes).ok(),
            _ => None,
        })
        .flat_map(|b| {
            b.batch()
                .entries
                .iter()
                .map(|e| e.change.len())
                .collect::<Vec<_>>()
        })
        .sum();
    let q = nodes[0].take(written.output);
    let (messages, wire) = run(&mut nodes, &access, T0 + 1, tag(q, 0));
    assert!(identical(&nodes));
    let receivers = nodes.len() - 1;
    let ratio = wire as f64 / (changes * receivers) as f64;
    eprintln!(
        "{messages} messages, {wire} B on the wire for {changes} B of changes to {receivers} receivers: {ratio:.2}x"
    );
    assert!(ratio <= 1.5, "{ratio:.2}x");
}

#[test]
fn causally_dependent_changes_wait_for_their_dependencies() {
    // Node 1 edits after seeing node 0's change; node 2 gets node 1's batch first.
    let mut nodes: Vec<Node> = (1..=3).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1, 2]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let q0 = nodes[0].set(T0, &access, 1, "key", s("a"));
    let to1: Vec<_> = q0
        .iter()
        .filter(|m| m.to == nodes[1].id())
        .cloned()
        .collect();
    let to2: Vec<_> = q0
        .iter()
        .filter(|m| m.to == nodes[2].id())
        .cloned()
        .collect();
    // Node 1 hears node 0 directly (its replies and gossip are dropped).
    let from0 = nodes[0].id();
    let out = nodes[1].handle(T0, from0, &to1[0].bytes, &access);
    nodes[1].take(out);
    let q1 = nodes[1].set(T0 + 1, &access, 1, "size", FieldValue::Int(1));
    // Deliver only node 1's push to node 2 (not its announcements).
    let push: Vec<_> = q1
        .into_iter()
        .filter(|m| m.to == nodes[2].id() && m.bytes[1] == 3)
        .collect();
    let from = nodes[1].id();
    let out = nodes[2].handle(T0 + 1, from, &push[0].bytes, &access);
    nodes[2].take(out);
    assert_eq!(nodes[2].field(1, "size"), None, "waits for node 0's change");
    run(&mut nodes, &access, T0 + 2, tag(to2, 0));
    tick_all(&mut nodes, &access, T0 + 1_000);
    assert_eq!(nodes[2].field(1, "size"), Some(FieldValue::Int(1)));
    assert!(identical(&nodes));
}

#[test]
fn far_ahead_clocks_are_accepted_and_flagged() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let ahead = T0 + 3_600_000;
    let q = nodes[0].set(ahead, &access, 1, "key", s("future"));
    run(&mut nodes, &access, T0, tag(q, 0));
    assert_eq!(nodes[1].field(1, "key"), Some(s("future")));
    assert!(nodes[1].events.iter().any(|e| matches!(
        e,
        Event::ClockAhead {
            ahead_ms: 3_600_000,
            ..
        }
    )));
    assert_eq!(nodes[1].engine.stats().clock_warnings, 1);
    assert!(
        nodes[1].engine.clock().ms >= ahead,
        "later local writes order after it"
    );
}

#[test]
fn the_serving_side_checks_read_rights_before_sending_anything() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let mut access = acl(&nodes, &[0]);
    let outsider = NodeKey::from_secret_bytes(&[9; 32]).public_key();
    let q = nodes[0].set(T0, &access, 1, "key", s("secret"));
    drop(q);
    for message in [
        Message::Pull {
            scope: scope(),
            full: true,
            marks: vec![],
        },
        Message::SnapshotRequest {
            scope: scope(),
            after: None,
        },
    ] {
        let out = nodes[0].handle(T0, outsider, &message.encode(), &access);
        assert_eq!(out.messages.len(), 1);
        assert_eq!(
            Message::decode(&out.messages[0].bytes).unwrap(),
            Message::Denied { scope: scope() }
        );
        assert!(matches!(out.events[..], [Event::Denied { .. }]));
    }
    access.grant_read(outsider, &scope());
    let out = nodes[0].handle(
        T0,
        outsider,
        &Message::SnapshotRequest {
            scope: scope(),
            after: None,
        }
        .encode(),
        &access,
    );
    assert!(
        matches!(Message::decode(&out.messages[0].bytes).unwrap(), Message::SnapshotChunk { ref records, .. } if records.len() == 1)
    );
}
