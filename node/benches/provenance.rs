//! Provenance costs, printed as medians with the 10th and 90th percentiles
//! (`cargo bench -p labmesh --bench provenance`).
//!
//! Targets (issue 5): tracking overhead of `labmesh run` over the bare
//! command <= 10 ms; an input or output link <= 0.2 ms; lineage of depth 20
//! in a graph of 1,000,000 artifacts and 500,000 runs <= 50 ms.
//! LaminDB 2.12 on the same machine class: `ln.track()` 1.13 s, 17 ms per
//! input link, 53 ms per output link.
//!
//! Sections: the wrapper's overhead (`true`, a shell script and a Python
//! script that read and save through labmesh, each against the bare
//! command); links in a small instance; links at the shape that used to
//! cost a whole-history walk (a 200,000-run chain and an artifact read by
//! 50,000 runs); lineage and its renderings in a graph of 1,000,000
//! artifacts and 500,000 runs. The graphs are written as plain rows and
//! queried as the product leaves them: no `ANALYZE` (the product runs
//! none, and its plans do not need statistics).
//!
//! `LABMESH_BENCH_DIR` puts the work directory elsewhere (default: here).
//! `LABMESH_BENCH_QUICK=1` builds 10x smaller graphs.
//! `LABMESH_BENCH_ONLY=overhead,links,history,lineage` picks sections.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use labmesh::provenance::{
    Direction, Format, LineageOptions, RunListOptions, RunStatus, TrackOptions,
};
use labmesh::{InitOptions, Instance, SaveOptions};
use rand::RngExt;

#[path = "provenance/history.rs"]
mod history;

pub(crate) fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let fmt = |d: Duration| {
        if us(d) >= 1000.0 {
            format!("{:>8.2} ms", us(d) / 1000.0)
        } else {
            format!("{:>8.1} µs", us(d))
        }
    };
    println!(
        "{name:<46} median {}   p10 {}   p90 {}   ({} runs)",
        fmt(pick(0.5)),
        fmt(pick(0.1)),
        fmt(pick(0.9)),
        samples.len()
    );
    pick(0.5)
}

pub(crate) fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    std::hint::black_box(f());
    start.elapsed()
}

fn quick() -> bool {
    std::env::var_os("LABMESH_BENCH_QUICK").is_some()
}

/// `PATH` with this build's `labmesh` first, for scripts that call it.
fn path_with_labmesh() -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_labmesh"));
    let mut dirs = vec![bin.parent().unwrap().to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap()
}

fn spawn(dir: &Path, program: &str, args: &[&str]) -> Duration {
    time(|| {
        let status = Command::new(program)
            .args(args)
            .current_dir(dir)
            .env_remove("LABMESH_INSTANCE")
            .env_remove("LABMESH_RUN")
            .env("PATH", path_with_labmesh())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("spawn");
        assert!(status.success(), "{program} {args:?}");
    })
}

/// Median of `labmesh run -- <command>` against the bare command,
/// interleaved so drift hits both; prints both and the difference.
fn overhead(lab: &Path, name: &str, command: &[&str], pairs: usize) {
    let bin = env!("CARGO_BIN_EXE_labmesh");
    let mut tracked_args = vec!["run", "--"];
    tracked_args.extend_from_slice(command);
    for _ in 0..5 {
        spawn(lab, bin, &tracked_args); // warm the page cache, the WAL and the transform
        spawn(lab, command[0], &command[1..]);
    }
    let (mut bare, mut tracked) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        bare.push(spawn(lab, command[0], &command[1..]));
        tracked.push(spawn(lab, bin, &tracked_args));
    }
    let b = report(&format!("`{name}`"), bare);
    let t = report(&format!("`labmesh run -- {name}`"), tracked);
    println!(
        "{:<46} {:.2} ms (target <= 10 ms)\n",
        "=> tracking overhead (median difference)",
        (t.as_secs_f64() - b.as_secs_f64()) * 1e3
    );
}

/// A shell step and a Python script that print, read one artifact and
/// save one through `labmesh`, as real pipeline steps do.
const STEP_SH: &str = r#"echo "reading raw.csv"
in=$(labmesh cache raw.csv)
wc -l < "$in" > count.txt
labmesh save count.txt > /dev/null
echo done
"#;

const ANALYSE_PY: &str = r#"import subprocess
path = subprocess.run(["labmesh", "cache", "raw.csv"], check=True,
                      capture_output=True, text=True).stdout.strip()
rows = sum(1 for _ in open(path))
print("rows:", rows)
with open("summary.txt", "w") as f:
    f.write(f"{rows}\n")
subprocess.run(["labmesh", "save", "summary.txt"], check=True, capture_output=True)
"#;

/// The wrapper's overhead: a command that prints nothing (no report), a
/// shell script and a Python script that print and go through labmesh
/// (the report is saved, the script hashed, one input and one output
/// linked), each against the bare command doing the same work untracked.
fn cli_overhead(work: &Path) {
    let lab = work.join("cli");
    Instance::init(&lab, &InitOptions::default()).unwrap();
    std::fs::write(lab.join("raw.csv"), "well,od\nA1,0.5\nA2,0.7\n").unwrap();
    spawn(&lab, env!("CARGO_BIN_EXE_labmesh"), &["save", "raw.csv"]);
    std::fs::write(lab.join("step.sh"), STEP_SH).unwrap();
    std::fs::write(lab.join("analyse.py"), ANALYSE_PY).unwrap();
    let true_bin = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("true");
    let pairs = if quick() { 30 } else { 200 };
    overhead(&lab, "true", &[true_bin], pairs);
    overhead(&lab, "sh step.sh", &["sh", "step.sh"], pairs / 2);
    let python = Command::new("python3").arg("--version").output();
    if python.is_ok_and(|o| o.status.success()) {
        overhead(
            &lab,
            "python3 analyse.py",
            &["python3", "analyse.py"],
            pairs / 2,
        );
    } else {
        println!("python3 not found: the Python overhead is not measured\n");
    }
}

/// Links made inside the process: explicit, and through `cache`/`save`.
fn links(work: &Path) {
    let root = work.join("links");
    let lab = Instance::init(&root, &InitOptions::default()).unwrap();
    let n = 3000;
    std::fs::create_dir_all(root.join("d")).unwrap();
    let paths: Vec<_> = (0..n)
        .map(|i| {
            let p = root.join(format!("d/f{i}.txt"));
            std::fs::write(&p, format!("file {i}\n")).unwrap();
            p
        })
        .collect();
    let saved = lab.save_many(&paths, &SaveOptions::default()).unwrap();
    let uids: Vec<String> = saved.iter().map(|s| s.artifact.uid.clone()).collect();

    let track = |key: &str| TrackOptions {
        key: Some(key.into()),
        ..TrackOptions::default()
    };
    report(
        "track() + finish() (library run, no source)",
        (0..200)
            .map(|_| time(|| lab.track(&track("bench")).unwrap().finish().unwrap()))
            .collect(),
    );

    let run = lab.track(&track("inputs")).unwrap();
    report(
        "input link: RunContext::add_input (new link)",
        uids[..1000]
            .iter()
            .map(|u| time(|| run.add_input(u).unwrap()))
            .collect(),
    );
    run.finish().unwrap();
    let plain: Vec<Duration> = uids[1000..2000]
        .iter()
        .map(|u| time(|| lab.cache(u).unwrap()))
        .collect();
    let run = lab.track(&track("cache")).unwrap();
    let linked: Vec<Duration> = uids[1000..2000]
        .iter()
        .map(|u| time(|| lab.cache(u).unwrap()))
        .collect();
    run.finish().unwrap();
    let p = report("cache, no run", plain);
    let l = report("cache inside a run (links an input)", linked);
    println!(
        "{:<46} {:.1} µs (target <= 200 µs)",
        "=> input link through cache (difference)",
        (l.as_secs_f64() - p.as_secs_f64()) * 1e6
    );

    let run = lab.track(&track("outputs")).unwrap();
    report(
        "output link: RunContext::add_output (new link)",
        uids[2000..3000]
            .iter()
            .map(|u| time(|| run.add_output(u).unwrap()))
            .collect(),
    );
    run.finish().unwrap();
    // Saving content that exists: the link is the only write.
    let again: Vec<_> = paths[..500].to_vec();
    let plain: Vec<Duration> = again
        .iter()
        .map(|p| time(|| lab.save(p, &SaveOptions::default()).unwrap()))
        .collect();
    let run = lab.track(&track("resave")).unwrap();
    let linked: Vec<Duration> = again
        .iter()
        .map(|p| time(|| lab.save(p, &SaveOptions::default()).unwrap()))
        .collect();
    run.finish().unwrap();
    let p = report("save of saved content, no run", plain);
    let l = report("save of saved content inside a run", linked);
    println!(
        "{:<46} {:.1} µs (target <= 200 µs)",
        "=> output link through save (difference)",
        (l.as_secs_f64() - p.as_secs_f64()) * 1e6
    );
    // New content: the link shares the save's transaction.
    let mut k = 0;
    let mut new_file = || {
        k += 1;
        let p = root.join(format!("d/new{k}.txt"));
        std::fs::write(&p, format!("new {k}\n")).unwrap();
        p
    };
    let plain: Vec<Duration> = (0..300)
        .map(|_| {
            let p = new_file();
            time(|| lab.save(&p, &SaveOptions::default()).unwrap())
        })
        .collect();
    let run = lab.track(&track("new")).unwrap();
    let linked: Vec<Duration> = (0..300)
        .map(|_| {
            let p = new_file();
            time(|| lab.save(&p, &SaveOptions::default()).unwrap())
        })
        .collect();
    run.finish().unwrap();
    let p = report("save of a new file (durable), no run", plain);
    let l = report("save of a new file inside a run", linked);
    println!(
        "{:<46} {:.1} µs (noise: the save's fsync)\n",
        "=> output link in the save's transaction",
        (l.as_secs_f64() - p.as_secs_f64()) * 1e6
    );
}

/// A graph of pipelines: `pipelines` × `steps` runs, each reading the
/// previous step's main output and the previous pipeline's side output at
/// the previous step (so lineages widen as they deepen), and writing two
/// artifacts (main, side). Pipelines start from raw inputs.
fn build_graph(root: &Path, pipelines: usize, steps: usize) -> (Vec<String>, Vec<String>) {
    let mut conn = rusqlite::Connection::open(root.join(".labmesh/instance.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;",
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    let mut rng = rand::rng();
    let mut hex = || -> String {
        (0..64)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap())
            .collect()
    };
    let t0 = 1_700_000_000_000i64;
    let (mut finals, mut raws) = (Vec::new(), Vec::new());
    {
        let mut artifact = tx
            .prepare(
                "INSERT INTO artifact (uid, key, kind, suffix, hash, size, storage_id, is_latest,
                                       created_at, created_by, origin_id)
                 VALUES (?1, ?2, 'file', '.csv', ?3, 100, 1, 1, ?4, 1, 1)",
            )
            .unwrap();
        let mut transform = tx
            .prepare(
                "INSERT INTO transform (uid, key, kind, hash, is_latest, created_at, created_by, origin_id)
                 VALUES (?1, ?2, 'script', ?3, 1, ?4, 1, 1)",
            )
            .unwrap();
        let mut run = tx
            .prepare(
                "INSERT INTO run (uid, transform_id, status, started_at, finished_at, exit_code,
                                  created_by, origin_id)
                 VALUES (?1, ?2, 'completed', ?3, ?3 + 1000, 0, 1, 1)",
            )
            .unwrap();
        let mut input = tx
            .prepare("INSERT INTO run_input (run_id, artifact_id, linked_at) VALUES (?1, ?2, ?3)")
            .unwrap();
        let mut output = tx
            .prepare(
                "INSERT INTO run_output (run_id, artifact_id, created, linked_at) VALUES (?1, ?2, 1, ?3)",
            )
            .unwrap();
        let transforms: Vec<i64> = (0..steps)
            .map(|s| {
                transform
                    .execute(rusqlite::params![
                        labmesh::uid::new_family(),
                        format!("pipeline/step{s:02}.py"),
                        hex(),
                        t0
                    ])
                    .unwrap();
                tx.last_insert_rowid()
            })
            .collect();
        let mut add_artifact = |key: String, at: i64| -> (i64, String) {
            let uid = labmesh::uid::new_family();
            artifact
                .execute(rusqlite::params![uid, key, hex(), at])
                .unwrap();
            (tx.last_insert_rowid(), uid)
        };
        // (main, side) outputs of the previous pipeline, by step.
        let mut previous: Vec<(i64, i64)> = Vec::new();
        for p in 0..pipelines {
            let at = t0 + (p * steps) as i64 * 10;
            let (raw, raw_uid) = add_artifact(format!("raw/p{p:06}.csv"), at);
            if p % 97 == 0 {
                raws.push(raw_uid);
            }
            let mut current = Vec::with_capacity(steps);
            let mut main = raw;
            for (s, &t) in transforms.iter().enumerate() {
                let at = at + s as i64 * 10;
                run.execute(rusqlite::params![labmesh::uid::random(16), t, at])
                    .unwrap();
                let r = tx.last_insert_rowid();
                input.execute(rusqlite::params![r, main, at]).unwrap();
                if s > 0
                    && let Some(&(_, side)) = previous.get(s - 1)
                {
                    input.execute(rusqlite::params![r, side, at]).unwrap();
                }
                let (m, m_uid) = add_artifact(format!("p{p:06}/s{s:02}/main.csv"), at + 5);
                let (side, _) = add_artifact(format!("p{p:06}/s{s:02}/side.csv"), at + 5);
                output.execute(rusqlite::params![r, m, at + 5]).unwrap();
                output.execute(rusqlite::params![r, side, at + 5]).unwrap();
                current.push((m, side));
                main = m;
                if s + 1 == steps && p % 97 == 0 && p > steps {
                    finals.push(m_uid);
                }
            }
            previous = current;
        }
    }
    tx.commit().unwrap();
    // No ANALYZE: the product never runs it, so neither does its bench.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    (finals, raws)
}

fn lineage(work: &Path) {
    let (pipelines, steps) = if quick() { (2_500, 20) } else { (25_000, 20) };
    let root = work.join("graph");
    Instance::init(&root, &InitOptions::default()).unwrap();
    let started = Instant::now();
    let (finals, raws) = build_graph(&root, pipelines, steps);
    let lab = Instance::open(&root).unwrap();
    let count = |sql: &str| -> i64 { lab.connection().query_row(sql, [], |r| r.get(0)).unwrap() };
    println!(
        "graph: {} artifacts, {} runs, {} input and {} output links (built in {:.1} s)",
        count("SELECT count(*) FROM artifact"),
        count("SELECT count(*) FROM run"),
        count("SELECT count(*) FROM run_input"),
        count("SELECT count(*) FROM run_output"),
        started.elapsed().as_secs_f64()
    );
    for (name, opts) in [
        ("runs (newest 50)", RunListOptions::default()),
        (
            "runs --transform (one of 20 transforms)",
            RunListOptions {
                transform: Some("pipeline/step05.py".into()),
                ..RunListOptions::default()
            },
        ),
        (
            "runs --status errored (none)",
            RunListOptions {
                status: Some(RunStatus::Errored),
                ..RunListOptions::default()
            },
        ),
    ] {
        report(
            name,
            (0..100)
                .map(|_| time(|| lab.runs(&opts).unwrap()))
                .collect(),
        );
    }
    report(
        "finding dead recorders (no run running)",
        (0..200)
            .map(|_| time(|| lab.end_orphaned_runs().unwrap()))
            .collect(),
    );
    report(
        "artifact lookup by uid",
        (0..200)
            .map(|i| time(|| lab.get(&finals[i % finals.len()]).unwrap()))
            .collect(),
    );
    for (depth, direction, from) in [
        (20, Direction::Upstream, &finals),
        (20, Direction::Downstream, &raws),
        (5, Direction::Upstream, &finals),
        (1, Direction::Upstream, &finals),
    ] {
        let opts = LineageOptions { depth, direction };
        let sample = lab.lineage(&from[from.len() / 2], &opts).unwrap();
        let name = format!(
            "lineage {direction:?} depth {depth} ({} runs, {} artifacts)",
            sample.runs().count(),
            sample.artifacts().count()
        );
        let samples: Vec<Duration> = (0..200)
            .map(|i| time(|| lab.lineage(&from[i % from.len()], &opts).unwrap()))
            .collect();
        let median = report(&name, samples);
        if depth == 20 {
            println!(
                "{:<46} (target <= 50 ms: {})",
                "",
                if median.as_millis() <= 50 {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
    }
    let deep = lab
        .lineage(
            &finals[finals.len() / 2],
            &LineageOptions {
                depth: 20,
                direction: Direction::Upstream,
            },
        )
        .unwrap();
    for format in [
        Format::Text,
        Format::Mermaid,
        Format::Dot,
        Format::Svg,
        Format::Json,
    ] {
        report(
            &format!("render depth 20 as {format:?}"),
            (0..50).map(|_| time(|| deep.render(format))).collect(),
        );
    }
    // Links in the big graph: the cycle checks walk real lineages.
    let run = lab
        .track(&TrackOptions {
            key: Some("bench/consumer".into()),
            ..TrackOptions::default()
        })
        .unwrap();
    report(
        "input link in the big graph",
        finals
            .iter()
            .map(|u| time(|| run.add_input(u).unwrap()))
            .collect(),
    );
    report(
        "output link in the big graph (cycle check walks upstream)",
        raws.iter()
            .take(100)
            .map(|u| time(|| run.add_output(u).is_ok()))
            .collect(),
    );
    run.finish().unwrap();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes benches; nothing to list.
    }
    let work =
        tempfile::tempdir_in(std::env::var("LABMESH_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    // `LABMESH_BENCH_ONLY=history,lineage` runs only those sections.
    let only = std::env::var("LABMESH_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|s| s.trim() == name);
    if wanted("overhead") {
        cli_overhead(work.path());
    }
    if wanted("links") {
        links(work.path());
    }
    if wanted("history") {
        history::links_at_the_bad_shape(work.path(), quick());
    }
    if wanted("lineage") {
        lineage(work.path());
    }
}
