//! `labmesh filter` and `labmesh search`.

use clap::Args;
use labmesh::query::{FilterOptions, Found};
use labmesh::search::Registry;

use super::super::Context;
use crate::output::{self, Table};

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
    /// Print SQLite's query plan instead of the results (which indexes serve the filter).
    #[arg(long)]
    explain: bool,
}

#[derive(Args)]
pub struct SearchArgs {
    /// artifact, label, feature, collection or schema.
    registry: Registry,
    query: String,
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

pub fn filter(ctx: &Context, args: FilterArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let opts = FilterOptions {
        order: args.order,
        limit: args.limit,
        all_versions: args.all_versions,
    };
    if args.explain {
        for step in instance.filter_plan(args.registry, &args.expression, &opts)? {
            println!("{step}");
        }
        return Ok(());
    }
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
