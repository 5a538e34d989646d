//! `labmesh-simulations`: sweep seeds of the deterministic sync simulation.
//!
//! ```text
//! cargo run --release -p labmesh-simulations -- --nodes 50 --seeds 1000
//! cargo run --release -p labmesh-simulations -- --nodes 50 --seed 417    # replay one seed
//! ```
//! Options: `--nodes N` (8), `--seeds K` (100: seeds 0..K), `--first S` (0),
//! `--seed S` (just seed S), `--threads T` (available cores), and the
//! workload: `--writes W`, `--scopes S`, `--revocations R`, `--restarts R`,
//! `--disconnects D`, `--large-writes L`, `--large-bytes B` (defaults:
//! `SimConfig::new`).
//! Exit code 1 if any seed fails; each failure prints the command that
//! replays it.

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use labmesh_simulations::{SimConfig, Totals, run};

struct Args {
    nodes: usize,
    first: u64,
    seeds: u64,
    threads: usize,
    /// Workload options as given (name, value), applied to each run's
    /// configuration and repeated in the replay command.
    workload: Vec<(String, usize)>,
}

const WORKLOAD: [&str; 7] = [
    "--writes",
    "--scopes",
    "--revocations",
    "--restarts",
    "--disconnects",
    "--large-writes",
    "--large-bytes",
];

fn configure(cfg: &mut SimConfig, workload: &[(String, usize)]) {
    for (name, v) in workload {
        let v = *v;
        match name.as_str() {
            "--writes" => cfg.writes = v,
            "--scopes" => cfg.scopes = v,
            "--revocations" => cfg.revocations = v,
            "--restarts" => cfg.restarts = v,
            "--disconnects" => cfg.disconnects = v,
            "--large-writes" => cfg.large_writes = v,
            "--large-bytes" => cfg.large_bytes = v,
            _ => {}
        }
    }
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        nodes: 8,
        first: 0,
        seeds: 100,
        workload: Vec::new(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("not a number: {v}"));
        match flag.as_str() {
            "--nodes" => args.nodes = num(value("--nodes")?)? as usize,
            "--seeds" => args.seeds = num(value("--seeds")?)?,
            "--first" => args.first = num(value("--first")?)?,
            "--seed" => {
                args.first = num(value("--seed")?)?;
                args.seeds = 1;
            }
            "--threads" => args.threads = num(value("--threads")?)?.max(1) as usize,
            w if WORKLOAD.contains(&w) => {
                let v = num(value(w)?)? as usize;
                args.workload.push((w.to_string(), v));
            }
            "-h" | "--help" => {
                return Err(format!(
                    "usage: labmesh-simulations [--nodes N] [--seeds K] [--first S] [--seed S] [--threads T] [{}]",
                    WORKLOAD.map(|w| format!("{w} N")).join("] [")
                ));
            }
            other => return Err(format!("unknown option {other}; see --help")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let next = AtomicU64::new(args.first);
    let end = args.first + args.seeds;
    let totals = Mutex::new(Totals::default());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.threads {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= end {
                        break;
                    }
                    let mut cfg = SimConfig::new(args.nodes, seed);
                    configure(&mut cfg, &args.workload);
                    let result = run(&cfg);
                    let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                    match result {
                        Ok(report) => t.add(&report),
                        Err(e) => {
                            t.fail();
                            let replay = format!(
                                "cargo run --release -p labmesh-simulations -- --nodes {} --seed {seed}{}",
                                args.nodes,
                                args.workload
                                    .iter()
                                    .map(|(n, v)| format!(" {n} {v}"))
                                    .collect::<String>()
                            );
                            eprintln!("seed {seed} FAILED: {e}\n  replay: {replay}");
                            failures.lock().unwrap_or_else(|p| p.into_inner()).push(seed);
                        }
                    }
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    println!(
        "{} nodes, seeds {}..{} ({:.1} s)",
        args.nodes,
        args.first,
        end,
        started.elapsed().as_secs_f64()
    );
    println!("{totals}");
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("FAILED seeds: {failures:?}");
        ExitCode::FAILURE
    }
}
