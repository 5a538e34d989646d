//! Refused changes and revocations: a revocation takes effect at its own
//! time; changes stamped after it are refused everywhere, changes built on
//! them too, feeds move on, replicas that applied them too early rebuild,
//! and repair does not repeat what a peer refused.

use labmesh_sync::memory::StaticAccess;
use labmesh_sync::{Edit, Event, FieldValue, LocalWrite, Outgoing, Rejection};

use crate::harness::*;

/// The revocation of node 1's write right: changes after `R` are invalid.
const R: u64 = T0 + 100;

struct Mesh {
    nodes: Vec<Node>,
    /// Before anyone knew of the revocation.
    base: StaticAccess,
    /// With the revocation.
    knows: StaticAccess,
}

/// Node 0 owns, nodes 1 and 2 write, nodes 3.. read. Node 1's right ends at `R`.
fn setup(n: u8) -> Mesh {
    let nodes: Vec<Node> = (1..=n).map(Node::new).collect();
    let base = acl(&nodes, &[0, 1, 2]);
    let mut knows = base.clone();
    knows.revoke_write(nodes[1].id(), &scope(), R);
    Mesh { nodes, base, knows }
}

fn connect_all(m: &mut Mesh) {
    let q = mesh(&mut m.nodes, &m.base);
    drop(q);
}

/// Node `i` handles every message in `q` meant for it (from node `from`).
fn deliver(
    m: &mut Mesh,
    i: usize,
    from: usize,
    q: &[Outgoing],
    access: &StaticAccess,
    now: u64,
) -> Vec<Event> {
    let (to, sender) = (m.nodes[i].id(), m.nodes[from].id());
    let mut events = Vec::new();
    for msg in q.iter().filter(|m| m.to == to && m.bytes[1] == 3) {
        let out = m.nodes[i].handle(now, sender, &msg.bytes, access);
        events.extend(out.events.iter().cloned());
        m.nodes[i].take(out);
    }
    events
}

fn write(
    m: &mut Mesh,
    i: usize,
    now: u64,
    n: u32,
    field: &str,
    value: FieldValue,
) -> Vec<Outgoing> {
    let w = LocalWrite {
        scope: scope(),
        uid: uid(n),
        edits: vec![Edit::set(field, value)],
    };
    let access = m.base.clone();
    m.nodes[i].write(now, &access, vec![w])
}

fn rejected(events: &[Event]) -> Vec<Rejection> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_entry_built_on_a_refused_change_is_refused_and_its_feed_goes_on() {
    let mut m = setup(5);
    connect_all(&mut m);
    let (base, knows) = (m.base.clone(), m.knows.clone());
    // Node 1 creates record 1 before its revocation: valid everywhere.
    let q = write(&mut m, 1, T0, 1, "key", s("a"));
    for i in [2, 3, 4] {
        deliver(&mut m, i, 1, &q, &base, T0);
    }
    // After the revocation, node 1 (not knowing) edits; node 2 (not
    // knowing) applies it and builds on it, then writes something else.
    let c1 = write(&mut m, 1, R + 100, 1, "key", s("after"));
    deliver(&mut m, 2, 1, &c1, &base, R + 100);
    let e = write(&mut m, 2, R + 200, 1, "size", FieldValue::Int(5));
    let f = write(&mut m, 2, R + 201, 2, "key", s("independent"));
    // Node 3 knows: it refuses node 1's change, then node 2's change on
    // top of it, and still applies node 2's next batch.
    let ev = deliver(&mut m, 3, 1, &c1, &knows, R + 300);
    assert_eq!(rejected(&ev), vec![Rejection::NotAuthorized]);
    let ev = deliver(&mut m, 3, 2, &e, &knows, R + 300);
    assert_eq!(rejected(&ev), vec![Rejection::DependsOnRefused]);
    deliver(&mut m, 3, 2, &f, &knows, R + 300);
    assert_eq!(
        m.nodes[3].field(2, "key"),
        Some(s("independent")),
        "the feed went on"
    );
    assert_eq!(m.nodes[3].field(1, "key"), Some(s("a")));
    assert_eq!(m.nodes[3].field(1, "size"), None);
    assert_eq!(m.nodes[3].store.refused_count(&scope()), 2);

    // The refusal is stored: node 4 refuses node 1's change, restarts (a
    // new engine from its store), and then refuses the dependent change.
    let ev = deliver(&mut m, 4, 1, &c1, &knows, R + 300);
    assert_eq!(rejected(&ev), vec![Rejection::NotAuthorized]);
    m.nodes[4].restart();
    connect_again(&mut m, 4, &knows);
    let ev = deliver(&mut m, 4, 2, &e, &knows, R + 300);
    assert_eq!(rejected(&ev), vec![Rejection::DependsOnRefused]);
    deliver(&mut m, 4, 2, &f, &knows, R + 300);
    assert_eq!(m.nodes[4].field(2, "key"), Some(s("independent")));
}

fn connect_again(m: &mut Mesh, i: usize, access: &StaticAccess) {
    let ids: Vec<_> = m.nodes.iter().map(Node::id).collect();
    for (j, id) in ids.into_iter().enumerate() {
        if j != i {
            let out = m.nodes[i].connect(T0, id, &[scope()], access);
            drop(m.nodes[i].take(out));
        }
    }
}

#[test]
fn replicas_that_applied_a_change_before_learning_of_its_revocation_rebuild_and_converge() {
    // 0 owner, 1 revoked writer, 2 writer, 3 a reader that knew in time,
    // 4 a reader that learns late.
    let mut m = setup(5);
    connect_all(&mut m);
    let base = m.base.clone();
    let q = write(&mut m, 1, T0, 1, "key", s("a"));
    for i in [2, 3, 4] {
        deliver(&mut m, i, 1, &q, &base, T0);
    }
    let c1 = write(&mut m, 1, R + 100, 1, "key", s("after"));
    for i in [2, 4] {
        deliver(&mut m, i, 1, &c1, &base, R + 100);
    }
    let e = write(&mut m, 2, R + 200, 1, "size", FieldValue::Int(5));
    deliver(&mut m, 4, 2, &e, &base, R + 200);
    assert_eq!(m.nodes[4].field(1, "size"), Some(FieldValue::Int(5)));

    // Node 2 learns of the revocation: it drops node 1's late change and
    // its own change built on it.
    let mut accesses: Vec<StaticAccess> = vec![
        m.knows.clone(),
        base.clone(),
        m.knows.clone(),
        m.knows.clone(),
        base.clone(),
    ];
    let revoked = m.nodes[1].id();
    let node = &mut m.nodes[2];
    let out = node
        .engine
        .revalidate(R + 300, &scope(), Some(&revoked), &node.store, &accesses[2]);
    assert!(
        out.events.iter().any(|e| matches!(
            e,
            Event::Rebuilt {
                records: 1,
                changes: 2,
                ..
            }
        )),
        "{:?}",
        out.events
    );
    node.take(out);
    assert_eq!(m.nodes[2].field(1, "key"), Some(s("a")));
    assert_eq!(m.nodes[2].field(1, "size"), None);

    // Node 2 writes the record again: its change reuses the sequence number
    // of the one it dropped. Node 4, which still holds that one, waits
    // rather than refusing an honest change.
    let g = write(&mut m, 2, R + 400, 1, "size", FieldValue::Int(6));
    let ev = deliver(&mut m, 4, 2, &g, &base, R + 400);
    assert!(rejected(&ev).is_empty(), "{ev:?}");
    assert_eq!(
        m.nodes[4].field(1, "size"),
        Some(FieldValue::Int(5)),
        "waits"
    );

    // Everyone learns; anti-entropy converges on the document every
    // replica that knew in time would reach.
    for (i, a) in accesses.iter_mut().enumerate() {
        *a = m.knows.clone();
        if [1, 4].contains(&i) {
            let revoked = m.nodes[1].id();
            let node = &mut m.nodes[i];
            let out = node
                .engine
                .revalidate(R + 500, &scope(), Some(&revoked), &node.store, a);
            node.take(out);
        }
    }
    for round in 0..4 {
        tick_each(&mut m.nodes, &accesses, R + 1_000 * (round + 1));
    }
    assert!(identical(&m.nodes), "replicas converge");
    for n in &m.nodes {
        assert_eq!(n.field(1, "key"), Some(s("a")));
        assert_eq!(n.field(1, "size"), Some(FieldValue::Int(6)));
    }
}

#[test]
fn repair_does_not_repeat_an_exchange_the_peer_refused() {
    // Node 2 (a writer) applied node 1's late change; node 0 (the owner)
    // knows of the revocation. Both sides pass summaries; repair runs once.
    let mut m = setup(3);
    let base = m.base.clone();
    let (w1, w2) = (m.nodes[1].id(), m.nodes[2].id());
    let out = m.nodes[2].connect(T0, w1, &[scope()], &base);
    drop(m.nodes[2].take(out));
    let out = m.nodes[1].connect(T0, w2, &[scope()], &base);
    drop(m.nodes[1].take(out));
    let q = write(&mut m, 1, T0, 1, "key", s("a"));
    deliver(&mut m, 2, 1, &q, &base, T0);
    let c1 = write(&mut m, 1, R + 100, 1, "key", s("after"));
    deliver(&mut m, 2, 1, &c1, &base, R + 100);
    let mut pair = vec![m.nodes.remove(0), m.nodes.remove(1)];
    pair[1].engine.disconnect(&w1);
    let accesses = vec![m.knows.clone(), base.clone()];
    let q = mesh(&mut pair, &base);
    run_each(&mut pair, &accesses, R + 200, q);
    let mut per_round = Vec::new();
    for round in 0..6 {
        let (messages, _) = tick_each(&mut pair, &accesses, R + 1_000 * (round + 1));
        per_round.push(messages);
    }
    assert!(
        !identical(&pair),
        "they still differ: node 1 has not learned"
    );
    assert_eq!(
        per_round[3..],
        [2, 2, 2],
        "only summaries once refused: {per_round:?}"
    );
    assert!(pair[0].events.iter().any(|e| matches!(
        e,
        Event::Rejected {
            reason: Rejection::NotAuthorized,
            ..
        }
    )));
    // Once node 1 learns, its rebuilt record matches and they agree.
    let accesses = vec![m.knows.clone(), m.knows.clone()];
    let revoked = m.nodes[0].id();
    let node = &mut pair[1];
    let out = node.engine.revalidate(
        R + 9_000,
        &scope(),
        Some(&revoked),
        &node.store,
        &accesses[1],
    );
    node.take(out);
    tick_each(&mut pair, &accesses, R + 10_000);
    tick_each(&mut pair, &accesses, R + 11_000);
    assert!(identical(&pair));
}
