//! Wall-clock latency of the `labmesh` binary, as a user runs it.
//!
//! Targets (issue 2): `labmesh init` <= 50 ms; any command on a small
//! instance <= 30 ms. Prints the median and the 10th/90th percentiles of
//! repeated runs (`cargo bench -p labmesh --bench cli`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn labmesh(dir: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_labmesh"))
        .args(args)
        .current_dir(dir)
        .env_remove("LABMESH_INSTANCE")
        .output()
        .expect("run labmesh");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "labmesh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<28} median {:>6.2} ms   p10 {:>6.2} ms   p90 {:>6.2} ms   ({} runs)",
        ms(pick(0.5)),
        ms(pick(0.1)),
        ms(pick(0.9)),
        samples.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes benches; nothing to list.
    }
    let work =
        tempfile::tempdir_in(std::env::var("LABMESH_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    let dir = work.path();

    report(
        "init",
        (0..RUNS)
            .map(|i| labmesh(dir, &["init", &format!("lab{i}")]))
            .collect(),
    );

    // A small instance: 200 files, a folder, a few versions.
    let lab = dir.join("lab0");
    std::fs::create_dir_all(lab.join("data/run")).unwrap();
    for i in 0..200 {
        std::fs::write(lab.join(format!("data/f{i}.csv")), format!("row {i}\n")).unwrap();
    }
    for i in 0..5 {
        std::fs::write(lab.join(format!("data/run/{i}.txt")), "x").unwrap();
    }
    let files: Vec<String> = (0..200).map(|i| format!("data/f{i}.csv")).collect();
    let mut args = vec!["save"];
    args.extend(files.iter().map(String::as_str));
    labmesh(&lab, &args);
    labmesh(&lab, &["save", "data/run"]);

    let mut n = 0;
    report(
        "save (new small file)",
        (0..RUNS)
            .map(|_| {
                n += 1;
                std::fs::write(lab.join("data/f0.csv"), format!("version {n}\n")).unwrap();
                labmesh(&lab, &["save", "data/f0.csv"])
            })
            .collect(),
    );
    for args in [
        &["ls"][..],
        &["ls", "--json"],
        &["describe", "data/f0.csv"],
        &["versions", "data/f0.csv"],
        &["cache", "data/f1.csv"],
        &["cache", "data/run"],
        &["info"],
        &["save", "data/f1.csv"],
        &["gc", "--dry-run"],
    ] {
        report(
            &args.join(" "),
            (0..RUNS).map(|_| labmesh(&lab, args)).collect(),
        );
    }
}
