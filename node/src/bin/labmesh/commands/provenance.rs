//! Provenance verbs: run, runs, transform, lineage.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use labmesh::Artifact;
use labmesh::provenance::{
    Direction, Format, LineageOptions, Run, RunCommand, RunListOptions, RunOutput, RunStatus,
    Transform,
};
use serde::Serialize;

use super::Context;
use crate::output::{self, Table};

#[derive(Args)]
pub struct RunArgs {
    /// Name the transform (default: the script's path inside the instance,
    /// else the program's name). Needed for scripts outside the instance.
    #[arg(long)]
    key: Option<String>,
    /// script, pipeline, notebook or command (default: from the script's name).
    #[arg(long)]
    kind: Option<String>,
    /// A description of the transform.
    #[arg(long, short)]
    description: Option<String>,
    /// An artifact the command reads without going through labmesh
    /// (uid, uid prefix or key); repeatable.
    #[arg(long = "input", value_name = "ARTIFACT")]
    inputs: Vec<String>,
    /// A file or folder the command writes: saved and linked as an output
    /// when it exits, whatever its status; repeatable.
    #[arg(long = "output", value_name = "PATH")]
    outputs: Vec<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<OsString>,
}

#[derive(Args)]
pub struct RunsArgs {
    /// Show one run in detail: its inputs, outputs, parameters and environment.
    run: Option<String>,
    /// Only runs of this transform (key or uid; any version).
    #[arg(long)]
    transform: Option<String>,
    /// Only runs with this status: running, completed, errored or killed.
    #[arg(long)]
    status: Option<String>,
    /// At most this many runs, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Args)]
pub struct TransformArgs {
    #[command(subcommand)]
    action: TransformAction,
}

#[derive(Subcommand)]
enum TransformAction {
    /// The latest version of each transform.
    Ls,
    /// Every version of a transform, with source hashes and run counts.
    Show {
        /// A transform key (e.g. analyse.py) or uid.
        transform: String,
    },
}

#[derive(Args)]
pub struct LineageArgs {
    /// The artifact: uid, uid prefix or key.
    artifact: String,
    /// How many runs deep to walk.
    #[arg(long, default_value_t = 10)]
    depth: u32,
    /// What was derived from the artifact, instead of where it came from.
    #[arg(long)]
    downstream: bool,
    /// text, mermaid, dot, svg or json (--json means json).
    #[arg(long, default_value = "text")]
    format: String,
    /// Write to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<()> {
    let code = run_command(ctx, args)?;
    if code != 0 {
        // The command's exit code is ours, like `time` or `nice`.
        let _ = std::io::stdout().flush();
        std::process::exit(code);
    }
    Ok(())
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    }
}

fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn outcome(run: &Run) -> String {
    match (run.status, run.exit_code, run.signal) {
        (RunStatus::Killed, _, Some(sig)) => format!("killed by {} ({sig})", signal_name(sig)),
        (RunStatus::Errored, Some(code), _) => format!("errored (exit {code})"),
        (status, _, _) => status.as_str().to_string(),
    }
}

fn run_command(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    let instance = ctx.open()?;
    let kind = args.kind.as_deref().map(str::parse).transpose()?;
    let executed = instance.run_command(&RunCommand {
        argv: args.command,
        key: args.key,
        kind,
        description: args.description,
        inputs: args.inputs,
        outputs: args.outputs,
        echo: true,
        handle_signals: true,
    })?;
    let run = &executed.run;
    if let Some(error) = &run.error {
        let hint = match executed.exit_code {
            127 => "check the command's spelling and PATH",
            126 => {
                "make it executable (`chmod +x`), or run it through its interpreter (`sh script.sh`)"
            }
            _ => "see the error above",
        };
        eprintln!(
            "error: {error}\n  hint: {hint}; the run was recorded as errored (`labmesh runs {}`)",
            run.uid
        );
    }
    output::notices(&executed.notices);
    eprintln!(
        "labmesh: run {} {} after {}: {} v{}, {} input(s), {} output(s)",
        run.uid,
        outcome(run),
        duration(run.duration_ms),
        run.transform.key,
        run.transform.version,
        run.n_inputs,
        run.n_outputs
    );
    if ctx.json {
        output::json(run)?;
    }
    Ok(executed.exit_code)
}

/// `runs RUN`: the run with what it read and wrote.
#[derive(Serialize)]
struct RunDetail {
    #[serde(flatten)]
    run: Run,
    inputs: Vec<Artifact>,
    outputs: Vec<RunOutput>,
}

pub fn runs(ctx: &Context, args: RunsArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    if let Some(query) = &args.run {
        let run = instance.run(query)?;
        let inputs = instance.run_inputs(&run)?;
        let outputs = instance.run_outputs(&run)?;
        if ctx.json {
            return output::json(&RunDetail {
                run,
                inputs,
                outputs,
            });
        }
        print_run(&run, &inputs, &outputs);
        return Ok(());
    }
    let opts = RunListOptions {
        transform: args.transform,
        status: args.status.as_deref().map(str::parse).transpose()?,
        limit: args.limit,
    };
    let runs = instance.runs(&opts)?;
    if ctx.json {
        return output::json(&runs);
    }
    if runs.is_empty() {
        let status: Option<RunStatus> = opts.status;
        match (status, &opts.transform) {
            (None, None) => eprintln!("no runs yet; `labmesh run -- <command>` records one"),
            (Some(s), None) => eprintln!("no {} runs", s.as_str()),
            (None, Some(t)) => eprintln!("no runs of {t}"),
            (Some(s), Some(t)) => eprintln!("no {} runs of {t}", s.as_str()),
        }
        return Ok(());
    }
    let mut table = Table::new(&[
        "uid",
        "transform",
        "status",
        "started",
        "duration",
        "in",
        "out",
    ]);
    for r in &runs {
        table.row(vec![
            r.uid.clone(),
            output::clip(&format!("{} v{}", r.transform.key, r.transform.version), 40),
            outcome(r),
            labmesh::time::short(r.started_at),
            duration(r.duration_ms),
            r.n_inputs.to_string(),
            r.n_outputs.to_string(),
        ]);
    }
    table.print();
    Ok(())
}

fn print_run(run: &Run, inputs: &[Artifact], outputs: &[RunOutput]) {
    let env = &run.environment;
    let field = |k: &str| env.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let mut environment: Vec<String> = [field("os"), field("arch"), field("os_release")]
        .into_iter()
        .flatten()
        .collect();
    if let Some(h) = field("hostname") {
        environment.push(format!("host {h}"));
    }
    if let Some(u) = field("user") {
        environment.push(format!("user {u}"));
    }
    if let Some(v) = field("labmesh") {
        environment.push(format!("labmesh {v}"));
    }
    if let Some(i) = field("interpreter") {
        environment.push(i);
    }
    let command = run.params.get("argv").and_then(|a| a.as_array()).map(|a| {
        a.iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let mut pairs = vec![
        ("uid", run.uid.clone()),
        (
            "transform",
            format!(
                "{} v{} ({}, {})",
                run.transform.key,
                run.transform.version,
                run.transform.kind.as_str(),
                run.transform.uid
            ),
        ),
        ("status", outcome(run)),
        (
            "started",
            format!(
                "{} by {}",
                labmesh::time::rfc3339(run.started_at),
                run.created_by
            ),
        ),
        (
            "finished",
            match run.finished_at {
                Some(f) => format!(
                    "{} ({})",
                    labmesh::time::rfc3339(f),
                    duration(run.duration_ms)
                ),
                None => "-".into(),
            },
        ),
    ];
    if let Some(c) = command {
        pairs.push(("command", c));
    }
    if let Some(options) = run.params.get("options") {
        pairs.push(("parameters", options.to_string()));
    } else if run.params.get("argv").is_none() && run.params != serde_json::json!({}) {
        pairs.push(("parameters", run.params.to_string()));
    }
    pairs.push(("environment", environment.join(", ")));
    if let Some(cwd) = field("cwd") {
        pairs.push(("directory", cwd));
    }
    if let Some(e) = &run.error {
        pairs.push(("error", e.clone()));
    }
    if let Some(r) = &run.report {
        pairs.push(("output", format!("{r} (`labmesh cache {r}`)")));
    }
    if let Some(p) = &run.parent {
        pairs.push(("parent run", p.clone()));
    }
    for n in &run.notes {
        pairs.push(("note", n.clone()));
    }
    output::fields(&pairs);
    println!();
    println!("inputs ({})", inputs.len());
    if !inputs.is_empty() {
        let mut t = Table::new(&["uid", "key", "size"]);
        for a in inputs {
            t.row(vec![
                a.uid.clone(),
                a.label().to_string(),
                output::size(a.size),
            ]);
        }
        t.print();
    }
    println!();
    println!("outputs ({})", outputs.len());
    if !outputs.is_empty() {
        let mut t = Table::new(&["uid", "key", "size", ""]);
        for o in outputs {
            t.row(vec![
                o.artifact.uid.clone(),
                o.artifact.label().to_string(),
                output::size(o.artifact.size),
                if o.created {
                    String::new()
                } else {
                    "(produced again; saved earlier)".into()
                },
            ]);
        }
        t.print();
    }
}

pub fn transform(ctx: &Context, args: TransformArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    match args.action {
        TransformAction::Ls => {
            let all = instance.transforms()?;
            if ctx.json {
                return output::json(&all);
            }
            if all.is_empty() {
                eprintln!("no transforms yet; `labmesh run -- <command>` records one");
                return Ok(());
            }
            let mut t = Table::new(&["uid", "key", "kind", "version", "runs", "created"]);
            for tr in &all {
                t.row(vec![
                    tr.uid.clone(),
                    tr.key.clone(),
                    tr.kind.as_str().to_string(),
                    tr.version.to_string(),
                    tr.n_runs.to_string(),
                    labmesh::time::short(tr.created_at),
                ]);
            }
            t.print();
        }
        TransformAction::Show { transform } => {
            let versions = instance.transform_versions(&transform)?;
            if ctx.json {
                return output::json(&versions);
            }
            print_versions(&versions);
        }
    }
    Ok(())
}

fn print_versions(versions: &[Transform]) {
    let Some(last) = versions.last() else { return };
    println!(
        "{} ({}): {} version(s){}",
        last.key,
        last.kind.as_str(),
        versions.len(),
        last.description
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default()
    );
    let mut t = Table::new(&[
        "#",
        "uid",
        "source hash",
        "size",
        "created",
        "runs",
        "state",
    ]);
    for v in versions {
        t.row(vec![
            v.version.to_string(),
            v.uid.clone(),
            v.hash
                .as_deref()
                .map_or("-".to_string(), |h| format!("blake3:{}", &h[..16])),
            v.size.map_or("-".to_string(), output::size),
            labmesh::time::short(v.created_at),
            v.n_runs.to_string(),
            if v.is_latest { "latest" } else { "" }.to_string(),
        ]);
    }
    t.print();
}

pub fn lineage(ctx: &Context, args: LineageArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let format: Format = if ctx.json {
        Format::Json
    } else {
        args.format.parse()?
    };
    let lineage = instance.lineage(
        &args.artifact,
        &LineageOptions {
            depth: args.depth,
            direction: if args.downstream {
                Direction::Downstream
            } else {
                Direction::Upstream
            },
        },
    )?;
    let rendered = lineage.render(format);
    match &args.output {
        Some(path) => {
            std::fs::write(path, rendered)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            eprintln!(
                "wrote the lineage of {} ({} artifact(s), {} run(s)) to {}",
                args.artifact,
                lineage.artifacts().count(),
                lineage.runs().count(),
                path.display()
            );
        }
        None => print!("{rendered}"),
    }
    Ok(())
}
