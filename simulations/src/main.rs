//! `labmesh-simulations`: sweep seeds of the deterministic sync simulation.
//!
//! ```text
//! cargo run --release -p labmesh-simulations -- --nodes 50 --seeds 1000
//! cargo run --release -p labmesh-simulations -- --nodes 50 --seed 417    # replay one seed
//! ```
//! Options: `--nodes N` (8), `--seeds K` (100: seeds 0..K), `--first S` (0),
//! `--seed S` (just seed S), `--writes W`, `--threads T` (available cores).
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
    writes: Option<usize>,
    threads: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        nodes: 8,
        first: 0,
        seeds: 100,
        writes: None,
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
            "--writes" => args.writes = Some(num(value("--writes")?)? as usize),
            "--threads" => args.threads = num(value("--threads")?)?.max(1) as usize,
            "-h" | "--help" => {
                return Err("usage: labmesh-simulations [--nodes N] [--seeds K] [--first S] [--seed S] [--writes W] [--threads T]".into());
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
                    if let Some(w) = args.writes {
                        cfg.writes = w;
                    }
                    let result = run(&cfg);
                    let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                    match result {
                        Ok(report) => t.add(&report),
                        Err(e) => {
                            t.fail();
                            let replay = format!(
                                "cargo run --release -p labmesh-simulations -- --nodes {} --seed {seed}{}",
                                args.nodes,
                                args.writes.map(|w| format!(" --writes {w}")).unwrap_or_default()
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
