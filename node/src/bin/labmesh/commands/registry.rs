//! Registry verbs: label, feature, annotate, schema, collection; the
//! query verbs (filter, search) and the value checks (validate, inspect,
//! standardize) are in the submodules.

mod query;
mod values;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use labmesh::registry::feature::FeatureSpec;
use labmesh::registry::label::LabelSpec;
use labmesh::registry::split_list;

use super::Context;
use crate::output::{self, Table};
pub use query::{FilterArgs, SearchArgs, filter, search};
pub use values::{ValuesArgs, inspect, standardize, validate};

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
    /// List schemas.
    Ls,
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
        /// Create it even though its key is close to an existing one.
        #[arg(long)]
        force: bool,
    },
    /// Remove artifacts from a collection, as a new version.
    Remove {
        key: String,
        #[arg(long = "artifact", value_name = "ARTIFACT", required = true)]
        artifacts: Vec<String>,
    },
    /// Put a collection's artifacts in a new order (list every member), as a new version.
    Reorder {
        key: String,
        #[arg(long = "artifact", value_name = "ARTIFACT", required = true)]
        artifacts: Vec<String>,
    },
    /// Show a collection and its artifacts.
    Show { collection: String },
    /// Every version of a collection, oldest first.
    Versions { collection: String },
    /// List collections.
    Ls,
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
                (
                    "description",
                    s.description.clone().unwrap_or_else(|| "-".into()),
                ),
            ]);
        }
        SchemaAction::Ls => {
            let all = instance.schemas()?;
            if ctx.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["uid", "name", "features", "ordered", "description"]);
            for s in all {
                t.row(vec![
                    s.uid,
                    s.name,
                    s.features.join(", "),
                    if s.ordered { "yes" } else { "no" }.into(),
                    s.description.unwrap_or_default(),
                ]);
            }
            t.print();
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
            force,
        } => {
            let added = instance.add_collection(&key, &artifacts, description.as_deref(), force)?;
            print_saved(ctx, &added)?;
        }
        CollectionAction::Remove { key, artifacts } => {
            print_saved(ctx, &instance.remove_from_collection(&key, &artifacts)?)?;
        }
        CollectionAction::Reorder { key, artifacts } => {
            print_saved(ctx, &instance.reorder_collection(&key, &artifacts)?)?;
        }
        CollectionAction::Versions { collection } => {
            let versions = instance.collection_versions(&collection)?;
            if ctx.json {
                return output::json(&versions);
            }
            let mut t = Table::new(&["uid", "key", "artifacts", "created", "latest"]);
            for c in versions {
                t.row(vec![
                    c.uid,
                    c.key,
                    c.n_artifacts.to_string(),
                    labmesh::time::short(c.created_at),
                    if c.is_latest { "yes" } else { "" }.into(),
                ]);
            }
            t.print();
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

/// What a collection verb made (or found).
fn print_saved(
    ctx: &Context,
    added: &labmesh::registry::Added<labmesh::registry::collection::Collection>,
) -> anyhow::Result<()> {
    if ctx.json {
        return output::json(added);
    }
    let c = &added.record;
    let verb = if added.created {
        "saved collection"
    } else {
        "exists: collection"
    };
    println!("{verb} {} {} ({} artifacts)", c.uid, c.key, c.n_artifacts);
    output::notices(&added.notices);
    Ok(())
}
