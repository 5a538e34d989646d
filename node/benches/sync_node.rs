//! The sync engine through the node: real SQLite instances, documents and
//! rows in one transaction, access from real tokens. Messages between the
//! nodes are handed over in memory (the transport is measured by the
//! `mesh` bench), so the figures are the node's own cost. Prints them
//! (`cargo bench -p labmesh --bench sync_node`).
//!
//! Targets (issue 6):
//! - local writes to shared records >= 10,000 records/s in batches;
//! - unshared records pay nothing measurable (<= 5 % over the save path);
//! - apply incremental remote changes >= 10,000 records/s;
//! - apply a bootstrap snapshot >= 50,000 records/s.
//!
//! `LABMESH_BENCH_RECORDS` (default 20000) sets the size.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use labmesh::mesh::session::SyncSession;
use labmesh::{InitOptions, Instance, ListOptions, SaveOptions};
use labmesh_crypto::{PublicKey, Role, Scope};
use labmesh_sync::{Outgoing, ScopeId};

fn records() -> usize {
    std::env::var("LABMESH_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

struct Node {
    lab: Instance,
    session: SyncSession,
    key: PublicKey,
}

fn node(dir: &std::path::Path, name: &str) -> Node {
    let lab = Instance::init(
        dir.join(name),
        &InitOptions {
            name: Some(name.into()),
            user: Some("bench".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let session = SyncSession::new(&lab).unwrap();
    let key = lab.public_key().unwrap();
    Node { lab, session, key }
}

/// Delivers messages between nodes until none are left; returns the time
/// each node spent handling them.
fn pump(nodes: &mut [&mut Node], first: Vec<Outgoing>, from: PublicKey) -> Vec<Duration> {
    let mut spent = vec![Duration::ZERO; nodes.len()];
    let mut queue: VecDeque<(PublicKey, Outgoing)> = first.into_iter().map(|m| (from, m)).collect();
    for round in 0..8 {
        while let Some((sender, msg)) = queue.pop_front() {
            let Some(i) = nodes.iter().position(|n| n.key == msg.to) else {
                continue;
            };
            let n = &mut nodes[i];
            let started = Instant::now();
            let replies = n.session.handle(&n.lab, sender, &msg.bytes).unwrap();
            spent[i] += started.elapsed();
            let me = n.key;
            queue.extend(replies.into_iter().map(|r| (me, r)));
        }
        if round < 7 {
            for (i, n) in nodes.iter_mut().enumerate() {
                let me = n.key;
                let started = Instant::now();
                let out = n.session.tick(&n.lab).unwrap();
                spent[i] += started.elapsed();
                queue.extend(out.into_iter().map(|r| (me, r)));
            }
        }
    }
    spent
}

fn files(dir: &std::path::Path, tag: &str, n: usize) -> Vec<PathBuf> {
    let d = dir.join(tag);
    std::fs::create_dir_all(&d).unwrap();
    (0..n)
        .map(|i| {
            let p = d.join(format!("{tag}{i:06}.csv"));
            std::fs::write(&p, format!("id,v\n{i},{tag}\n")).unwrap();
            p
        })
        .collect()
}

/// This process's CPU seconds so far: (user, system).
fn cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // utime, stime in USER_HZ (100 on Linux).
    (
        f.get(11).copied().unwrap_or(0.0) / 100.0,
        f.get(12).copied().unwrap_or(0.0) / 100.0,
    )
}

fn per_sec(n: usize, d: Duration) -> String {
    format!("{:.1} k/s", n as f64 / d.as_secs_f64() / 1e3)
}

/// Saving 1,000 files in one call: an instance that shares nothing, one
/// that shares a collection these files are not in, one that shares its
/// whole instance (so every file gets a document). Median of 5 each.
fn unshared_cost(dir: &std::path::Path) {
    let mut medians = Vec::new();
    for (tag, setup) in [("plain", 0), ("other", 1), ("shared", 2)] {
        let mut samples = Vec::new();
        for round in 0..5 {
            let lab = Instance::init(
                dir.join(format!("save-{tag}-{round}")),
                &InitOptions {
                    user: Some("bench".into()),
                    ..Default::default()
                },
            )
            .unwrap();
            if setup >= 1 {
                let p = lab.root().join("seed.csv");
                std::fs::write(&p, "seed\n").unwrap();
                let uid = lab.save(&p, &SaveOptions::default()).unwrap().artifact.uid;
                lab.add_collection("seed", &[uid], None, false).unwrap();
                lab.share(if setup == 1 {
                    "collection:seed"
                } else {
                    "instance"
                })
                .unwrap();
            }
            let paths = files(lab.root(), &format!("s{round}"), 1000);
            let started = Instant::now();
            lab.save_many(&paths, &SaveOptions::default()).unwrap();
            samples.push(started.elapsed());
        }
        samples.sort();
        medians.push((tag, samples[2]));
    }
    let base = medians[0].1.as_secs_f64();
    for (tag, d) in &medians {
        println!(
            "save 1,000 files, {:<46} median {:>7.1} ms  ({:+.1} % vs nothing shared)",
            match *tag {
                "plain" => "nothing shared:",
                "other" => "a collection shared, these files not in it:",
                _ => "the instance shared (a document each):",
            },
            d.as_secs_f64() * 1e3,
            (d.as_secs_f64() / base - 1.0) * 100.0
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = records();
    let work =
        tempfile::tempdir_in(std::env::var("LABMESH_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    let dir = work.path();
    if std::env::var_os("LABMESH_BENCH_SKIP_SAVES").is_none() {
        unshared_cost(dir);
    }

    let (mut a, mut b, mut c) = (node(dir, "a"), node(dir, "b"), node(dir, "c"));
    let paths = files(a.lab.root(), "r", n);
    for chunk in paths.chunks(5_000) {
        a.lab.save_many(chunk, &SaveOptions::default()).unwrap();
    }
    // Local writes in one batch: sharing the instance writes a document
    // (and a signed feed entry) for every record, in one transaction.
    let started = Instant::now();
    let share = a.lab.share("instance").unwrap();
    let took = started.elapsed();
    println!(
        "local writes to shared records in one batch: {n} documents + feed in {:.2} s = {}",
        took.as_secs_f64(),
        per_sec(n, took)
    );
    let scope = ScopeId::new(&share.scope).unwrap();
    for other in [&b, &c] {
        a.lab
            .grant(&other.key, Role::Read, Scope::Instance, 0, i64::MAX)
            .unwrap();
        other
            .lab
            .subscribe(&a.key.to_string(), &share.scope)
            .unwrap();
    }

    // Incremental: B takes A's feed (signed batches), verifies, authorizes,
    // applies documents and rows.
    a.session
        .connect(&a.lab, b.key, std::slice::from_ref(&scope))
        .unwrap();
    let out = b
        .session
        .connect(&b.lab, a.key, std::slice::from_ref(&scope))
        .unwrap();
    let kb = b.key;
    let before = cpu();
    let spent = pump(&mut [&mut a, &mut b], out, kb);
    let after = cpu();
    let got = b
        .lab
        .list(&ListOptions {
            limit: 10_000_000,
            ..Default::default()
        })
        .unwrap()
        .len();
    assert_eq!(got, n, "B has every record");
    println!(
        "incremental remote changes: {got} records applied by the subscriber in {:.2} s = {} \
         (the owner spent {:.2} s serving; both: {:.2} s user, {:.2} s system CPU)",
        spent[1].as_secs_f64(),
        per_sec(got, spent[1]),
        spent[0].as_secs_f64(),
        after.0 - before.0,
        after.1 - before.1
    );

    if std::env::var_os("LABMESH_BENCH_SKIP_BOOTSTRAP").is_some() {
        return;
    }
    // Bootstrap: C takes a snapshot (documents as they are) instead.
    a.session
        .connect(&a.lab, c.key, std::slice::from_ref(&scope))
        .unwrap();
    let mut out = c
        .session
        .connect(&c.lab, a.key, std::slice::from_ref(&scope))
        .unwrap();
    out.extend(c.session.bootstrap(&c.lab, a.key, &scope).unwrap());
    let kc = c.key;
    let before = cpu();
    let spent = pump(&mut [&mut a, &mut c], out, kc);
    let after = cpu();
    let got = c
        .lab
        .list(&ListOptions {
            limit: 10_000_000,
            ..Default::default()
        })
        .unwrap()
        .len();
    assert_eq!(got, n, "C has every record");
    println!(
        "bootstrap snapshot: {got} records applied by the subscriber in {:.2} s = {} \
         (the owner spent {:.2} s serving; both: {:.2} s user, {:.2} s system CPU)",
        spent[1].as_secs_f64(),
        per_sec(got, spent[1]),
        spent[0].as_secs_f64(),
        after.0 - before.0,
        after.1 - before.1
    );
}
