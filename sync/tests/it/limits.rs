//! Limits that hold end to end: large records travel (feed, snapshot,
//! repair) up to the documented size, larger writes are refused with the
//! limit named, and clocks stay monotonic across engines.

use labmesh_sync::wire::limits::{MAX_CHANGE_BYTES, MAX_RECORD_BYTES};
use labmesh_sync::{Edit, Effect, Event, FieldValue, LocalWrite, RecordDoc, WriteError};

use crate::harness::*;

fn big(n: u32, bytes: usize) -> LocalWrite {
    LocalWrite {
        scope: scope(),
        uid: uid(n),
        edits: vec![Edit::set(
            "blob",
            FieldValue::Bytes(random_bytes(bytes, u64::from(n))),
        )],
    }
}

#[test]
fn records_larger_than_a_response_travel_through_feed_snapshot_and_repair() {
    let mut nodes: Vec<Node> = (1..=3).map(Node::new).collect();
    let access = acl(&nodes, &[0]);
    // Node 0 and node 1 are connected; node 2 joins later by snapshot.
    let (a, b) = (nodes[0].id(), nodes[1].id());
    let out = nodes[0].connect(T0, b, &[scope()], &access);
    drop(nodes[0].take(out));
    let out = nodes[1].connect(T0, a, &[scope()], &access);
    drop(nodes[1].take(out));
    // Two records bigger than the old 256 KiB document limit and than the
    // 1 MiB response budget, between small ones.
    let mut writes: Vec<LocalWrite> = (0..6)
        .map(|n| LocalWrite {
            scope: scope(),
            uid: uid(n),
            edits: vec![Edit::set("key", s("small"))],
        })
        .collect();
    writes.insert(2, big(10, 300 << 10));
    writes.insert(4, big(11, 1200 << 10));
    let q = nodes[0].write(T0, &access, writes);
    run(&mut nodes, &access, T0, tag(q, 0));
    let size = |n: &Node, u| n.store.record(&scope(), &uid(u)).map(|r| r.doc.len());
    assert!(size(&nodes[1], 11).unwrap() > 1 << 20, "through the feed");

    // Snapshot.
    let server = nodes[0].id();
    let out = nodes[2].connect(T0, server, &[scope()], &access);
    drop(nodes[2].take(out));
    let peer = nodes[2].id();
    let out = nodes[0].connect(T0, peer, &[scope()], &access);
    drop(nodes[0].take(out));
    let out = nodes[2].engine.bootstrap(T0, server, scope());
    let q = tag(nodes[2].take(out), 2);
    run(&mut nodes, &access, T0, q);
    assert!(
        nodes[2]
            .events
            .iter()
            .any(|e| matches!(e, Event::Bootstrapped { records: 8, .. })),
        "{:?}",
        nodes[2].events
    );
    assert_eq!(size(&nodes[2], 10), size(&nodes[0], 10));
    assert_eq!(size(&nodes[2], 11), size(&nodes[0], 11));
    assert!(identical(&nodes));

    // Repair: node 1 loses the big record behind the engine's back.
    nodes[1]
        .store
        .overwrite_document(&scope(), &uid(11), RecordDoc::new());
    tick_all(&mut nodes, &access, T0 + 1_000);
    tick_all(&mut nodes, &access, T0 + 2_000);
    assert!(identical(&nodes));
    assert!(!nodes.iter().any(|n| {
        n.events
            .iter()
            .any(|e| matches!(e, Event::Oversized { .. }))
    }));
}

#[test]
fn a_long_description_travels_in_the_feed() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    // 100,000 characters: its change is well over the old 64 KiB limit.
    let text = noise(100_000, 3);
    let w = LocalWrite {
        scope: scope(),
        uid: uid(1),
        edits: vec![Edit::update_text("description", text.clone())],
    };
    let written = nodes[0].try_write(T0, &[w], &access).unwrap();
    let change: usize = written
        .output
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::StoreBatch { bytes, .. } => Some(bytes.len()),
            _ => None,
        })
        .sum();
    assert!(change > 64 << 10, "{change} bytes");
    let q = nodes[0].take(written.output);
    run(&mut nodes, &access, T0, tag(q, 0));
    assert_eq!(
        nodes[1].field(1, "description"),
        Some(FieldValue::Text(text))
    );
}

#[test]
fn writes_beyond_the_limits_are_refused_naming_the_limit_and_change_nothing() {
    let mut nodes: Vec<Node> = (1..=1).map(Node::new).collect();
    let access = acl(&nodes, &[0]);
    let q = nodes[0].write(T0, &access, vec![big(1, 1 << 20)]);
    drop(q);
    let head = labmesh_sync::Store::local_head(&nodes[0].store).unwrap();
    // Growing the record past the limit.
    let err = nodes[0]
        .try_write(T0 + 1, &[big(1, MAX_RECORD_BYTES + 1000)], &access)
        .unwrap_err();
    assert!(
        matches!(
            err,
            WriteError::RecordTooLarge {
                max: MAX_RECORD_BYTES,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("shared records are limited to") && text.contains("shorten"),
        "{text}"
    );
    // One change beyond what a feed entry carries.
    let err = nodes[0]
        .try_write(T0 + 2, &[big(2, MAX_CHANGE_BYTES + 10)], &access)
        .unwrap_err();
    assert!(matches!(err, WriteError::ChangeTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("split the edit"), "{err}");
    // Nothing changed: the feed head and the record are as they were, and
    // the next write continues the feed.
    assert_eq!(
        labmesh_sync::Store::local_head(&nodes[0].store).unwrap(),
        head
    );
    let written = nodes[0].try_write(T0 + 3, &[big(3, 10)], &access).unwrap();
    assert_eq!(written.receipts[0].seq, head.0 + 1);
}

#[test]
fn an_engine_restored_from_the_store_writes_above_every_clock_the_last_one_observed() {
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    let access = acl(&nodes, &[0, 1]);
    let q = mesh(&mut nodes, &access);
    run(&mut nodes, &access, T0, q);
    let ahead = T0 + 600_000;
    let q = nodes[0].set(ahead, &access, 1, "key", s("future"));
    run(&mut nodes, &access, T0, tag(q, 0));
    // The node builds a fresh engine per local write, from the store.
    nodes[1].restart();
    let w = LocalWrite {
        scope: scope(),
        uid: uid(1),
        edits: vec![Edit::set("key", s("now"))],
    };
    let written = nodes[1].try_write(T0 + 1, &[w], &access).unwrap();
    assert!(
        written.receipts[0].hlc.ms >= ahead,
        "{:?} is below the observed {ahead}",
        written.receipts[0].hlc
    );
}
