//! Registry verbs: label, feature, annotate, schema, collection, filter,
//! search, validate, inspect, standardize.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use labmesh::query::{FilterOptions, Found};
use labmesh::registry::feature::FeatureSpec;
use labmesh::registry::label::LabelSpec;
use labmesh::registry::split_list;
use labmesh::search::Registry;
use labmesh::search::vocabulary::{FieldSpec, Verdict};

use super::Context;
use crate::output::{self, Table};

#[derive(Args)]
pub struct LabelArgs {
    #[command(subcommand)]
    action: LabelAction,
}

#[derive(Subcommand)]
enum LabelAction {
    /// Add a label (an exact duplicate returns the existing one).
    Add {
        name: String,
        /// The label's type, e.g. tissue, cell_type, assay.
        #[arg(long = "type", value_name = "TYPE")]
        type_: Option<String>,
        /// A parent label (name, type:name or uid); repeatable.
        #[arg(long = "parent", value_name = "LABEL")]
        parents: Vec<String>,
        /// Other names for the same thing, comma-separated.
        #[arg(long, value_name = "A,B")]
        synonyms: Option<String>,
        #[arg(long, short)]
        description: Option<String>,
        /// Create it even though a near-duplicate exists.
        #[arg(long)]
        force: bool,
    },
    /// List labels (of one type).
    Ls {
        #[arg(long = "type", value_name = "TYPE")]
        type_: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Show a label: type, parents, synonyms.
    Show { label: String },
    /// Add many labels from a column of a CSV or parquet file, in one transaction.
    Import {
        file: PathBuf,
        #[arg(long)]
        column: String,
        #[arg(long = "type", value_name = "TYPE")]
        type_: Option<String>,
    },
}

#[derive(Args)]
pub struct FeatureArgs {
    #[command(subcommand)]
    action: FeatureAction,
}

#[derive(Subcommand)]
enum FeatureAction {
    /// Add a feature: a typed dimension of annotation.
    Add {
        name: String,
        /// int, float, bool, str, date, datetime, json, cat[label], cat[label:TYPE], list[…]
        #[arg(long)]
        dtype: String,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long, value_name = "A,B")]
        synonyms: Option<String>,
        #[arg(long, short)]
        description: Option<String>,
        #[arg(long)]
        force: bool,
    },
    /// List features.
    Ls,
}

#[derive(Args)]
pub struct AnnotateArgs {
    /// The artifact (uid, uid prefix or key).
    artifact: String,
    /// A label (name, type:name or uid); repeatable.
    #[arg(long = "label", value_name = "LABEL")]
    labels: Vec<String>,
    /// A feature value, NAME=VALUE (lists comma-separated); repeatable.
    #[arg(long = "feature", value_name = "NAME=VALUE")]
    features: Vec<String>,
}

#[derive(Args)]
pub struct SchemaArgs {
    #[command(subcommand)]
    action: SchemaAction,
}

#[derive(Subcommand)]
enum SchemaAction {
    /// Add a feature set (the same set again returns the existing schema).
    Add {
        name: String,
        #[arg(long = "feature", value_name = "FEATURE", required = true)]
        features: Vec<String>,
        /// The order of the features matters.
        #[arg(long)]
        ordered: bool,
        #[arg(long, short)]
        description: Option<String>,
        #[arg(long)]
        force: bool,
    },
    /// Show a schema's features.
    Show { schema: String },
}

#[derive(Args)]
pub struct CollectionArgs {
    #[command(subcommand)]
    action: CollectionAction,
}

#[derive(Subcommand)]
enum CollectionAction {
    /// Create a collection, or append artifacts to it as a new version.
    Add {
        key: String,
        #[arg(long = "artifact", value_name = "ARTIFACT", required = true)]
        artifacts: Vec<String>,
        #[arg(long, short)]
        description: Option<String>,
    },
    /// Show a collection and its artifacts.
    Show { collection: String },
    /// List collections.
    Ls,
}

#[derive(Args)]
pub struct FilterArgs {
    /// artifact, label, feature or collection.
    registry: Registry,
    /// e.g. 'key ^= "raw/" and size > 1000 and labels.name = "liver" and temperature >= 37'
    expression: String,
    /// A field to order by; -FIELD for descending.
    #[arg(long, allow_hyphen_values = true)]
    order: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Include every version, not only the latest.
    #[arg(long)]
    all_versions: bool,
    /// Print CSV instead of a table.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
}

#[derive(Args)]
pub struct SearchArgs {
    /// artifact, label, feature, collection or schema.
    registry: Registry,
    query: String,
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

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
}

pub fn label(ctx: &Context, args: LabelArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    match args.action {
        LabelAction::Add {
            name,
            type_,
            parents,
            synonyms,
            description,
            force,
        } => {
            let spec = LabelSpec {
                name,
                type_,
                description,
                parents,
                synonyms: synonyms.as_deref().map(split_list).unwrap_or_default(),
                force,
            };
            let added = instance.add_label(&spec)?;
            if ctx.json {
                return output::json(&added);
            }
            let l = &added.record;
            if added.created {
                println!("added label {} {}{}", l.uid, l.name, type_suffix(&l.type_));
            } else {
                println!(
                    "exists: label {} {}{}",
                    l.uid,
                    l.name,
                    type_suffix(&l.type_)
                );
            }
            output::notices(&added.notices);
        }
        LabelAction::Ls { type_, limit } => {
            let labels = instance.labels(type_.as_deref(), limit)?;
            if ctx.json {
                return output::json(&labels);
            }
            let mut t = Table::new(&["uid", "name", "type", "parents", "synonyms"]);
            for l in labels {
                t.row(vec![
                    l.uid,
                    l.name,
                    l.type_.unwrap_or_default(),
                    l.parents.join(", "),
                    l.synonyms.join(", "),
                ]);
            }
            t.print();
        }
        LabelAction::Show { label } => {
            let l = instance.label(&label)?;
            if ctx.json {
                return output::json(&l);
            }
            output::fields(&[
                ("uid", l.uid.clone()),
                ("name", l.name.clone()),
                ("type", l.type_.clone().unwrap_or_else(|| "-".into())),
                ("parents", l.parents.join(", ")),
                ("synonyms", l.synonyms.join(", ")),
                (
                    "description",
                    l.description.clone().unwrap_or_else(|| "-".into()),
                ),
            ]);
        }
        LabelAction::Import {
            file,
            column,
            type_,
        } => {
            let values = labmesh::tabular::read_column(&file, &column)?;
            let labels: Vec<(String, Option<String>)> = values
                .into_iter()
                .flatten()
                .map(|v| (v, type_.clone()))
                .collect();
            let n = instance.add_labels_bulk(&labels)?;
            println!(
                "added {n} label(s) ({} values read; duplicates skipped)",
                labels.len()
            );
        }
    }
    Ok(())
}

fn type_suffix(t: &Option<String>) -> String {
    t.as_ref()
        .map(|t| format!(" (type {t})"))
        .unwrap_or_default()
}

pub fn feature(ctx: &Context, args: FeatureArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    match args.action {
        FeatureAction::Add {
            name,
            dtype,
            unit,
            synonyms,
            description,
            force,
        } => {
            let spec = FeatureSpec {
                name,
                dtype,
                unit,
                description,
                synonyms: synonyms.as_deref().map(split_list).unwrap_or_default(),
                force,
            };
            let added = instance.add_feature(&spec)?;
            if ctx.json {
                return output::json(&added);
            }
            let f = &added.record;
            let verb = if added.created {
                "added feature"
            } else {
                "exists: feature"
            };
            println!(
                "{verb} {} {}: {}{}",
                f.uid,
                f.name,
                f.dtype,
                f.unit
                    .as_ref()
                    .map(|u| format!(" [{u}]"))
                    .unwrap_or_default()
            );
            output::notices(&added.notices);
        }
        FeatureAction::Ls => {
            let features = instance.features()?;
            if ctx.json {
                return output::json(&features);
            }
            let mut t = Table::new(&["uid", "name", "dtype", "unit", "synonyms"]);
            for f in features {
                t.row(vec![
                    f.uid,
                    f.name,
                    f.dtype,
                    f.unit.unwrap_or_default(),
                    f.synonyms.join(", "),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

pub fn annotate(ctx: &Context, args: AnnotateArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let mut features = Vec::new();
    for f in &args.features {
        let Some((name, value)) = f.split_once('=') else {
            anyhow::bail!("--feature {f:?} is not NAME=VALUE (e.g. temperature=37.5)");
        };
        features.push((name.trim().to_string(), value.to_string()));
    }
    if args.labels.is_empty() && features.is_empty() {
        anyhow::bail!("nothing to annotate: give --label LABEL and/or --feature NAME=VALUE");
    }
    let annotations = instance.annotate(&args.artifact, &args.labels, &features)?;
    if ctx.json {
        return output::json(&annotations);
    }
    print_annotations(&annotations);
    Ok(())
}

pub fn print_annotations(a: &labmesh::registry::annotate::Annotations) {
    if !a.labels.is_empty() {
        println!("labels    {}", a.labels.join(", "));
    }
    for (name, values) in &a.features {
        println!("{name:<9} {}", values.join(", "));
    }
}

pub fn schema(ctx: &Context, args: SchemaArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    match args.action {
        SchemaAction::Add {
            name,
            features,
            ordered,
            description,
            force,
        } => {
            let added =
                instance.add_schema(&name, &features, ordered, description.as_deref(), force)?;
            if ctx.json {
                return output::json(&added);
            }
            let s = &added.record;
            let verb = if added.created {
                "added schema"
            } else {
                "exists: schema"
            };
            println!("{verb} {} {} ({})", s.uid, s.name, s.features.join(", "));
            output::notices(&added.notices);
        }
        SchemaAction::Show { schema } => {
            let s = instance.schema(&schema)?;
            if ctx.json {
                return output::json(&s);
            }
            output::fields(&[
                ("uid", s.uid.clone()),
                ("name", s.name.clone()),
                ("features", s.features.join(", ")),
                ("ordered", s.ordered.to_string()),
                ("hash", s.hash.clone()),
            ]);
        }
    }
    Ok(())
}

pub fn collection(ctx: &Context, args: CollectionArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    match args.action {
        CollectionAction::Add {
            key,
            artifacts,
            description,
        } => {
            let added = instance.add_collection(&key, &artifacts, description.as_deref())?;
            if ctx.json {
                return output::json(&added);
            }
            let c = &added.record;
            let verb = if added.created {
                "saved collection"
            } else {
                "exists: collection"
            };
            println!("{verb} {} {} ({} artifacts)", c.uid, c.key, c.n_artifacts);
            output::notices(&added.notices);
        }
        CollectionAction::Show { collection } => {
            let c = instance.collection(&collection)?;
            let members = instance.collection_members(&c)?;
            if ctx.json {
                return output::json(&serde_json::json!({ "collection": c, "artifacts": members }));
            }
            println!(
                "{} {} ({} artifacts{})",
                c.uid,
                c.key,
                c.n_artifacts,
                if c.is_latest { ", latest" } else { "" }
            );
            let mut t = Table::new(&["#", "uid", "key", "size"]);
            for (i, a) in members.iter().enumerate() {
                t.row(vec![
                    (i + 1).to_string(),
                    a.uid.clone(),
                    a.label().to_string(),
                    output::size(a.size),
                ]);
            }
            t.print();
        }
        CollectionAction::Ls => {
            let all = instance.collections()?;
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["uid", "key", "artifacts", "created", "description"]);
            for c in all {
                t.row(vec![
                    c.uid,
                    c.key,
                    c.n_artifacts.to_string(),
                    labmesh::time::short(c.created_at),
                    c.description.unwrap_or_default(),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

pub fn filter(ctx: &Context, args: FilterArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let opts = FilterOptions {
        order: args.order,
        limit: args.limit,
        all_versions: args.all_versions,
    };
    let found = instance.filter(args.registry, &args.expression, &opts)?;
    if ctx.json {
        return output::json(&found);
    }
    let (header, rows): (Vec<&'static str>, Vec<Vec<String>>) = match &found {
        Found::Artifacts(v) => (
            vec!["uid", "key", "size", "created", "description"],
            v.iter()
                .map(|a| {
                    vec![
                        a.uid.clone(),
                        a.label().to_string(),
                        if args.csv {
                            a.size.to_string()
                        } else {
                            output::size(a.size)
                        },
                        if args.csv {
                            labmesh::time::rfc3339(a.created_at)
                        } else {
                            labmesh::time::short(a.created_at)
                        },
                        a.description.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
        Found::Labels(v) => (
            vec!["uid", "name", "type", "parents"],
            v.iter()
                .map(|l| {
                    vec![
                        l.uid.clone(),
                        l.name.clone(),
                        l.type_.clone().unwrap_or_default(),
                        l.parents.join(";"),
                    ]
                })
                .collect(),
        ),
        Found::Features(v) => (
            vec!["uid", "name", "dtype", "unit"],
            v.iter()
                .map(|f| {
                    vec![
                        f.uid.clone(),
                        f.name.clone(),
                        f.dtype.clone(),
                        f.unit.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
        Found::Collections(v) => (
            vec!["uid", "key", "artifacts", "description"],
            v.iter()
                .map(|c| {
                    vec![
                        c.uid.clone(),
                        c.key.clone(),
                        c.n_artifacts.to_string(),
                        c.description.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
    };
    if args.csv {
        println!("{}", header.join(","));
        for r in rows {
            println!(
                "{}",
                r.iter()
                    .map(|c| output::csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        return Ok(());
    }
    if rows.is_empty() {
        eprintln!("nothing matches");
        return Ok(());
    }
    let mut t = Table::new(&header);
    for r in rows {
        t.row(r);
    }
    t.print();
    if found.len() == args.limit {
        eprintln!("(the first {}; --limit N shows more)", args.limit);
    }
    Ok(())
}

pub fn search(ctx: &Context, args: SearchArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let hits = instance.search(args.registry, &args.query, args.limit)?;
    if ctx.json {
        return output::json(&hits);
    }
    if hits.is_empty() {
        eprintln!("no {:?} matches {:?}", args.registry, args.query);
        return Ok(());
    }
    let mut t = Table::new(&["uid", "name", "match", "detail"]);
    for h in hits {
        let tier = match h.tier {
            labmesh::search::Tier::Fuzzy => format!(
                "fuzzy ({} edit{})",
                h.distance,
                if h.distance == 1 { "" } else { "s" }
            ),
            other => format!("{other:?}").to_lowercase(),
        };
        t.row(vec![h.uid, h.name, tier, h.detail.unwrap_or_default()]);
    }
    t.print();
    Ok(())
}

/// The values to check: from the command line or a file column.
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

pub fn validate(ctx: &Context, args: ValuesArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let vocab = instance.vocabulary(&args.field)?;
    let values = values(&args)?;
    let valid: Vec<bool> = values.iter().map(|v| vocab.judge(v).is_valid()).collect();
    let n_invalid = valid.iter().filter(|v| !**v).count();
    if ctx.json {
        output::json(
            &values
                .iter()
                .zip(&valid)
                .map(|(v, ok)| serde_json::json!({"value": v, "valid": ok}))
                .collect::<Vec<_>>(),
        )?;
    } else if values.len() <= 200 {
        let mut t = Table::new(&["value", "valid"]);
        for (v, ok) in values.iter().zip(&valid) {
            t.row(vec![
                v.clone(),
                if *ok { "yes".into() } else { "no".into() },
            ]);
        }
        t.print();
    }
    if n_invalid > 0 {
        anyhow::bail!(
            "{n_invalid} of {} value(s) are not valid {} names; `labmesh inspect` suggests fixes",
            values.len(),
            args.field
        );
    }
    if !ctx.json {
        eprintln!("all {} value(s) are valid", values.len());
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
    let mut t = Table::new(&["value", "status", "fix"]);
    let (mut ok, mut fixable, mut bad) = (0, 0, 0);
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
        };
        if values.len() <= 200 || !matches!(d, Verdict::Valid) {
            t.row(vec![v.clone(), status.into(), fix]);
        }
    }
    t.print();
    eprintln!("{ok} validated, {fixable} fixable with `labmesh standardize`, {bad} not validated");
    Ok(())
}

pub fn standardize(ctx: &Context, args: ValuesArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let vocab = instance.vocabulary(&args.field)?;
    let values = values(&args)?;
    let out: Vec<(String, String, bool)> = values
        .iter()
        .map(|v| match vocab.judge(v) {
            Verdict::Valid => (v.clone(), v.clone(), true),
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
    for (v, s, known) in &out {
        if *known {
            println!("{s}");
        } else {
            println!("{v}");
            eprintln!(
                "note: {v:?} is not a known {} name; left as it is",
                args.field
            );
        }
    }
    Ok(())
}
