//! Sync between real instances: shared scopes, subscription, offline edits
//! on both sides, conflicts and their resolution, write rights from tokens.
//! Messages are handed between sessions in memory here; the same sessions
//! run over libp2p in the daemon (tests/it/mesh.rs end to end).

use std::collections::VecDeque;

use labmesh::mesh::session::SyncSession;
use labmesh::{InitOptions, Instance, ListOptions, SaveOptions};
use labmesh_crypto::{PublicKey, Role, Scope};

struct Node {
    _dir: tempfile::TempDir,
    lab: Instance,
    session: SyncSession,
    key: PublicKey,
}

fn node(user: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let lab = Instance::init(
        dir.path().join("lab"),
        &InitOptions {
            user: Some(user.into()),
            ..Default::default()
        },
    )
    .unwrap();
    let session = SyncSession::new(&lab).unwrap();
    let key = lab.public_key().unwrap();
    Node {
        _dir: dir,
        lab,
        session,
        key,
    }
}

/// Delivers messages (and runs ticks) until the mesh is quiet.
fn pump(nodes: &mut [&mut Node], mut queue: VecDeque<labmesh_sync::Outgoing>, from: PublicKey) {
    let mut queue: VecDeque<(PublicKey, labmesh_sync::Outgoing)> =
        queue.drain(..).map(|m| (from, m)).collect();
    for round in 0..6 {
        while let Some((sender, msg)) = queue.pop_front() {
            let Some(n) = nodes.iter_mut().find(|n| n.key == msg.to) else {
                continue;
            };
            let replies = n.session.handle(&n.lab, sender, &msg.bytes).unwrap();
            let me = n.key;
            queue.extend(replies.into_iter().map(|r| (me, r)));
        }
        if round < 5 {
            for n in nodes.iter_mut() {
                let me = n.key;
                let out = n.session.tick(&n.lab).unwrap();
                queue.extend(out.into_iter().map(|r| (me, r)));
            }
        }
    }
}

fn connect(a: &mut Node, b: &mut Node, scope: &labmesh_sync::ScopeId) {
    let out_a = a
        .session
        .connect(&a.lab, b.key, std::slice::from_ref(scope))
        .unwrap();
    let out_b = b
        .session
        .connect(&b.lab, a.key, std::slice::from_ref(scope))
        .unwrap();
    let (ka, kb) = (a.key, b.key);
    pump(&mut [a, b], out_a.into(), ka);
    // b's opening messages too.
    let _ = kb;
    let _ = out_b;
}

fn keys(lab: &Instance) -> Vec<String> {
    let mut k: Vec<String> = lab
        .list(&ListOptions::default())
        .unwrap()
        .into_iter()
        .filter_map(|a| a.key)
        .collect();
    k.sort();
    k
}

#[test]
fn share_subscribe_edit_offline_converge_and_resolve() {
    let (mut a, mut b) = (node("alice"), node("bob"));
    let write = |n: &Node, rel: &str, content: &str| {
        let p = n.lab.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        n.lab
            .save(
                &p,
                &SaveOptions {
                    description: Some(format!("{rel} by {}", n.lab.user())),
                    ..Default::default()
                },
            )
            .unwrap()
    };
    write(&a, "raw/plate1.csv", "1");
    let p2 = write(&a, "raw/plate2.csv", "2").artifact;

    // Lab A shares its instance and gives lab B write access.
    let scope = a.lab.share("instance").unwrap();
    assert_eq!(scope.records, 2);
    let token_scope = Scope::Instance;
    a.lab
        .grant(&b.key, Role::Write, token_scope, 0, i64::MAX)
        .unwrap();
    let scope_id = labmesh_sync::ScopeId::new(&scope.scope).unwrap();
    b.lab.subscribe(&a.key.to_string(), &scope.scope).unwrap();
    connect(&mut a, &mut b, &scope_id);
    let out = b
        .session
        .connect(&b.lab, a.key, std::slice::from_ref(&scope_id))
        .unwrap();
    let kb = b.key;
    pump(&mut [&mut a, &mut b], out.into(), kb);

    assert_eq!(
        keys(&b.lab),
        ["raw/plate1.csv", "raw/plate2.csv"],
        "B sees A's artifacts"
    );
    let remote = b.lab.get("raw/plate2.csv").unwrap();
    assert_eq!(remote.origin, a.lab.peer_id(), "origin is lab A");
    assert_eq!(remote.created_by, "alice");
    assert_eq!(remote.hash, p2.hash);

    // Offline: both give plate2 a description it did not have (two new
    // values of one field: a conflict); both edit different parts of
    // plate1's description (a text: the edits interleave); A also adds an
    // artifact, B trashes plate1.
    a.lab.set_description("raw/plate2.csv", None).unwrap();
    let out = a.lab.take_outbox();
    let ka = a.key;
    pump(&mut [&mut a, &mut b], out.into(), ka);
    let out = a.session.tick(&a.lab).unwrap();
    pump(&mut [&mut a, &mut b], out.into(), ka);
    assert_eq!(b.lab.get("raw/plate2.csv").unwrap().description, None);
    a.lab
        .set_description("raw/plate2.csv", Some("A's words"))
        .unwrap();
    b.lab
        .set_description("raw/plate2.csv", Some("B's words"))
        .unwrap();
    a.lab
        .set_description("raw/plate1.csv", Some("checked: raw/plate1.csv by alice"))
        .unwrap();
    b.lab
        .set_description(
            "raw/plate1.csv",
            Some("raw/plate1.csv by alice (bubble in A3)"),
        )
        .unwrap();
    write(&a, "raw/plate3.csv", "3");
    b.lab.delete("raw/plate1.csv", false).unwrap();
    a.lab.take_outbox();
    b.lab.take_outbox();

    // Reconnect: both catch up both ways.
    let out = a
        .session
        .connect(&a.lab, b.key, std::slice::from_ref(&scope_id))
        .unwrap();
    pump(&mut [&mut a, &mut b], out.into(), ka);
    let out = b
        .session
        .connect(&b.lab, a.key, std::slice::from_ref(&scope_id))
        .unwrap();
    pump(&mut [&mut a, &mut b], out.into(), kb);
    for n in [&a, &b] {
        assert_eq!(
            keys(&n.lab),
            ["raw/plate2.csv", "raw/plate3.csv"],
            "{}: plate1 trashed everywhere, plate3 everywhere",
            n.lab.user()
        );
    }
    // Trashed records keep their document: the interleaved text is there.
    let trashed = b
        .lab
        .list(&ListOptions {
            trash: true,
            ..Default::default()
        })
        .unwrap();
    let merged = trashed[0].description.clone().unwrap_or_default();
    assert_eq!(merged, "checked: raw/plate1.csv by alice (bubble in A3)");
    let (da, db) = (
        a.lab.get("raw/plate2.csv").unwrap().description,
        b.lab.get("raw/plate2.csv").unwrap().description,
    );
    assert_eq!(da, db, "both show the same default winner");
    let conflicts_a = a.lab.conflicts().unwrap();
    let conflicts_b = b.lab.conflicts().unwrap();
    assert_eq!(conflicts_a.len(), 1, "{conflicts_a:?}");
    assert_eq!(conflicts_a[0].field, "description");
    let mut values = conflicts_a[0].values.clone();
    values.sort();
    assert_eq!(
        values,
        ["A's words", "B's words"],
        "both values stay visible"
    );
    assert_eq!(conflicts_b.len(), 1);
    assert_eq!(conflicts_b[0].values.len(), 2);

    // Resolving on A resolves everywhere.
    b.lab
        .resolve(&p2.uid, "description", "agreed words")
        .unwrap();
    let out = b.lab.take_outbox();
    pump(&mut [&mut a, &mut b], out.into(), kb);
    let out = a.session.tick(&a.lab).unwrap();
    pump(&mut [&mut a, &mut b], out.into(), ka);
    for n in [&a, &b] {
        assert!(n.lab.conflicts().unwrap().is_empty(), "{}", n.lab.user());
        assert_eq!(
            n.lab.get("raw/plate2.csv").unwrap().description.as_deref(),
            Some("agreed words")
        );
    }
}

#[test]
fn a_reader_cannot_write_and_revocation_stops_a_writer() {
    let (mut a, mut b) = (node("alice"), node("bob"));
    let p = a.lab.root().join("x.csv");
    std::fs::write(&p, "x").unwrap();
    a.lab.save(&p, &SaveOptions::default()).unwrap();
    let scope = a.lab.share("instance").unwrap();
    let scope_id = labmesh_sync::ScopeId::new(&scope.scope).unwrap();
    a.lab
        .grant(&b.key, Role::Read, Scope::Instance, 0, i64::MAX)
        .unwrap();
    b.lab.subscribe(&a.key.to_string(), &scope.scope).unwrap();
    let out = b
        .session
        .connect(&b.lab, a.key, std::slice::from_ref(&scope_id))
        .unwrap();
    let kb = b.key;
    a.session
        .connect(&a.lab, b.key, std::slice::from_ref(&scope_id))
        .unwrap();
    pump(&mut [&mut a, &mut b], out.into(), kb);
    assert_eq!(keys(&b.lab), ["x.csv"]);

    // Read-only: B's own engine refuses to write into A's scope.
    let err = b
        .lab
        .set_description("x.csv", Some("mine"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sync"), "{err}");
    assert_eq!(
        b.lab.get("x.csv").unwrap().description,
        None,
        "nothing half-written"
    );

    // A grants write, B writes, A revokes, B's next write is refused.
    let t = a
        .lab
        .grant(&b.key, Role::Write, Scope::Instance, 0, i64::MAX)
        .unwrap();
    let out = a.session.tick(&a.lab).unwrap();
    let ka = a.key;
    pump(&mut [&mut a, &mut b], out.into(), ka);
    let out = b
        .session
        .connect(&b.lab, a.key, std::slice::from_ref(&scope_id))
        .unwrap();
    pump(&mut [&mut a, &mut b], out.into(), kb);
    b.lab
        .set_description("x.csv", Some("bob was here"))
        .unwrap();
    let out = b.lab.take_outbox();
    pump(&mut [&mut a, &mut b], out.into(), kb);
    assert_eq!(
        a.lab.get("x.csv").unwrap().description.as_deref(),
        Some("bob was here"),
        "A accepted B's write"
    );

    a.lab.revoke(&t.id(), Some("project over")).unwrap();
    let out = a.lab.take_outbox();
    pump(&mut [&mut a, &mut b], out.into(), ka);
    let out = b
        .session
        .connect(&b.lab, a.key, std::slice::from_ref(&scope_id))
        .unwrap();
    pump(&mut [&mut a, &mut b], out.into(), kb);
    let err = b
        .lab
        .set_description("x.csv", Some("after revocation"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sync"), "{err}");
    assert_eq!(
        a.lab.get("x.csv").unwrap().description.as_deref(),
        Some("bob was here")
    );
}

#[test]
fn the_example_mesh_config_loads_and_validates() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/mesh-node.toml");
    let config = labmesh::config::Config::load(&path).unwrap();
    let net = config.net().unwrap();
    let listen: Vec<String> = net.listen.iter().map(ToString::to_string).collect();
    assert_eq!(
        listen,
        ["/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/tcp/4001"]
    );
    assert!(!net.mdns, "a routed server does not use mDNS");
    assert_eq!(net.request_timeout, std::time::Duration::from_secs(30));
    assert_eq!(net.idle_timeout, std::time::Duration::from_secs(300));
    assert_eq!(net.max_content_streams, 32);
    // A short-lived process listens on the same interfaces, free ports.
    let once = labmesh::daemon::ephemeral(net);
    let listen: Vec<String> = once.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["/ip4/0.0.0.0/udp/0/quic-v1", "/ip4/0.0.0.0/tcp/0"]);
}

#[test]
fn a_bad_mesh_config_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[instance]\nname = \"x\"\n[user]\nhandle = \"u\"\n[storage]\ndefault = \".labmesh/storage\"\n\
         [mesh]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nmax_message_bytes = 0\n",
    )
    .unwrap();
    let config = labmesh::config::Config::load(&path).unwrap();
    let err = config.net().unwrap_err().to_string();
    assert!(err.contains("max_message_bytes"), "{err}");
}
