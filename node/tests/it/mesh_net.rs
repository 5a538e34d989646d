//! Real nodes on real libp2p connections (QUIC on 127.0.0.1), in one test
//! process: daemons on their own threads, one-shot sync rounds, and the
//! access rules a serving node enforces — expired, foreign and forged
//! tokens get nothing; a delegator's revocation reaches the root; a
//! revoked writer's earlier edits stay valid for later subscribers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use labmesh::daemon::{DaemonEvent, DaemonOptions};
use labmesh::{InitOptions, Instance, ListOptions, SaveOptions};
use labmesh_crypto::token::{NO_EXPIRY, Scope};
use labmesh_crypto::{NodeKey, Role, Token};
use labmesh_sync::net::NetConfig;

/// A lab: an instance in a temporary directory.
struct Lab {
    _dir: tempfile::TempDir,
    root: PathBuf,
    lab: Instance,
}

fn lab(name: &str) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(name);
    let lab = Instance::init(
        &root,
        &InitOptions {
            name: Some(name.into()),
            user: Some(format!("{name}-user")),
            ..Default::default()
        },
    )
    .unwrap();
    Lab {
        _dir: dir,
        root,
        lab,
    }
}

/// `labmesh serve` on a thread, stopped on drop.
struct Serving {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    address: String,
}

fn serve(root: &Path) -> Serving {
    let stop = Arc::new(AtomicBool::new(false));
    let opts = DaemonOptions::serve(NetConfig::loopback()).stoppable(stop.clone());
    let (tx, rx) = mpsc::channel();
    let root = root.to_path_buf();
    let thread = std::thread::spawn(move || {
        labmesh::daemon::run(&root, opts, |e| {
            if let DaemonEvent::Listening(a) = e
                && a.contains("/quic-v1/")
            {
                let _ = tx.send(a);
            }
        })
        .unwrap();
    });
    let address = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    Serving {
        stop,
        thread: Some(thread),
        address,
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One `labmesh sync` round.
fn sync(root: &Path) -> labmesh::daemon::DaemonReport {
    let opts = DaemonOptions::once(NetConfig::loopback(), Duration::from_secs(20), None);
    labmesh::daemon::run(root, opts, |_| {}).unwrap()
}

fn remote_keys(l: &Lab, owner: &Lab) -> Vec<String> {
    let mut keys: Vec<String> = l
        .lab
        .list(&ListOptions {
            origin: Some(owner.lab.peer_id().to_string()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter_map(|a| a.key)
        .collect();
    keys.sort();
    keys
}

/// Saves files in `a` and collects them; returns the collection's stem.
fn collection(a: &Lab, files: &[&str]) -> String {
    let mut keys = Vec::new();
    for f in files {
        let p = a.root.join(f);
        std::fs::write(&p, format!("content of {f}\n")).unwrap();
        keys.push(
            a.lab
                .save(&p, &SaveOptions::default())
                .unwrap()
                .artifact
                .uid,
        );
    }
    let c = a.lab.add_collection("plates", &keys, None, false).unwrap();
    c.record.uid[..16].to_string()
}

fn grant(a: &Lab, to: &Lab, role: Role, stem: &str, not_before: i64, expires: i64) -> Token {
    a.lab
        .grant(
            &to.lab.public_key().unwrap(),
            role,
            Scope::collection(stem).unwrap(),
            not_before,
            expires,
        )
        .unwrap()
}

fn now() -> i64 {
    labmesh::time::now_ms() / 1000
}

fn until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not within 30 s: {what}");
}

fn denied_events(l: &Lab) -> usize {
    l.lab
        .mesh_status()
        .unwrap()
        .events
        .iter()
        .filter(|e| e.kind == "denied")
        .count()
}

#[test]
fn expired_foreign_and_forged_tokens_get_nothing() {
    let (a, c) = (lab("lab-a"), lab("lab-c"));
    let stem = collection(&a, &["p1.csv", "p2.csv"]);
    let scope = format!("collection:{stem}");
    a.lab.share(&scope).unwrap();
    a.lab
        .import_identity(&c.lab.export_identity(None).unwrap())
        .unwrap();
    let serving = serve(&a.root);
    c.lab.add_peer(&serving.address, Some("lab-a")).unwrap();
    c.lab.subscribe("lab-a", &scope).unwrap();

    // No token at all.
    sync(&c.root);
    assert!(remote_keys(&c, &a).is_empty());

    // A token that expired five minutes ago (beyond the clock-skew leeway).
    let expired = grant(&a, &c, Role::Read, &stem, now() - 3600, now() - 300);
    c.lab.add_received_token(&expired).ok();
    sync(&c.root);
    assert!(
        remote_keys(&c, &a).is_empty(),
        "an expired token reads nothing"
    );

    // A token lab C issued itself for lab A's scope: the wrong root.
    let c_key = NodeKey::load_file(c.root.join(".labmesh/node.key")).unwrap();
    let foreign = Token::issue(
        &c_key,
        c.lab.public_key().unwrap(),
        Role::Admin,
        Scope::collection(&stem).unwrap(),
        0,
        NO_EXPIRY,
    )
    .unwrap();
    c.lab.add_received_token(&foreign).ok();
    sync(&c.root);
    assert!(
        remote_keys(&c, &a).is_empty(),
        "a foreign root grants nothing"
    );

    // A forged token: lab A's root block, re-signed by someone else.
    let real = grant(&a, &c, Role::Read, &stem, now(), now() + 3600);
    let mut bytes = real.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    if let Ok(forged) = Token::from_bytes(&bytes) {
        assert!(
            c.lab.add_received_token(&forged).is_err(),
            "a token whose signature does not verify is not kept"
        );
    }
    assert!(denied_events(&a) > 0, "lab A logs its refusals");

    // And the real grant works: the mesh was reachable all along.
    c.lab.add_received_token(&real).unwrap();
    sync(&c.root);
    until("lab C reads with a valid token", || {
        sync(&c.root);
        remote_keys(&c, &a) == ["p1.csv", "p2.csv"]
    });
}

#[test]
fn a_delegators_revocation_reaches_the_root_and_cuts_the_delegate_off() {
    let (a, b, c) = (lab("lab-a"), lab("lab-b"), lab("lab-c"));
    let stem = collection(&a, &["p1.csv"]);
    let scope = format!("collection:{stem}");
    a.lab.share(&scope).unwrap();
    for (x, y) in [(&a, &b), (&b, &a), (&b, &c), (&c, &b), (&a, &c), (&c, &a)] {
        x.lab
            .import_identity(&y.lab.export_identity(None).unwrap())
            .unwrap();
    }
    let to_b = grant(&a, &b, Role::Read, &stem, now(), now() + 86_400);
    b.lab.add_received_token(&to_b).unwrap();
    let to_c = b
        .lab
        .delegate(
            &to_b,
            &c.lab.public_key().unwrap(),
            Role::Read,
            Scope::collection(&stem).unwrap(),
            None,
        )
        .unwrap();
    c.lab.add_received_token(&to_c).unwrap();

    let serving = serve(&a.root);
    for l in [&b, &c] {
        l.lab.add_peer(&serving.address, Some("lab-a")).unwrap();
        l.lab.subscribe("lab-a", &scope).unwrap();
    }
    // lab C reads on the strength of the delegated token it shows lab A.
    until("lab C reads through its delegated token", || {
        sync(&c.root);
        remote_keys(&c, &a) == ["p1.csv"]
    });

    // lab B revokes what it passed on; lab A learns it when B connects.
    b.lab.revoke(&to_c.id(), Some("project ended")).unwrap();
    sync(&b.root);
    until("lab A knows of lab B's revocation", || {
        a.lab
            .verify_token(
                &to_c,
                &c.lab.public_key().unwrap(),
                Role::Read,
                &Scope::collection(&stem).unwrap(),
                None,
                now(),
            )
            .is_err()
    });
    let p2 = a.root.join("p2.csv");
    std::fs::write(&p2, "new plate\n").unwrap();
    let uid = a
        .lab
        .save(&p2, &SaveOptions::default())
        .unwrap()
        .artifact
        .uid;
    a.lab.add_collection("plates", &[uid], None, false).unwrap();
    sync(&c.root);
    sync(&c.root);
    assert_eq!(remote_keys(&c, &a), ["p1.csv"], "lab C gets nothing new");
    // lab B, still granted, does.
    until("lab B still reads", || {
        sync(&b.root);
        remote_keys(&b, &a) == ["p1.csv", "p2.csv"]
    });
}

#[test]
fn a_revoked_writers_earlier_edits_stay_valid_for_later_subscribers() {
    let (a, b, c) = (lab("lab-a"), lab("lab-b"), lab("lab-c"));
    let stem = collection(&a, &["p1.csv"]);
    let scope = format!("collection:{stem}");
    a.lab.share(&scope).unwrap();
    for (x, y) in [(&a, &b), (&a, &c), (&b, &a), (&c, &a)] {
        x.lab
            .import_identity(&y.lab.export_identity(None).unwrap())
            .unwrap();
    }
    let write = grant(&a, &b, Role::Write, &stem, now() - 10, now() + 86_400);
    b.lab.add_received_token(&write).unwrap();
    let serving = serve(&a.root);
    b.lab.add_peer(&serving.address, Some("lab-a")).unwrap();
    b.lab.subscribe("lab-a", &scope).unwrap();
    until("lab B has the plate", || {
        sync(&b.root);
        remote_keys(&b, &a) == ["p1.csv"]
    });
    b.lab
        .set_description("p1.csv", Some("annotated by lab B while it could write"))
        .unwrap();
    until("lab A has lab B's edit", || {
        sync(&b.root);
        a.lab.get("p1.csv").unwrap().description.as_deref()
            == Some("annotated by lab B while it could write")
    });
    // Revoked afterwards: the edit was made with rights and stays.
    std::thread::sleep(Duration::from_millis(20));
    a.lab.revoke(&write.id(), None).unwrap();

    let read = grant(&a, &c, Role::Read, &stem, now() - 10, now() + 86_400);
    c.lab.add_received_token(&read).unwrap();
    c.lab.add_peer(&serving.address, Some("lab-a")).unwrap();
    c.lab.subscribe("lab-a", &scope).unwrap();
    until("lab C bootstraps the plate with lab B's edit", || {
        sync(&c.root);
        c.lab
            .get("p1.csv")
            .ok()
            .and_then(|x| x.description)
            .as_deref()
            == Some("annotated by lab B while it could write")
    });
    let rejected: Vec<_> = c
        .lab
        .mesh_status()
        .unwrap()
        .events
        .into_iter()
        .filter(|e| e.kind == "rejected")
        .collect();
    assert!(
        rejected.is_empty(),
        "nothing of lab B's was refused: {rejected:?}"
    );
    // And lab B's edits after the revocation are refused by lab A.
    // (lab B may already know of the revocation and refuse locally.)
    let _ = b
        .lab
        .set_description("p1.csv", Some("written after the revocation"));
    sync(&b.root);
    sync(&b.root);
    assert_eq!(
        a.lab.get("p1.csv").unwrap().description.as_deref(),
        Some("annotated by lab B while it could write")
    );
}
