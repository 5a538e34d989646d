//! Saving one large file, against `cp` of the same file on the same disk.
//!
//! Target (issue 2): >= 0.8x the throughput of `cp`, memory flat
//! (<= 64 MiB RSS). Runs `cp`, `cp` + `sync`, and `labmesh save` alternately
//! (each save into a fresh instance, so nothing is deduplicated), and
//! prints medians, the ratio, and the save's peak RSS.
//! `LABMESH_INGEST_MIB` sets the size (default 2048).

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a command to completion; returns its wall time and its own peak RSS (KiB).
#[allow(
    clippy::zombie_processes,
    reason = "wait4 reaps the child, with its rusage"
)]
fn run(cmd: &mut Command) -> (Duration, u64) {
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: wait4 on our own child's pid fills the values we own; the child
    // is reaped here, so `Child` is dropped without waiting again.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as i32, &mut status, 0, &mut usage);
        usage
    };
    let took = start.elapsed();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    (took, usage.ru_maxrss as u64)
}

fn sync() {
    Command::new("sync").status().expect("sync");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mib: u64 = std::env::var("LABMESH_INGEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let rounds = 3;
    let work =
        tempfile::tempdir_in(std::env::var("LABMESH_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    let dir = work.path();
    let src = dir.join("big.bin");
    {
        let mut f = std::fs::File::create(&src).unwrap();
        let mut block: Vec<u8> = (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        for i in 0..mib {
            block[..8].copy_from_slice(&i.to_le_bytes());
            f.write_all(&block).unwrap();
        }
    }
    sync();
    let bytes = mib << 20;
    let (mut cp, mut cp_sync, mut save) = (Vec::new(), Vec::new(), Vec::new());
    let mut rss_kib = 0;
    // Warm the page cache the same way for everyone.
    run(Command::new("cat")
        .arg(&src)
        .stdout(std::process::Stdio::null()));
    for round in 0..rounds {
        let dst = dir.join("copy.bin");
        cp.push(run(Command::new("cp").arg(&src).arg(&dst)).0);
        std::fs::remove_file(&dst).unwrap();
        sync();

        let start = Instant::now();
        run(Command::new("cp").arg(&src).arg(&dst));
        sync();
        cp_sync.push(start.elapsed());
        std::fs::remove_file(&dst).unwrap();
        sync();

        let lab = dir.join(format!("lab{round}"));
        run(Command::new(env!("CARGO_BIN_EXE_labmesh"))
            .arg("init")
            .arg(&lab)
            .stdout(std::process::Stdio::null()));
        let (took, rss) = run(Command::new(env!("CARGO_BIN_EXE_labmesh"))
            .arg("save")
            .arg(&src)
            .current_dir(&lab)
            .stdout(std::process::Stdio::null()));
        save.push(took);
        rss_kib = rss_kib.max(rss);
        std::fs::remove_dir_all(&lab).expect("remove instance");
        sync();
    }
    let gibps = |d: Duration| bytes as f64 / d.as_secs_f64() / (1u64 << 30) as f64;
    let (cp, cp_sync, save) = (median(cp), median(cp_sync), median(save));
    println!("file: {mib} MiB, {rounds} rounds, medians");
    println!(
        "cp                {:>7.3} s  {:>5.2} GiB/s",
        cp.as_secs_f64(),
        gibps(cp)
    );
    println!(
        "cp + sync         {:>7.3} s  {:>5.2} GiB/s",
        cp_sync.as_secs_f64(),
        gibps(cp_sync)
    );
    println!(
        "labmesh save      {:>7.3} s  {:>5.2} GiB/s  (durable: synced before its row commits)",
        save.as_secs_f64(),
        gibps(save)
    );
    println!(
        "throughput vs cp        {:.2}x",
        cp.as_secs_f64() / save.as_secs_f64()
    );
    println!(
        "throughput vs cp+sync   {:.2}x",
        cp_sync.as_secs_f64() / save.as_secs_f64()
    );
    println!("labmesh save peak RSS   {:.1} MiB", rss_kib as f64 / 1024.0);
}
