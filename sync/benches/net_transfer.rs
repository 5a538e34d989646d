//! Content transfer throughput between two processes on loopback.
//!
//! ```text
//! cargo bench -p labmesh-sync --features net --bench net_transfer -- [--size 1GiB] [--runs 5]
//!     [--transport quic|tcp|both] [--mode stream|file|both] [--chunk 256KiB]
//! ```
//!
//! This binary re-executes itself as the serving process (`--serve`), which
//! listens on 127.0.0.1 (QUIC and TCP, mDNS off) and serves one object from an
//! in-memory generator (a repeating 1 MiB random block: no disk on the
//! serving side, flat memory). The fetching process connects over one
//! transport at a time and measures, per run:
//!
//! - `stream+hash`: `fetch` of the whole object, BLAKE3 over every chunk
//!   (network + verification, no disk);
//! - `verified file`: `fetch_verified` into a file in the temp directory
//!   (staging, hashing on a blocking thread, fsync, rename: the real path).
//!
//! It prints each run, then medians with min–max, and the peak RSS (VmHWM)
//! of both processes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use labmesh_crypto::NodeKey;
use labmesh_sync::net::{
    ContentSource, Multiaddr, NetConfig, NetEvent, Network, NetworkHandle, NoContent, PeerId,
};

const BLOCK: usize = 1 << 20;

fn block() -> Vec<u8> {
    let mut b = vec![0u8; BLOCK];
    blake3::Hasher::new()
        .update(b"net_transfer")
        .finalize_xof()
        .fill(&mut b);
    b
}

/// The object: `size` bytes of the block repeated.
struct Generator {
    block: Arc<Vec<u8>>,
    pos: u64,
    end: u64,
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let at = (self.pos % BLOCK as u64) as usize;
        let n = buf.len().min(BLOCK - at).min(left as usize);
        buf[..n].copy_from_slice(&self.block[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

struct Source {
    block: Arc<Vec<u8>>,
    hash: [u8; 32],
    size: u64,
}

impl ContentSource for Source {
    fn open(
        &self,
        _: &PeerId,
        hash: &[u8; 32],
        size: u64,
        offset: u64,
    ) -> Result<Option<Box<dyn Read + Send>>, String> {
        if *hash != self.hash || size != self.size {
            return Ok(None);
        }
        Ok(Some(Box::new(Generator {
            block: self.block.clone(),
            pos: offset,
            end: size,
        })))
    }
}

fn object_hash(block: &[u8], size: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        h.update(&block[..n]);
        left -= n as u64;
    }
    *h.finalize().as_bytes()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn parse_size(s: &str) -> u64 {
    let s = s.trim();
    let (num, mult) = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .iter()
        .find_map(|(suffix, m)| s.strip_suffix(suffix).map(|n| (n, *m)))
        .unwrap_or((s, 1));
    num.trim()
        .parse::<u64>()
        .expect("a size like 1GiB, 256MiB or 1048576")
        * mult
}

struct Args {
    serve: bool,
    size: u64,
    runs: usize,
    transports: Vec<&'static str>,
    chunk: usize,
    stream: bool,
    file: bool,
}

fn args() -> Args {
    let mut a = Args {
        serve: false,
        size: 1 << 30,
        runs: 5,
        transports: vec!["quic", "tcp"],
        chunk: 256 << 10,
        stream: true,
        file: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--serve" => a.serve = true,
            "--size" => a.size = parse_size(&it.next().expect("--size VALUE")),
            "--runs" => a.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--chunk" => a.chunk = parse_size(&it.next().expect("--chunk VALUE")) as usize,
            "--transport" => {
                a.transports = match it.next().as_deref() {
                    Some("quic") => vec!["quic"],
                    Some("tcp") => vec!["tcp"],
                    _ => vec!["quic", "tcp"],
                }
            }
            "--mode" => match it.next().as_deref() {
                Some("stream") => a.file = false,
                Some("file") => a.stream = false,
                _ => {}
            },
            _ => {} // cargo bench adds `--bench`
        }
    }
    a
}

fn config(chunk: usize) -> NetConfig {
    NetConfig {
        content_chunk_bytes: chunk,
        ..NetConfig::loopback()
    }
}

/// The serving process: prints its addresses, serves until stdin closes,
/// then prints its peak RSS.
async fn serve(a: &Args) {
    let block = Arc::new(block());
    let hash = object_hash(&block, a.size);
    let source = Arc::new(Source {
        block,
        hash,
        size: a.size,
    });
    let key = NodeKey::generate();
    let (net, mut events) = Network::start(&key, config(a.chunk), source).expect("start");
    let mut out = std::io::stdout();
    let mut listening = 0;
    while listening < 2 {
        if let Some(NetEvent::Listening { addr }) = events.recv().await {
            writeln!(out, "ADDR {addr}/p2p/{}", net.local_peer_id()).expect("stdout");
            listening += 1;
        }
    }
    writeln!(out, "READY").expect("stdout");
    out.flush().expect("stdout");
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .expect("stdin");
    net.shutdown().await;
    writeln!(out, "RSS {}", peak_rss_kib()).expect("stdout");
}

async fn stream_and_hash(net: &NetworkHandle, peer: PeerId, hash: [u8; 32], size: u64) {
    let mut stream = net.fetch(peer, hash, size, 0).await.expect("fetch");
    let mut h = blake3::Hasher::new();
    while let Some(chunk) = stream.next_chunk().await.expect("chunk") {
        h.update(&chunk);
    }
    assert_eq!(*h.finalize().as_bytes(), hash, "hash matches");
}

fn gbits(size: u64, d: Duration) -> f64 {
    size as f64 * 8.0 / d.as_secs_f64() / 1e9
}

fn summary(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.2} Gbit/s (min {:.2}, max {:.2}, n={})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

async fn fetch_side(a: &Args) {
    let block = block();
    let hash = object_hash(&block, a.size);
    drop(block);
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([
            "--serve",
            "--size",
            &a.size.to_string(),
            "--chunk",
            &a.chunk.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the serving process");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut addrs: Vec<Multiaddr> = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("child output");
        if let Some(addr) = line.strip_prefix("ADDR ") {
            addrs.push(addr.parse().expect("multiaddr"));
        } else if line == "READY" {
            break;
        }
    }
    let (net, mut events) =
        Network::start(&NodeKey::generate(), config(a.chunk), Arc::new(NoContent)).expect("start");
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "object {} MiB, chunk {} KiB, {} runs per transport and mode, 2 processes on loopback",
        a.size >> 20,
        a.chunk >> 10,
        a.runs
    );
    for t in &a.transports {
        let addr = addrs
            .iter()
            .find(|m| {
                m.to_string()
                    .contains(if *t == "quic" { "/quic-v1" } else { "/tcp/" })
            })
            .expect("address for transport")
            .clone();
        let peer = net.dial(addr).await.expect("dial");
        let (mut streamed, mut verified) = (Vec::new(), Vec::new());
        for run in 0..a.runs {
            let (mut g, mut v) = (f64::NAN, f64::NAN);
            if a.stream {
                let t0 = Instant::now();
                stream_and_hash(&net, peer, hash, a.size).await;
                g = gbits(a.size, t0.elapsed());
                streamed.push(g);
            }
            if a.file {
                let dest = dir.path().join(format!("obj-{t}-{run}"));
                let t0 = Instant::now();
                net.fetch_verified(&[peer], hash, a.size, &dest)
                    .await
                    .expect("verified fetch");
                v = gbits(a.size, t0.elapsed());
                verified.push(v);
                std::fs::remove_file(&dest).expect("remove");
            }
            println!("{t:>4} run {run}: stream+hash {g:.2} Gbit/s, verified file {v:.2} Gbit/s");
        }
        if a.stream {
            println!("{t:>4} stream+hash:   {}", summary(&mut streamed));
        }
        if a.file {
            println!("{t:>4} verified file: {}", summary(&mut verified));
        }
        net.disconnect(peer).await.expect("disconnect");
        loop {
            match events.recv().await {
                Some(NetEvent::Disconnected { peer: p }) if p == peer => break,
                Some(_) => {}
                None => panic!("events closed"),
            }
        }
    }
    net.shutdown().await;
    drop(child.stdin.take());
    let child_rss = lines
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("RSS ").map(str::to_string))
        .unwrap_or_default();
    let _ = child.wait();
    println!(
        "peak RSS: fetching process {} MiB, serving process {} MiB",
        peak_rss_kib() / 1024,
        child_rss.parse::<u64>().unwrap_or(0) / 1024
    );
}

fn main() {
    let a = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if a.serve {
        runtime.block_on(serve(&a));
    } else {
        runtime.block_on(fetch_side(&a));
    }
}
