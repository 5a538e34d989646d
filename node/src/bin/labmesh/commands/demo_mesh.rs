//! The mesh half of `labmesh demo`: a second lab on loopback. Lab A shares
//! a collection with lab B under a token; both run daemons (real libp2p
//! over QUIC on 127.0.0.1); B subscribes, bootstraps, lists A's records,
//! fetches verified content; an edit on A shows up on B; both edit while
//! apart: edits of one text interleave, two new values of one field stay
//! visible as a conflict, which B resolves for both.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use labmesh::daemon::{DaemonEvent, DaemonOptions};
use labmesh::{InitOptions, Instance, ListOptions};
use labmesh_sync::net::NetConfig;

use crate::output::{self, Table};

/// How long the demo waits for the mesh at each step.
const PATIENCE: Duration = Duration::from_secs(60);

/// A daemon on its own thread, stopped on drop.
struct Node {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Its QUIC address, with `/p2p/<peer id>`.
    address: String,
}

impl Node {
    fn start(root: &Path) -> anyhow::Result<Node> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let opts = DaemonOptions::serve(NetConfig::loopback()).stoppable(stop.clone());
        let root = root.to_path_buf();
        // `LABMESH_DEMO_TRACE=1` prints every daemon event, to see why a
        // step of the demo does not get there.
        let trace = std::env::var_os("LABMESH_DEMO_TRACE").is_some();
        let thread = std::thread::spawn(move || {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let result = labmesh::daemon::run(&root, opts, |e| {
                if trace {
                    eprintln!("[{name}] {e:?}");
                }
                if let DaemonEvent::Listening(addr) = e
                    && addr.contains("/quic-v1/")
                {
                    let _ = tx.send(Ok(addr));
                }
            });
            if let Err(e) = result {
                let _ = tx.send(Err(e.to_string()));
            }
        });
        let address = rx
            .recv_timeout(PATIENCE)
            .map_err(|_| anyhow::anyhow!("the demo node did not start listening"))?
            .map_err(|e| anyhow::anyhow!("the demo node failed: {e}"))?;
        Ok(Node {
            stop,
            thread: Some(thread),
            address,
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls `check` until it holds or `PATIENCE` runs out; returns how long it took.
fn wait_for(
    what: &str,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if check()? {
            return Ok(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    anyhow::bail!("the demo mesh did not get there within {PATIENCE:?}: {what}")
}

fn description_of(lab: &Instance, uid: &str) -> anyhow::Result<Option<String>> {
    Ok(lab.get(uid)?.description)
}

/// Runs the mesh part, with lab A the instance at `lab_a_root`.
pub fn run(
    lab_a_root: &Path,
    plate_keys: &[String],
    json: bool,
) -> anyhow::Result<serde_json::Value> {
    let step = |title: &str| {
        if !json {
            println!("\n== {title}");
        }
    };
    let say = |text: String| {
        if !json {
            println!("{text}");
        }
    };
    let lab_a = Instance::open(lab_a_root)?;
    let lab_b_root = lab_a_root.parent().unwrap_or(lab_a_root).join("lab-b");
    let lab_b = Instance::init(
        &lab_b_root,
        &InitOptions {
            user: Some("bea".into()),
            ..Default::default()
        },
    )?;

    step("mesh: lab A shares a collection of plates with lab B");
    let notes = lab_a_root.join("data/notes.txt");
    std::fs::write(&notes, "plate 2 was re-read on Tuesday\n")?;
    let notes = lab_a.save(&notes, &Default::default())?.artifact.uid;
    let mut members = plate_keys.to_vec();
    members.push(notes.clone());
    let collection = lab_a.add_collection("plates", &members, Some("OD600 plates"), false)?;
    let stem = collection.record.uid[..16].to_string();
    lab_a.import_identity(&lab_b.export_identity(Some("lab-b"))?)?;
    lab_a.share(&format!("collection:{stem}"))?;
    let now = labmesh::time::now_ms() / 1000;
    let token = lab_a.grant(
        &lab_b.public_key()?,
        labmesh_crypto::Role::Write,
        labmesh_crypto::token::Scope::collection(&stem)?,
        now,
        now + 86_400,
    )?;
    say(format!(
        "lab A {} shares collection:{stem}; lab B {} holds a write token ({}…)",
        lab_a.peer_id(),
        lab_b.peer_id(),
        &token.to_text()[..24]
    ));

    let a = Node::start(lab_a_root)?;
    say(format!("lab A's daemon listens on {}", a.address));
    lab_b.add_peer(&a.address, Some("lab-a"))?;
    lab_b.subscribe("lab-a", &format!("collection:{stem}"))?;
    let b = Node::start(&lab_b_root)?;

    step("subscribe: lab B bootstraps the collection over QUIC");
    let from_a = ListOptions {
        origin: Some(lab_a.peer_id().to_string()),
        ..Default::default()
    };
    let took = wait_for("lab B has lab A's plates", || {
        Ok(lab_b.list(&from_a)?.len() >= members.len())
    })?;
    let remote = lab_b.list(&from_a)?;
    say(format!(
        "{} records arrived in {:.0} ms (token delivered in the hello, access checked by lab A)",
        remote.len(),
        took.as_secs_f64() * 1e3
    ));
    if !json {
        let mut t = Table::new(&["uid", "key", "size", "from"]);
        for r in &remote {
            t.row(vec![
                r.uid.clone(),
                r.label().to_string(),
                output::size(r.size),
                "lab-a".into(),
            ]);
        }
        t.print();
    }

    step("cache: lab B fetches content from lab A, verified against BLAKE3");
    let target = remote
        .iter()
        .find(|r| r.uid != notes)
        .ok_or_else(|| anyhow::anyhow!("no remote plates"))?
        .uid
        .clone();
    let started = Instant::now();
    let cached = lab_b.cache(&target)?;
    say(format!(
        "{} -> {} ({} fetched in {:.0} ms)",
        target,
        cached.path.display(),
        output::size(cached.downloaded_bytes),
        started.elapsed().as_secs_f64() * 1e3
    ));

    step("edit on lab A, visible on lab B");
    lab_a.set_description(&target, Some("re-read on the new reader"))?;
    let latency = wait_for("lab A's edit reaches lab B", || {
        Ok(description_of(&lab_b, &target)?.as_deref() == Some("re-read on the new reader"))
    })?;
    say(format!(
        "lab B sees the new description after {:.0} ms",
        latency.as_secs_f64() * 1e3
    ));

    step("offline: both labs edit while apart");
    drop(b);
    drop(a);
    let before = description_of(&lab_a, &target)?.unwrap_or_default();
    // Different parts of one description: a text, so the edits interleave.
    lab_a.set_description(&target, Some(&format!("checked: {before}")))?;
    lab_b.set_description(&target, Some(&format!("{before} (bubble in A3)")))?;
    // A field both give a value it did not have: a conflict, kept visible.
    lab_a.set_description(&notes, Some("lab A: fine as is"))?;
    lab_b.set_description(&notes, Some("lab B: redo plate 2"))?;
    say(format!(
        "lab A: {:?}\nlab B: {:?}",
        description_of(&lab_a, &target)?.unwrap_or_default(),
        description_of(&lab_b, &target)?.unwrap_or_default()
    ));
    let a = Node::start(lab_a_root)?;
    lab_b.add_peer(&a.address, Some("lab-a"))?;
    let b = Node::start(&lab_b_root)?;
    let merged = format!("checked: {before} (bubble in A3)");
    wait_for("both labs merged and see the conflict", || {
        Ok(!lab_a.conflicts()?.is_empty()
            && !lab_b.conflicts()?.is_empty()
            && description_of(&lab_a, &target)?.as_deref() == Some(merged.as_str())
            && description_of(&lab_b, &target)?.as_deref() == Some(merged.as_str()))
    })?;
    say(format!("merged on both: {merged:?}"));
    let conflicts = lab_b.conflicts()?;
    if !json {
        for c in &conflicts {
            println!(
                "conflict on {} {}: {} (both show {:?} until someone resolves)",
                c.uid,
                c.field,
                c.values.join(" | "),
                c.winner
            );
        }
    }
    lab_b.resolve(&notes, "description", "redo plate 2 (agreed)")?;
    let settled = wait_for("the resolution reaches lab A", || {
        Ok(lab_a.conflicts()?.is_empty()
            && description_of(&lab_a, &notes)?.as_deref() == Some("redo plate 2 (agreed)"))
    })?;
    say(format!(
        "lab B resolved it; lab A converged after {:.0} ms",
        settled.as_secs_f64() * 1e3
    ));
    drop(b);
    drop(a);
    Ok(serde_json::json!({
        "lab_b": lab_b_root,
        "collection": stem,
        "bootstrap_ms": took.as_secs_f64() * 1e3,
        "edit_visible_ms": latency.as_secs_f64() * 1e3,
        "conflicts": conflicts,
    }))
}
