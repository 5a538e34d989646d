//! Queries: one small filter language for the CLI and the API (see
//! `parse`), compiled to parameterised SQL per registry (see `compile`)
//! over what each registry offers (`catalog`).

pub mod catalog;
pub mod compile;
mod lex;
mod literal;
pub mod parse;

use rusqlite::params_from_iter;
use serde::Serialize;

use crate::artifact::Artifact;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::registry::collection::Collection;
use crate::registry::feature::Feature;
use crate::registry::label::Label;
use crate::search::Registry;
pub use catalog::{ARTIFACTS, COLLECTIONS, Catalog, FEATURES, LABELS};
use compile::{Compiled, compile};
pub use parse::{Expr, Field, Op, Value, field, parse};

/// Ordering and size of a filter's result.
#[derive(Clone, Debug)]
pub struct FilterOptions {
    /// A field name; `-name` for descending. Default: newest first.
    pub order: Option<String>,
    pub limit: usize,
    /// Artifacts and collections: every version, not only the latest.
    pub all_versions: bool,
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions {
            order: None,
            limit: 100,
            all_versions: false,
        }
    }
}

/// Records a filter found, by registry.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Found {
    Artifacts(Vec<Artifact>),
    Labels(Vec<Label>),
    Features(Vec<Feature>),
    Collections(Vec<Collection>),
}

impl Found {
    pub fn len(&self) -> usize {
        match self {
            Found::Artifacts(v) => v.len(),
            Found::Labels(v) => v.len(),
            Found::Features(v) => v.len(),
            Found::Collections(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Instance {
    /// Filters a registry with the filter language.
    pub fn filter(&self, registry: Registry, filter: &str, opts: &FilterOptions) -> Result<Found> {
        let expr = parse(filter)?;
        self.filter_expr(registry, &expr, opts)
    }

    /// Filters a registry with a parsed (or built) expression.
    pub fn filter_expr(
        &self,
        registry: Registry,
        expr: &Expr,
        opts: &FilterOptions,
    ) -> Result<Found> {
        let (sql, compiled) = self.filter_sql(registry, expr, opts)?;
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare_cached(&sql).db(&self.db_path())?;
            let rows = stmt
                .query_map(params_from_iter(compiled.params.iter()), |r| r.get(0))
                .db(&self.db_path())?;
            rows.collect::<rusqlite::Result<_>>().db(&self.db_path())?
        };
        Ok(match registry {
            Registry::Artifact => Found::Artifacts(
                ids.into_iter()
                    .map(|id| self.artifact_by_id(id))
                    .collect::<Result<_>>()?,
            ),
            Registry::Label => Found::Labels(
                ids.into_iter()
                    .map(|id| self.label_by_id(id))
                    .collect::<Result<_>>()?,
            ),
            Registry::Feature => Found::Features(
                ids.into_iter()
                    .map(|id| self.feature_by_id(id))
                    .collect::<Result<_>>()?,
            ),
            Registry::Collection => Found::Collections(
                ids.into_iter()
                    .map(|id| self.collection_by_id(id))
                    .collect::<Result<_>>()?,
            ),
            Registry::Schema => unreachable!("refused by filter_sql"),
        })
    }

    /// SQLite's plan for a filter (`EXPLAIN QUERY PLAN`, one line per
    /// step): how to check that a filter is served by indexes.
    pub fn filter_plan(
        &self,
        registry: Registry,
        filter: &str,
        opts: &FilterOptions,
    ) -> Result<Vec<String>> {
        let expr = parse(filter)?;
        let (sql, compiled) = self.filter_sql(registry, &expr, opts)?;
        crate::search::explain::plan(&self.conn, &sql, &compiled.params).db(&self.db_path())
    }

    /// The id query of a filter and its bound values.
    fn filter_sql(
        &self,
        registry: Registry,
        expr: &Expr,
        opts: &FilterOptions,
    ) -> Result<(String, Compiled)> {
        let (catalog, from, live, default_order) = match registry {
            Registry::Artifact => (
                &ARTIFACTS,
                "artifact a",
                "a.trashed_at IS NULL",
                "a.created_at DESC, a.id DESC",
            ),
            Registry::Label => (
                &LABELS,
                "ulabel l0",
                "l0.trashed_at IS NULL",
                "l0.type, l0.name_fold",
            ),
            Registry::Feature => (
                &FEATURES,
                "feature f0",
                "f0.trashed_at IS NULL",
                "f0.name_fold",
            ),
            Registry::Collection => (
                &COLLECTIONS,
                "collection c0",
                "c0.trashed_at IS NULL",
                "c0.created_at DESC, c0.id DESC",
            ),
            Registry::Schema => {
                return Err(Error::InvalidArgument(
                    "schemas cannot be filtered: `labmesh schema ls` lists them, \
                     `labmesh search schema WORDS` finds them"
                        .into(),
                ));
            }
        };
        expr.check_limits()?;
        let mentions_latest = expr.mentions("is_latest");
        // Live latest artifacts, newest first, is what `artifact_listing` indexes.
        let scan_ordered = registry == Registry::Artifact
            && opts.order.is_none()
            && !opts.all_versions
            && !mentions_latest;
        let compiled = compile(self, catalog, expr, scan_ordered)?;
        let latest = match registry {
            Registry::Artifact if !opts.all_versions && !mentions_latest => " AND a.is_latest = 1",
            Registry::Collection if !opts.all_versions && !mentions_latest => {
                " AND c0.is_latest = 1"
            }
            _ => "",
        };
        let order = match &opts.order {
            None => default_order.to_string(),
            Some(o) => {
                let (name, dir) = match o.trim().strip_prefix('-') {
                    Some(n) => (n, "DESC"),
                    None => (o.trim().trim_start_matches('+'), "ASC"),
                };
                let field = catalog
                    .field(name)
                    .ok_or_else(|| bad_order(catalog, name))?;
                format!("{} {dir}, {} {dir}", field.sql, catalog.id)
            }
        };
        let sql = format!(
            "SELECT {id} FROM {from} WHERE {live}{latest} AND {cond} ORDER BY {order} LIMIT {limit}",
            id = catalog.id,
            cond = compiled.sql,
            limit = opts.limit
        );
        Ok((sql, compiled))
    }
}

/// "cannot order by": the fields there are, and the closest one.
fn bad_order(catalog: &Catalog, name: &str) -> Error {
    let names: Vec<&str> = catalog.fields.iter().map(|f| f.name).collect();
    let hint = compile::closest_name(name, &names)
        .map(|n| format!("; did you mean {n:?}?"))
        .unwrap_or_default();
    Error::InvalidArgument(format!(
        "cannot order by {name:?}{hint}\n  fields: {} (prefix - for descending)",
        names.join(", ")
    ))
}
