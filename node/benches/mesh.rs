//! The mesh between two processes on loopback: real `labmesh serve`
//! daemons talking libp2p over QUIC on 127.0.0.1, measured as a user
//! would see them. Prints its figures (`cargo bench -p labmesh --bench mesh`).
//!
//! Targets (issue 7):
//! - content transfer >= 1 Gbit/s, BLAKE3-verified, memory flat
//!   (`labmesh cache` of a remote artifact: fetch, verify, seal, record);
//! - bootstrap a subscription of 100,000 records <= 10 s end to end
//!   (`labmesh sync` as a fresh process until the records are rows);
//! - an edit on one node visible in a query on a connected subscriber:
//!   p50 <= 100 ms;
//! - a node with 100 idle subscriptions: <= 1 % CPU and <= 100 MiB RSS.
//!
//! Sizes can be scaled down for a quick look: `LABMESH_BENCH_RECORDS`
//! (default 100000), `LABMESH_BENCH_CONTENT_MIB` (default 1024),
//! `LABMESH_BENCH_IDLE_SECS` (default 60).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use labmesh::{InitOptions, Instance, ListOptions, SaveOptions};

const LOOPBACK: &str = "/ip4/127.0.0.1/udp/0/quic-v1,/ip4/127.0.0.1/tcp/0";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn labmesh(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_labmesh"));
    cmd.current_dir(dir)
        .env_remove("LABMESH_INSTANCE")
        .env("LABMESH_LISTEN", LOOPBACK)
        .env("LABMESH_MDNS", "0");
    cmd
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = labmesh(dir).args(args).output().expect("run labmesh");
    assert!(
        out.status.success(),
        "labmesh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `labmesh serve` child process, killed on drop.
struct Serve {
    child: Child,
    address: String,
}

impl Serve {
    fn start(dir: &Path) -> Serve {
        let mut child = labmesh(dir)
            .arg("serve")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("listening on ")
                    && a.contains("/quic-v1/")
                {
                    let _ = tx.send(a.to_string());
                }
            }
        });
        let address = rx.recv_timeout(Duration::from_secs(30)).expect("address");
        Serve { child, address }
    }

    /// CPU seconds (user + system) and resident memory (bytes) so far.
    fn usage(&self) -> (f64, u64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
            + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        // /proc reports CPU time in USER_HZ, which Linux fixes at 100.
        let hz = 100.0;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (ticks / hz, rss_kib * 1024)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lab A and lab B in `work`, each in the other's address book.
fn labs(work: &Path, tag: &str) -> (PathBuf, PathBuf) {
    let (a, b) = (work.join(format!("a-{tag}")), work.join(format!("b-{tag}")));
    for (dir, name) in [(&a, "lab-a"), (&b, "lab-b")] {
        Instance::init(
            dir,
            &InitOptions {
                name: Some(name.into()),
                user: Some("bench".into()),
                ..Default::default()
            },
        )
        .expect("init");
    }
    let a_id = run(&a, &["id", "export"]);
    let b_id = run(&b, &["id", "export"]);
    run(&a, &["id", "import", b_id.trim()]);
    run(&b, &["id", "import", a_id.trim()]);
    (a, b)
}

fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn content(work: &Path) {
    let mib = env_num("LABMESH_BENCH_CONTENT_MIB", 1024);
    let (a, b) = labs(work, "content");
    let path = a.join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for chunk in block.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            f.write_all(&block).unwrap();
        }
    }
    run(&a, &["save", "big.bin"]);
    run(&a, &["share", "instance", "--with", "lab-b"]);
    let serve = Serve::start(&a);
    run(&b, &["peer", "add", &serve.address, "--name", "lab-a"]);
    run(&b, &["sync"]);
    run(&b, &["subscribe", "lab-a"]);
    run(&b, &["sync"]);
    let started = Instant::now();
    let out = run(&b, &["--json", "cache", "big.bin"]);
    let took = started.elapsed();
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let bytes = v["downloaded_bytes"].as_u64().unwrap_or(0);
    assert_eq!(bytes, mib << 20, "the whole object came over the network");
    let (_, rss) = serve.usage();
    println!(
        "content: {mib} MiB fetched, verified and sealed in {:.2} s = {:.2} Gbit/s (whole `labmesh cache` process); \
         serving daemon RSS {:.0} MiB",
        took.as_secs_f64(),
        (bytes as f64 * 8.0) / took.as_secs_f64() / 1e9,
        rss as f64 / (1 << 20) as f64
    );
}

fn bootstrap(work: &Path) {
    let n = env_num("LABMESH_BENCH_RECORDS", 100_000) as usize;
    let (a, b) = labs(work, "bootstrap");
    let files = a.join("records");
    std::fs::create_dir_all(&files).unwrap();
    let paths: Vec<PathBuf> = (0..n)
        .map(|i| {
            let p = files.join(format!("r{i:06}.csv"));
            std::fs::write(&p, format!("id,value\n{i},{}\n", i * 7)).unwrap();
            p
        })
        .collect();
    let setup = Instant::now();
    let lab = Instance::open(&a).unwrap();
    for chunk in paths.chunks(10_000) {
        lab.save_many(chunk, &SaveOptions::default()).unwrap();
    }
    lab.share("instance").unwrap();
    drop(lab);
    run(
        &a,
        &[
            "grant",
            "--to",
            "lab-b",
            "--role",
            "read",
            "--scope",
            "instance",
            "--expires",
            "1d",
        ],
    );
    eprintln!(
        "bootstrap: {n} records saved and shared in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let serve = Serve::start(&a);
    run(&b, &["peer", "add", &serve.address, "--name", "lab-a"]);
    // The first round learns lab A's instance uid (and collects the grant);
    // it is timed too, as part of subscribing.
    let started = Instant::now();
    run(&b, &["sync", "--timeout", "120"]);
    let first = started.elapsed();
    run(&b, &["subscribe", "lab-a"]);
    let subscribed = started.elapsed();
    run(&b, &["sync", "--timeout", "120"]);
    let took = started.elapsed();
    eprintln!(
        "bootstrap: first round {:.2} s, subscribe {:.2} s, bootstrap round {:.2} s",
        first.as_secs_f64(),
        (subscribed - first).as_secs_f64(),
        (took - subscribed).as_secs_f64()
    );
    let lab_b = Instance::open(&b).unwrap();
    let got = lab_b
        .list(&ListOptions {
            limit: 10_000_000,
            ..Default::default()
        })
        .unwrap()
        .len();
    println!(
        "bootstrap: {got} of {n} records as rows on the subscriber in {:.2} s end to end \
         ({:.0} records/s; two `labmesh sync` processes and a subscribe)",
        took.as_secs_f64(),
        got as f64 / took.as_secs_f64()
    );
}

fn latency(work: &Path) {
    let (a, b) = labs(work, "latency");
    std::fs::write(a.join("p.csv"), "well,od\nA1,0.1\n").unwrap();
    run(&a, &["save", "p.csv"]);
    run(&a, &["share", "instance", "--with", "lab-b"]);
    let serve_a = Serve::start(&a);
    run(&b, &["peer", "add", &serve_a.address, "--name", "lab-a"]);
    run(&b, &["sync"]);
    run(&b, &["subscribe", "lab-a"]);
    run(&b, &["sync"]);
    let _serve_b = Serve::start(&b);
    let lab_a = Instance::open(&a).unwrap();
    let lab_b = Instance::open(&b).unwrap();
    wait_until(Duration::from_secs(30), || lab_b.get("p.csv").is_ok()).expect("subscribed");
    std::thread::sleep(Duration::from_secs(3));
    let mut samples = Vec::new();
    for i in 0..50 {
        let text = format!("edit {i}");
        let started = Instant::now();
        lab_a.set_description("p.csv", Some(&text)).unwrap();
        let seen = wait_until(Duration::from_secs(10), || {
            lab_b
                .get("p.csv")
                .ok()
                .and_then(|x| x.description)
                .as_deref()
                == Some(text.as_str())
        });
        if seen.is_some() {
            // From before the local write to the row on the other node.
            samples.push(started.elapsed());
        }
        // Irregular pauses, so edits do not fall in step with the daemon's
        // 50 ms look for changes.
        std::thread::sleep(Duration::from_millis(40 + (i * 37 % 61) as u64));
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "edit visible on the subscriber: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms ({} of 50 seen within 10 s)",
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(pick(1.0)),
        samples.len()
    );
}

fn idle(work: &Path) {
    let secs = env_num("LABMESH_BENCH_IDLE_SECS", 60);
    let (a, b) = labs(work, "idle");
    let lab = Instance::open(&a).unwrap();
    let mut stems = Vec::new();
    for i in 0..100 {
        let p = a.join(format!("c{i}.csv"));
        std::fs::write(&p, format!("collection {i}\n")).unwrap();
        let uid = lab.save(&p, &SaveOptions::default()).unwrap().artifact.uid;
        let c = lab
            .add_collection(&format!("set-{i}"), &[uid], None, false)
            .unwrap();
        let stem = c.record.uid[..16].to_string();
        lab.share(&format!("collection:{stem}")).unwrap();
        stems.push(stem);
    }
    drop(lab);
    let serve_a = Serve::start(&a);
    run(&b, &["peer", "add", &serve_a.address, "--name", "lab-a"]);
    for stem in &stems {
        run(
            &a,
            &[
                "grant",
                "--to",
                "lab-b",
                "--role",
                "read",
                "--scope",
                &format!("collection:{stem}"),
                "--expires",
                "1d",
            ],
        );
    }
    run(&b, &["sync"]);
    run(&b, &["subscribe", "lab-a"]);
    let serve_b = Serve::start(&b);
    let lab_b = Instance::open(&b).unwrap();
    wait_until(Duration::from_secs(120), || {
        lab_b
            .list(&ListOptions {
                limit: 1000,
                ..Default::default()
            })
            .map(|l| l.len() >= 100)
            .unwrap_or(false)
    })
    .expect("all 100 subscriptions arrived");
    // A daemon keeps its 2 s anti-entropy pace for a minute after the
    // last change, then slows to every 30 s: measure that steady state.
    std::thread::sleep(Duration::from_secs(75));
    let (a0, _) = serve_a.usage();
    let (b0, _) = serve_b.usage();
    std::thread::sleep(Duration::from_secs(secs));
    let (a1, a_rss) = serve_a.usage();
    let (b1, b_rss) = serve_b.usage();
    if std::env::var_os("LABMESH_BENCH_HOLD").is_some() {
        eprintln!(
            "holding: owner pid {}, subscriber pid {}",
            serve_a.child.id(),
            serve_b.child.id()
        );
        std::thread::sleep(Duration::from_secs(600));
    }
    println!(
        "100 idle subscriptions over {secs} s: subscriber {:.2} % CPU, {:.0} MiB RSS; owner {:.2} % CPU, {:.0} MiB RSS",
        (b1 - b0) / secs as f64 * 100.0,
        b_rss as f64 / (1 << 20) as f64,
        (a1 - a0) / secs as f64 * 100.0,
        a_rss as f64 / (1 << 20) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let only: Vec<&str> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let wanted = |name: &str| only.is_empty() || only.contains(&name);
    let work =
        tempfile::tempdir_in(std::env::var("LABMESH_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    if wanted("content") {
        content(work.path());
    }
    if wanted("latency") {
        latency(work.path());
    }
    if wanted("idle") {
        idle(work.path());
    }
    if wanted("bootstrap") {
        bootstrap(work.path());
    }
}
