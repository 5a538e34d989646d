//! `labmesh demo`: a guided run on an embedded default — a fresh instance
//! with local storage in a temporary (or given) directory, sample plate
//! readings saved, versioned, grouped in a folder, looked up and verified;
//! then a second lab on loopback that subscribes to a shared collection
//! (`demo_mesh`).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use labmesh::{InitOptions, Instance, ListOptions, SaveOptions, SaveStatus};

use super::Context;
use crate::output::{self, Table};

#[derive(Args)]
pub struct DemoArgs {
    /// Where to create the demo labs, DIR/lab-a and DIR/lab-b (default: a
    /// temporary directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn demo(ctx: &Context, args: DemoArgs) -> anyhow::Result<()> {
    let temp;
    let kept = args.dir.is_some();
    let root = match args.dir {
        Some(dir) => dir.join("lab-a"),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().join("lab-a")
        }
    };
    let step = |title: &str| {
        if !ctx.json {
            println!("\n== {title}");
        }
    };

    step("init: a lab instance with local storage");
    let started = Instant::now();
    let lab = Instance::init(
        &root,
        &InitOptions {
            user: Some("demo".into()),
            ..Default::default()
        },
    )?;
    let init_ms = started.elapsed().as_secs_f64() * 1e3;
    if !ctx.json {
        println!(
            "{} in {init_ms:.1} ms; node {}",
            root.display(),
            lab.peer_id()
        );
    }

    step("save: three plate readings and a sequencing run folder");
    let data = root.join("data");
    std::fs::create_dir_all(data.join("run42/lane1"))?;
    for plate in 1..=3 {
        let rows: String = (0..96)
            .map(|w| {
                format!(
                    "{}{},{:.3}\n",
                    (b'A' + (w / 12) as u8) as char,
                    w % 12 + 1,
                    0.1 + f64::from(w * plate) / 1000.0
                )
            })
            .collect();
        std::fs::write(
            data.join(format!("plate{plate}.csv")),
            format!("well,od600\n{rows}"),
        )?;
    }
    std::fs::write(data.join("run42/lane1/reads.fastq"), "@r1\nACGT\n+\nIIII\n")?;
    std::fs::write(data.join("run42/samplesheet.csv"), "sample,lane\nS1,1\n")?;
    let plates: Vec<PathBuf> = (1..=3)
        .map(|p| data.join(format!("plate{p}.csv")))
        .collect();
    let started = Instant::now();
    let saved = lab.save_many(
        &plates,
        &SaveOptions {
            description: Some("OD600 plate reading".into()),
            ..Default::default()
        },
    )?;
    let batch_ms = started.elapsed().as_secs_f64() * 1e3;
    let folder = lab.save(
        data.join("run42"),
        &SaveOptions {
            description: Some("sequencing run 42".into()),
            ..Default::default()
        },
    )?;
    if !ctx.json {
        for s in saved.iter().chain([&folder]) {
            println!(
                "saved {} {} ({})",
                s.artifact.uid,
                s.artifact.label(),
                output::size(s.artifact.size)
            );
        }
        println!("(3 files durably saved in one batch in {batch_ms:.1} ms)");
    }

    step("dedup and versions: the same bytes again, then a corrected plate 2");
    let again = lab.save(&plates[1], &SaveOptions::default())?;
    assert_eq!(again.status, SaveStatus::Existing);
    std::fs::write(&plates[1], "well,od600\nA1,0.123\n")?;
    let v2 = lab.save(
        &plates[1],
        &SaveOptions {
            description: Some("OD600, re-read".into()),
            ..Default::default()
        },
    )?;
    if !ctx.json {
        output::notices(&again.notices);
        if let SaveStatus::NewVersion { previous } = &v2.status {
            println!("new version {} of {previous}", v2.artifact.uid);
        }
    }

    step("ls: the latest version of each artifact");
    let listed = lab.list(&ListOptions::default())?;
    if !ctx.json {
        let mut table = Table::new(&["uid", "key", "size", "description"]);
        for a in &listed {
            table.row(vec![
                a.uid.clone(),
                a.label().to_string(),
                output::size(a.size),
                a.description.clone().unwrap_or_default(),
            ]);
        }
        table.print();
    }

    step("cache: verified local paths to the content");
    let plate = lab.cache("data/plate2.csv")?;
    let run = lab.cache("data/run42")?;
    if !ctx.json {
        println!("data/plate2.csv -> {}", plate.path.display());
        println!("data/run42      -> {}/", run.path.display());
        println!("\nversions of data/plate2.csv:");
        for v in lab.versions("data/plate2.csv")? {
            println!(
                "  {} {} {}",
                v.uid,
                if v.is_latest { "latest" } else { "      " },
                v.description.unwrap_or_default()
            );
        }
    }
    let plate_keys: Vec<String> = saved
        .iter()
        .filter_map(|s| s.artifact.key.clone())
        .collect();
    drop(lab);
    let mesh = super::demo_mesh::run(&root, &plate_keys, ctx.json)?;
    let info = Instance::open(&root)?.info()?;
    if ctx.json {
        return output::json(&serde_json::json!({
            "root": root, "init_ms": init_ms, "batch_ms": batch_ms, "artifacts": listed, "info": info,
            "mesh": mesh,
        }));
    }
    println!(
        "\nlab A: {} artifacts, {} versions, {} in storage.",
        info.artifacts,
        info.versions,
        output::size(info.bytes)
    );
    if kept {
        println!(
            "Explore them: labmesh --instance {} describe data/plate2.csv; labmesh --instance {} ls --from lab-a",
            root.display(),
            root.with_file_name("lab-b").display()
        );
    } else {
        println!("The demo labs were temporary; `labmesh demo --dir DIR` keeps them to explore.");
    }
    Ok(())
}
