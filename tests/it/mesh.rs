//! The mesh end to end: `labmesh serve` daemons as separate processes,
//! talking libp2p over QUIC on 127.0.0.1, driven by the CLI as a user
//! would: share, subscribe, sync, ls --from, cache, whereis, conflicts,
//! resolve, revoke. Nothing leaves loopback: every command runs with
//! `LABMESH_LISTEN` on 127.0.0.1 and mDNS off.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use labmesh_tests::Sandbox;
use serde_json::Value;

const LOOPBACK: &str = "/ip4/127.0.0.1/udp/0/quic-v1,/ip4/127.0.0.1/tcp/0";

fn sandbox() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.env.push(("LABMESH_LISTEN".into(), LOOPBACK.into()));
    sb.env.push(("LABMESH_MDNS".into(), "0".into()));
    sb
}

/// A `labmesh serve` process, killed on drop; a failing test prints its log.
struct Serve {
    child: Child,
    /// Its QUIC address with `/p2p/<peer id>`.
    address: String,
    lab: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    fn start(sb: &Sandbox, lab: &str) -> Serve {
        let mut child = sb
            .cmd(lab, &["serve"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start labmesh serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = lines.lock() {
                    l.push(line.clone());
                }
                if let Some(addr) = line.strip_prefix("listening on ")
                    && addr.contains("/quic-v1/")
                {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("labmesh serve printed its QUIC address");
        assert!(address.starts_with("/ip4/127.0.0.1/"), "{address}");
        Serve {
            child,
            address,
            lab: lab.to_string(),
            log,
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Ok(log) = self.log.lock()
        {
            eprintln!("--- labmesh serve in {}:\n{}", self.lab, log.join("\n"));
        }
    }
}

/// Two labs: `a` (the owner) and `b`, each knowing the other's identity.
fn two_labs(sb: &Sandbox) {
    sb.ok(".", &["init", "a", "--name", "lab-a"]);
    sb.ok(".", &["init", "b", "--name", "lab-b"]);
    let a_id = sb.ok("a", &["id", "export"]);
    let b_id = sb.ok("b", &["id", "export"]);
    sb.ok("a", &["id", "import", b_id.trim()]);
    sb.ok("b", &["id", "import", a_id.trim()]);
}

/// Saves two plates in `a` and makes a collection of them; returns its stem.
fn plates(sb: &Sandbox) -> String {
    sb.write("a/p1.csv", "well,od\nA1,0.1\n");
    sb.write("a/p2.csv", "well,od\nA1,0.2\n");
    sb.ok("a", &["save", "p1.csv", "p2.csv"]);
    let c = sb.json(
        "a",
        &[
            "collection",
            "add",
            "plates",
            "--artifact",
            "p1.csv",
            "--artifact",
            "p2.csv",
        ],
    );
    c["uid"].as_str().expect("collection uid")[..16].to_string()
}

fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|a| a["key"].as_str().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

fn description(sb: &Sandbox, lab: &str, key: &str) -> Option<String> {
    sb.json(lab, &["describe", key])["description"]
        .as_str()
        .map(str::to_string)
}

/// Syncs `lab` until `check` holds (a round ends when the summaries match;
/// a change that lands mid-round needs the next), at most 5 rounds.
/// On failure it prints what every round and `status` said.
fn sync_until(sb: &Sandbox, lab: &str, what: &str, mut check: impl FnMut() -> bool) {
    let mut said = String::new();
    for round in 1..=5 {
        let out = sb.run(lab, &["sync", "--timeout", "20"]);
        said += &format!(
            "round {round} ({}):\n{}{}\n",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "labmesh sync failed:\n{said}");
        if check() {
            return;
        }
    }
    let status = sb.run(lab, &["status"]);
    panic!(
        "after 5 sync rounds, still not: {what}\n{said}status:\n{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn share_subscribe_edit_apart_reconnect_and_converge() {
    let sb = sandbox();
    two_labs(&sb);
    let stem = plates(&sb);
    let a = Serve::start(&sb, "a");
    sb.ok("b", &["peer", "add", &a.address, "--name", "lab-a"]);
    let shared = sb.json(
        "a",
        &[
            "share",
            &format!("collection:{stem}"),
            "--with",
            "lab-b",
            "--role",
            "write",
        ],
    );
    assert_eq!(shared["share"]["scope"], format!("collection:{stem}"));
    sb.ok("b", &["subscribe", "lab-a", &format!("collection:{stem}")]);

    // Metadata now, content on demand.
    sync_until(&sb, "b", "lab B lists lab A's plates", || {
        keys(&sb.json("b", &["ls", "--from", "lab-a"])) == ["p1.csv", "p2.csv"]
    });
    let peers = sb.json("b", &["peers"]);
    assert_eq!(peers[0]["name"], "lab-a");
    let cached = sb.json("b", &["cache", "p1.csv"]);
    assert!(
        cached["downloaded_bytes"].as_u64().unwrap_or(0) > 0,
        "{cached}"
    );
    let path = cached["path"].as_str().expect("path");
    assert_eq!(
        std::fs::read(path).expect("cached file"),
        b"well,od\nA1,0.1\n"
    );
    let whereis = sb.json("b", &["whereis", "p1.csv"]);
    assert_eq!(whereis["local"], true, "{whereis}");
    assert!(
        whereis["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .any(|p| p["name"] == "lab-a"),
        "{whereis}"
    );

    // Apart: lab A is down; both edit.
    a.kill();
    sb.ok("a", &["edit", "p1.csv", "-d", "lab A: fine"]);
    sb.ok("b", &["edit", "p1.csv", "-d", "lab B: bubble"]);
    sb.ok("b", &["edit", "p2.csv", "-d", "lab B: re-read"]);
    let out = sb.run("b", &["sync", "--timeout", "3"]);
    assert!(!out.status.success(), "sync with nobody up must fail");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no peer could be reached"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Offline, lab B still queries what it has.
    assert_eq!(
        keys(&sb.json("b", &["ls", "--from", "lab-a"])),
        ["p1.csv", "p2.csv"]
    );

    // Together again: lab A restarts (on a new port) and both converge.
    let a = Serve::start(&sb, "a");
    sb.ok("b", &["peer", "add", &a.address, "--name", "lab-a"]);
    sync_until(&sb, "b", "both labs see the conflict", || {
        !sb.json("a", &["conflicts"])
            .as_array()
            .expect("list")
            .is_empty()
            && !sb
                .json("b", &["conflicts"])
                .as_array()
                .expect("list")
                .is_empty()
    });
    for lab in ["a", "b"] {
        assert_eq!(
            description(&sb, lab, "p2.csv").as_deref(),
            Some("lab B: re-read")
        );
        let conflicts = sb.json(lab, &["conflicts"]);
        let c = &conflicts[0];
        assert_eq!(c["field"], "description");
        let mut values: Vec<&str> = c["values"]
            .as_array()
            .expect("values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort();
        assert_eq!(values, ["lab A: fine", "lab B: bubble"], "{lab}");
    }
    // Both show the same default winner until someone resolves.
    assert_eq!(
        description(&sb, "a", "p1.csv"),
        description(&sb, "b", "p1.csv")
    );
    let uid = sb.json("b", &["describe", "p1.csv"])["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    sb.ok("b", &["resolve", &uid, "description", "bubble, confirmed"]);
    sync_until(&sb, "b", "the resolution reached lab A", || {
        sb.json("a", &["conflicts"])
            .as_array()
            .expect("list")
            .is_empty()
            && description(&sb, "a", "p1.csv").as_deref() == Some("bubble, confirmed")
    });
    let status = sb.json("b", &["status"]);
    let share = &status["shares"][0];
    assert_eq!(share["scope"], format!("collection:{stem}"));
    assert_eq!(share["conflicted"], 0);
}

#[test]
fn a_revoked_reader_gets_nothing_new_and_learns_it_was_revoked() {
    let sb = sandbox();
    two_labs(&sb);
    let stem = plates(&sb);
    let a = Serve::start(&sb, "a");
    sb.ok("b", &["peer", "add", &a.address, "--name", "lab-a"]);
    let shared = sb.json(
        "a",
        &["share", &format!("collection:{stem}"), "--with", "lab-b"],
    );
    let token = shared["token"].as_str().expect("token").to_string();
    sb.ok("b", &["subscribe", "lab-a", &format!("collection:{stem}")]);
    sync_until(&sb, "b", "lab B has the plates", || {
        keys(&sb.json("b", &["ls", "--from", "lab-a"])).len() == 2
    });

    let id = sb.json("a", &["token", "inspect", &token])["token_id"]
        .as_str()
        .expect("token id")
        .to_string();
    sb.ok("a", &["revoke", &id]);
    sb.write("a/p3.csv", "well,od\nA1,0.3\n");
    sb.ok("a", &["save", "p3.csv"]);
    sb.ok(
        "a",
        &["collection", "add", "plates", "--artifact", "p3.csv"],
    );

    // A round with the owner: refused, and told why.
    sb.ok("b", &["sync", "--timeout", "10"]);
    sb.ok("b", &["sync", "--timeout", "10"]);
    assert_eq!(
        keys(&sb.json("b", &["ls", "--from", "lab-a"])),
        ["p1.csv", "p2.csv"],
        "a revoked reader must not receive new records"
    );
    let a_status = sb.json("a", &["status"]);
    assert!(
        a_status["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["kind"] == "denied"),
        "lab A logs the refusal: {a_status}"
    );
    let b_tokens = sb.json("b", &["tokens"]);
    let held = b_tokens
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["token_id"] == id.as_str())
        .unwrap_or_else(|| panic!("lab B lists the token: {b_tokens}"));
    assert!(
        held["state"].as_str().unwrap_or("").contains("revoked"),
        "lab B learns of the revocation in the hello: {held}"
    );
    drop(a);
}

#[test]
fn content_comes_from_a_second_holder_and_a_killed_transfer_resumes() {
    let sb = sandbox();
    sb.ok(".", &["init", "a", "--name", "lab-a"]);
    sb.ok(".", &["init", "b", "--name", "lab-b"]);
    sb.ok(".", &["init", "c", "--name", "lab-c"]);
    let ids: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|l| sb.ok(l, &["id", "export"]).trim().to_string())
        .collect();
    for (lab, others) in [("a", [1, 2]), ("b", [0, 2]), ("c", [0, 1])] {
        for o in others {
            sb.ok(lab, &["id", "import", &ids[o]]);
        }
    }
    // 48 MiB of incompressible bytes: long enough to kill a transfer midway.
    let big: Vec<u8> = (0..48u64 << 20)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect();
    sb.write("a/big.bin", &big);
    sb.ok("a", &["save", "big.bin"]);
    let c = sb.json("a", &["collection", "add", "data", "--artifact", "big.bin"]);
    let stem = c["uid"].as_str().expect("uid")[..16].to_string();
    let scope = format!("collection:{stem}");
    sb.ok("a", &["share", &scope]);
    sb.ok(
        "a",
        &[
            "grant",
            "--to",
            "lab-b",
            "--role",
            "read",
            "--scope",
            &scope,
            "--expires",
            "1d",
        ],
    );
    sb.ok(
        "a",
        &[
            "grant",
            "--to",
            "lab-c",
            "--role",
            "read",
            "--scope",
            &scope,
            "--expires",
            "1d",
        ],
    );

    let a = Serve::start(&sb, "a");
    for lab in ["b", "c"] {
        sb.ok(lab, &["peer", "add", &a.address, "--name", "lab-a"]);
        sb.ok(lab, &["subscribe", "lab-a", &scope]);
        sync_until(&sb, lab, "the subscriber has big.bin's record", || {
            keys(&sb.json(lab, &["ls", "--from", "lab-a"])) == ["big.bin"]
        });
    }
    // lab B fetches the content and serves it too.
    let cached = sb.json("b", &["cache", "big.bin"]);
    assert_eq!(cached["downloaded_bytes"].as_u64(), Some(big.len() as u64));
    let b = Serve::start(&sb, "b");
    sb.ok("c", &["peer", "add", &b.address, "--name", "lab-b"]);
    // lab C learns from lab B that B holds it (the location table syncs).
    sync_until(&sb, "c", "lab C knows lab B holds big.bin", || {
        let w = sb.json("c", &["whereis", "big.bin"]);
        w["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .any(|p| p["name"] == "lab-b")
    });

    // The owner goes away; lab B serves, and is killed mid-transfer.
    a.kill();
    let dest_dir = sb.path().join("c/.labmesh/storage/objects");
    let mut fetch = sb
        .cmd("c", &["cache", "big.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cache");
    let started = Instant::now();
    let partial = loop {
        if let Some(p) = find_partial(&dest_dir)
            && std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) > 0
        {
            break p;
        }
        if started.elapsed() > Duration::from_secs(60) {
            panic!("the transfer never started");
        }
        if fetch.try_wait().expect("wait").is_some() {
            panic!("the transfer finished before it could be interrupted");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    b.kill();
    let status = fetch.wait().expect("cache exits");
    assert!(
        !status.success(),
        "cache must fail when its only holder dies"
    );
    let kept = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(
        kept > 0 && kept < big.len() as u64,
        "a partial transfer stays: {kept}"
    );

    // lab B is back: the fetch resumes where it stopped and verifies.
    let b = Serve::start(&sb, "b");
    sb.ok("c", &["peer", "add", &b.address, "--name", "lab-b"]);
    let cached = sb.json("c", &["cache", "big.bin"]);
    let downloaded = cached["downloaded_bytes"].as_u64().expect("bytes");
    assert!(
        downloaded < big.len() as u64,
        "resumed, not restarted: {downloaded} of {}",
        big.len()
    );
    let path = cached["path"].as_str().expect("path");
    assert!(
        std::fs::read(path).expect("read") == big,
        "the content is whole and right"
    );
    drop(b);
}

fn find_partial(dir: &Path) -> Option<std::path::PathBuf> {
    for shard in std::fs::read_dir(dir).ok()?.flatten() {
        for f in std::fs::read_dir(shard.path()).ok()?.flatten() {
            if f.file_name().to_string_lossy().ends_with(".partial") {
                return Some(f.path());
            }
        }
    }
    None
}

#[test]
fn the_demo_runs_a_mesh_of_two_labs_on_loopback() {
    let sb = sandbox();
    let v = sb.json(".", &["demo", "--dir", "demo"]);
    let mesh = &v["mesh"];
    assert!(mesh["bootstrap_ms"].as_f64().is_some(), "{mesh}");
    assert!(mesh["edit_visible_ms"].as_f64().is_some(), "{mesh}");
    assert_eq!(
        mesh["conflicts"].as_array().map(Vec::len),
        Some(1),
        "{mesh}"
    );
    // The labs stay to explore: lab B holds lab A's records, resolved.
    let from_a = sb.json("demo/lab-b", &["ls", "--from", "lab-a"]);
    assert_eq!(
        keys(&from_a),
        [
            "data/notes.txt",
            "data/plate1.csv",
            "data/plate2.csv",
            "data/plate3.csv"
        ]
    );
    assert!(
        sb.json("demo/lab-a", &["conflicts"])
            .as_array()
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        description(&sb, "demo/lab-a", "data/notes.txt").as_deref(),
        Some("redo plate 2 (agreed)")
    );
}
