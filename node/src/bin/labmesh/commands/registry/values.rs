//! `labmesh validate`, `inspect` and `standardize`: values from the
//! command line or a file column, checked against a registry's names.
//! Empty cells and nulls are missing: reported apart, never invalid.

use std::path::PathBuf;

use clap::Args;
use labmesh::search::vocabulary::{FieldSpec, Verdict};

use super::super::Context;
use crate::output::{self, Table};

/// Above this many values, tables show only the rows that need attention.
const ALL_ROWS_UP_TO: usize = 200;

#[derive(Args)]
pub struct ValuesArgs {
    /// What to check against: label, label:TYPE or feature.
    field: FieldSpec,
    /// Values to check.
    values: Vec<String>,
    /// Read the values from this CSV or parquet file instead…
    #[arg(long, requires = "column")]
    file: Option<PathBuf>,
    /// …from this column.
    #[arg(long, requires = "file")]
    column: Option<String>,
    /// Show a row for every value, also above 200 values.
    #[arg(long)]
    all: bool,
}

/// The values to check: from the command line or a file column ("" for
/// empty cells and nulls, which judge as missing).
fn values(args: &ValuesArgs) -> anyhow::Result<Vec<String>> {
    match (&args.file, &args.column) {
        (Some(file), Some(column)) => {
            if !args.values.is_empty() {
                anyhow::bail!(
                    "give values either on the command line or with --file/--column, not both"
                );
            }
            Ok(labmesh::tabular::read_column(file, column)?
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect())
        }
        _ if args.values.is_empty() => {
            anyhow::bail!("no values to check: list them, or use --file FILE --column NAME")
        }
        _ => Ok(args.values.clone()),
    }
}

/// Whether to print every row; otherwise only those needing attention,
/// and a note saying so.
fn every_row(args: &ValuesArgs, n: usize) -> bool {
    args.all || n <= ALL_ROWS_UP_TO
}

fn note_hidden(hidden: usize) {
    if hidden > 0 {
        eprintln!(
            "({hidden} valid value(s) not shown: more than {ALL_ROWS_UP_TO} values; --all shows every row)"
        );
    }
}

fn note_missing(missing: usize) {
    if missing > 0 {
        eprintln!("{missing} value(s) are missing (empty cells or nulls) and were not checked");
    }
}

pub fn validate(ctx: &Context, args: ValuesArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let vocab = instance.vocabulary(&args.field)?;
    let values = values(&args)?;
    let verdicts: Vec<Verdict> = values.iter().map(|v| vocab.judge(v)).collect();
    let missing = verdicts.iter().filter(|v| **v == Verdict::Missing).count();
    let n_invalid = verdicts
        .iter()
        .filter(|v| !v.is_valid() && **v != Verdict::Missing)
        .count();
    let shown = |d: &Verdict| match d {
        Verdict::Valid => "yes",
        Verdict::Missing => "missing",
        _ => "no",
    };
    if ctx.json {
        output::json(
            &values
                .iter()
                .zip(&verdicts)
                .map(|(v, d)| match d {
                    Verdict::Missing => {
                        serde_json::json!({"value": null, "valid": null, "missing": true})
                    }
                    d => serde_json::json!({"value": v, "valid": d.is_valid()}),
                })
                .collect::<Vec<_>>(),
        )?;
    } else {
        let all = every_row(&args, values.len());
        let mut t = Table::new(&["value", "valid"]);
        let mut hidden = 0;
        for (v, d) in values.iter().zip(&verdicts) {
            if all || !d.is_valid() {
                t.row(vec![v.clone(), shown(d).into()]);
            } else {
                hidden += 1;
            }
        }
        t.print();
        note_hidden(hidden);
        note_missing(missing);
    }
    if n_invalid > 0 {
        anyhow::bail!(
            "{n_invalid} of {} value(s) are not valid {} names; `labmesh inspect` suggests fixes",
            values.len() - missing,
            args.field
        );
    }
    if !ctx.json {
        eprintln!("all {} value(s) are valid", values.len() - missing);
    }
    Ok(())
}

pub fn inspect(ctx: &Context, args: ValuesArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let vocab = instance.vocabulary(&args.field)?;
    let values = values(&args)?;
    let verdicts = vocab.inspect_all(values.iter().map(String::as_str));
    if ctx.json {
        return output::json(
            &values
                .iter()
                .zip(&verdicts)
                .map(|(v, d)| serde_json::json!({"value": v, "verdict": d}))
                .collect::<Vec<_>>(),
        );
    }
    let all = every_row(&args, values.len());
    let mut t = Table::new(&["value", "status", "fix"]);
    let (mut ok, mut fixable, mut bad, mut missing, mut hidden) = (0, 0, 0, 0, 0);
    for (v, d) in values.iter().zip(&verdicts) {
        let (status, fix) = match d {
            Verdict::Valid => {
                ok += 1;
                ("validated", String::new())
            }
            Verdict::Case { standard } => {
                fixable += 1;
                ("case differs", standard.clone())
            }
            Verdict::Synonym { standard } => {
                fixable += 1;
                ("synonym", standard.clone())
            }
            Verdict::Invalid { suggestion } => {
                bad += 1;
                (
                    "not validated",
                    suggestion
                        .as_ref()
                        .map(|s| format!("did you mean {s:?}?"))
                        .unwrap_or_default(),
                )
            }
            Verdict::Missing => {
                missing += 1;
                ("missing", String::new())
            }
        };
        if all || !matches!(d, Verdict::Valid) {
            t.row(vec![v.clone(), status.into(), fix]);
        } else {
            hidden += 1;
        }
    }
    t.print();
    note_hidden(hidden);
    eprintln!("{ok} validated, {fixable} fixable with `labmesh standardize`, {bad} not validated");
    note_missing(missing);
    Ok(())
}

pub fn standardize(ctx: &Context, args: ValuesArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let vocab = instance.vocabulary(&args.field)?;
    let values = values(&args)?;
    // (value, standard, known); missing values stay empty, one line each,
    // so the output lines up with the input.
    let out: Vec<(String, String, bool)> = values
        .iter()
        .map(|v| match vocab.judge(v) {
            Verdict::Valid => (v.clone(), v.clone(), true),
            Verdict::Missing => (v.clone(), String::new(), false),
            verdict => match verdict.standard() {
                Some(s) => (v.clone(), s.to_string(), true),
                None => (v.clone(), v.clone(), false),
            },
        })
        .collect();
    if ctx.json {
        return output::json(
            &out.iter()
                .map(|(v, s, known)| serde_json::json!({"value": v, "standard": s, "known": known}))
                .collect::<Vec<_>>(),
        );
    }
    let mut missing = 0;
    for (v, s, known) in &out {
        if *known {
            println!("{s}");
        } else if v.trim().is_empty() {
            missing += 1;
            println!();
        } else {
            println!("{v}");
            eprintln!(
                "note: {v:?} is not a known {} name; left as it is",
                args.field
            );
        }
    }
    note_missing(missing);
    Ok(())
}
