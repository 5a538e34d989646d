//! Compiling a filter to parameterised SQL for one registry.
//!
//! Values are always bound parameters, never spliced into the SQL. Fields
//! come from a per-registry catalog; relations compile to `id IN (…)`
//! sub-queries over the link tables, and a name that is not a field is
//! looked up as a feature, compared by its dtype. A misspelt name gets an
//! error listing the valid ones and the closest match.
//!
//! What conditions on many-valued things mean:
//! - Each condition on a relation or a list feature is its own sub-query:
//!   `labels.name = liver and labels.name = organ` is an artifact that has
//!   both labels, `markers = CD4 and markers = CD8` one with both markers.
//! - Conditions on one single-valued feature inside an AND share one
//!   sub-query, so `temperature >= 37 and temperature < 38` reads one
//!   index range (with one value per artifact, the meaning is the same).
//! - `!=` and `not in` on a relation or a feature mean "none of its values
//!   is": `labels.name != liver` is every artifact without a liver label,
//!   unlabelled ones included. `= null` / `is null` mean "has none".

use rusqlite::types::Value as SqlValue;

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::query::catalog::{Catalog, Kind};
use crate::query::literal;
use crate::query::parse::{Expr, Op, Value};
use crate::registry::dtype::Dtype;

/// What a path in a filter names.
enum Target {
    /// A column of the registry itself.
    Field(&'static str, Kind),
    /// A field of a related registry, reached through a link table.
    Relation {
        select: &'static str,
        column: &'static str,
        kind: Kind,
    },
    /// A feature's values on the record.
    Feature {
        id: i64,
        column: &'static str,
        kind: Kind,
        join: &'static str,
        /// List features have several values per record.
        list: bool,
    },
}

impl Target {
    fn column(&self) -> (&'static str, Kind) {
        match self {
            Target::Field(sql, kind) => (sql, *kind),
            Target::Relation { column, kind, .. } | Target::Feature { column, kind, .. } => {
                (column, *kind)
            }
        }
    }
}

/// Parameterised SQL: a condition and its bound values.
pub struct Compiled {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

struct Compiler<'a> {
    instance: &'a Instance,
    catalog: &'a Catalog,
    params: Vec<SqlValue>,
    /// The outer query is ordered by an index it can scan (artifacts,
    /// newest first): broad sub-queries then filter that scan instead of
    /// driving it.
    scan_ordered: bool,
}

/// A sub-query matching at least this many rows filters an ordered scan;
/// a smaller one drives the query through rowid look-ups.
const BROAD: i64 = 2000;

/// Compiles `expr` for `catalog`; `instance` resolves feature names.
/// `scan_ordered` says the outer query's order is served by an index scan.
pub fn compile(
    instance: &Instance,
    catalog: &Catalog,
    expr: &Expr,
    scan_ordered: bool,
) -> Result<Compiled> {
    expr.check_limits()?;
    let mut c = Compiler {
        instance,
        catalog,
        params: Vec::new(),
        scan_ordered,
    };
    let sql = c.expr(expr)?;
    Ok(Compiled {
        sql,
        params: c.params,
    })
}

/// A comparison whose sub-query may be shared with others on the same
/// single-valued feature: not negated, not about null.
fn shareable(e: &Expr) -> bool {
    match e {
        Expr::Compare { op, value, .. } => *op != Op::Ne && *value != Value::Null,
        Expr::In { negated, .. } => !negated,
        _ => false,
    }
}

impl Compiler<'_> {
    fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }

    fn expr(&mut self, e: &Expr) -> Result<String> {
        Ok(match e {
            Expr::And(parts) if parts.is_empty() => "1".into(),
            Expr::And(parts) => self.and(parts)?,
            Expr::Or(parts) if parts.is_empty() => "0".into(),
            Expr::Or(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    out.push(self.expr(p)?);
                }
                format!("({})", out.join(" OR "))
            }
            Expr::Not(inner) => format!("(NOT {})", self.expr(inner)?),
            Expr::Compare { path, .. } | Expr::In { path, .. } => {
                let target = self.resolve(path)?;
                self.on_target(&target, e)?
            }
            Expr::IsNull { path, negated } => {
                let target = self.resolve(path)?;
                match target {
                    Target::Field(column, _) => format!(
                        "{column} {}",
                        if *negated { "IS NOT NULL" } else { "IS NULL" }
                    ),
                    _ if *negated => self.has_some(&target),
                    _ => format!("(NOT {})", self.has_some(&target)),
                }
            }
        })
    }

    /// One comparison (`Compare` or `In`) on a resolved target.
    fn on_target(&mut self, target: &Target, e: &Expr) -> Result<String> {
        let (column, kind) = target.column();
        let is_field = matches!(target, Target::Field(..));
        match e {
            Expr::Compare { op, value, .. } => {
                if is_field {
                    return self.compare(column, kind, *op, value);
                }
                Ok(match (op, value) {
                    (Op::Eq, Value::Null) => format!("(NOT {})", self.has_some(target)),
                    (Op::Ne, Value::Null) => self.has_some(target),
                    (Op::Ne, v) => {
                        let cond = self.compare(column, kind, Op::Eq, v)?;
                        format!("(NOT {})", self.wrap(target, vec![cond]))
                    }
                    _ => {
                        let cond = self.compare(column, kind, *op, value)?;
                        self.wrap(target, vec![cond])
                    }
                })
            }
            Expr::In {
                values, negated, ..
            } => {
                let cond = self.in_list(column, kind, values)?;
                let cond = if is_field {
                    cond
                } else {
                    self.wrap(target, vec![cond])
                };
                Ok(if *negated {
                    format!("(NOT {cond})")
                } else {
                    cond
                })
            }
            _ => unreachable!("only comparisons have a target"),
        }
    }

    /// "Has at least one value" on a relation or a feature.
    fn has_some(&mut self, target: &Target) -> String {
        let (column, _) = target.column();
        self.wrap(target, vec![format!("{column} IS NOT NULL")])
    }

    /// An AND. Comparisons on one single-valued feature share a sub-query
    /// (one index range); everything else is its own condition.
    fn and(&mut self, parts: &[Expr]) -> Result<String> {
        let mut out: Vec<String> = Vec::new();
        let mut groups: Vec<(i64, Target, Vec<String>)> = Vec::new();
        for p in parts {
            let path = match p {
                Expr::Compare { path, .. } | Expr::In { path, .. } => path,
                _ => {
                    out.push(self.expr(p)?);
                    continue;
                }
            };
            let target = self.resolve(path)?;
            match target {
                Target::Feature {
                    id, list: false, ..
                } if shareable(p) => {
                    let (column, kind) = target.column();
                    let cond = match p {
                        Expr::Compare { op, value, .. } => {
                            self.compare(column, kind, *op, value)?
                        }
                        Expr::In { values, .. } => self.in_list(column, kind, values)?,
                        _ => unreachable!("matched above"),
                    };
                    match groups.iter_mut().find(|g| g.0 == id) {
                        Some(g) => g.2.push(cond),
                        None => groups.push((id, target, vec![cond])),
                    }
                }
                _ => out.push(self.on_target(&target, p)?),
            }
        }
        for (_, target, conds) in groups {
            out.push(self.wrap(&target, conds));
        }
        Ok(format!("({})", out.join(" AND ")))
    }

    /// What a path names: a field, a field of a relation, or a feature.
    fn resolve(&self, path: &[String]) -> Result<Target> {
        let catalog = self.catalog;
        match path {
            [name] => {
                if let Some(f) = catalog.field(name) {
                    return Ok(Target::Field(f.sql, f.kind));
                }
                if catalog.features {
                    return self.feature(name);
                }
                Err(self.unknown(&path.join(".")))
            }
            [relation, field] => {
                if relation == "features" && catalog.features {
                    return self.feature(field);
                }
                let rel = catalog
                    .relations
                    .iter()
                    .find(|r| r.name == relation)
                    .ok_or_else(|| self.unknown(&path.join(".")))?;
                let f = rel
                    .fields
                    .iter()
                    .find(|f| f.name == field)
                    .ok_or_else(|| self.unknown(&path.join(".")))?;
                Ok(Target::Relation {
                    select: rel.select,
                    column: f.sql,
                    kind: f.kind,
                })
            }
            _ => Err(self.unknown(&path.join("."))),
        }
    }

    fn feature(&self, name: &str) -> Result<Target> {
        let feature = self
            .instance
            .feature(name)
            .map_err(|_| self.unknown(name))?;
        let dtype: Dtype = feature.dtype()?;
        let (column, kind, join) = match dtype.element() {
            Dtype::Int => ("v.value_int", Kind::Number, ""),
            Dtype::Float => ("v.value_num", Kind::Number, ""),
            Dtype::Bool => ("v.value_num", Kind::Bool, ""),
            Dtype::Date | Dtype::DateTime => ("v.value_num", Kind::Time, ""),
            Dtype::Str => ("v.value_text", Kind::Text, ""),
            Dtype::Json => ("v.value_json", Kind::Text, ""),
            Dtype::CatLabel { .. } => (
                "fl.name_fold",
                Kind::Name,
                " JOIN ulabel fl ON fl.id = v.value_label",
            ),
            Dtype::List(_) => unreachable!("element() is never a list"),
        };
        Ok(Target::Feature {
            id: feature.id,
            column,
            kind,
            join,
            list: dtype.is_list(),
        })
    }

    /// Puts conditions on a relation or feature into the outer query's terms.
    fn wrap(&mut self, target: &Target, conds: Vec<String>) -> String {
        let all = conds.join(" AND ");
        let sub = match target {
            Target::Field(..) => return all,
            Target::Relation { select, .. } => format!("{select} AND {all}"),
            Target::Feature { id, join, .. } => {
                let fid = self.bind(SqlValue::Integer(*id));
                format!(
                    "SELECT v.artifact_id FROM artifact_feature_value v{join} WHERE v.feature_id = {fid} AND {all}"
                )
            }
        };
        // `+id` keeps SQLite from driving the query by this sub-query's rowids.
        let plus = if self.scan_ordered && self.is_broad(&sub) {
            "+"
        } else {
            ""
        };
        format!("{plus}{} IN ({sub})", self.catalog.id)
    }

    /// Whether a sub-query matches many rows, counted up to `BROAD` (a few
    /// hundred microseconds through its index at most).
    fn is_broad(&self, sub: &str) -> bool {
        let sql = format!("SELECT count(*) FROM ({sub} LIMIT {BROAD})");
        self.instance
            .connection()
            .prepare(&sql)
            .and_then(|mut s| {
                // Numbered parameters: the statement wants the first n bound so far.
                let n = s.parameter_count();
                s.query_row(
                    rusqlite::params_from_iter(self.params.iter().take(n)),
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(|n| n >= BROAD)
            .unwrap_or(false)
    }

    fn unknown(&self, name: &str) -> Error {
        let names = self.catalog.names();
        let mut features: Vec<String> = Vec::new();
        if self.catalog.features {
            features = self
                .instance
                .features()
                .map(|f| f.into_iter().map(|f| f.name).collect())
                .unwrap_or_default();
        }
        let all: Vec<&str> = names.iter().chain(&features).map(String::as_str).collect();
        let hint = closest_name(name, &all)
            .map(|n| format!(" — did you mean {n:?}?"))
            .unwrap_or_default();
        let mut msg = format!(
            "unknown field {name:?} for {}{hint}\n  fields: {}",
            self.catalog.registry,
            names.join(", ")
        );
        if !features.is_empty() {
            msg.push_str(&format!("\n  features: {}", features.join(", ")));
        }
        Error::InvalidArgument(msg)
    }

    /// The condition of one comparison on `column`.
    fn compare(&mut self, column: &str, kind: Kind, op: Op, value: &Value) -> Result<String> {
        if *value == Value::Null {
            return match op {
                Op::Eq => Ok(format!("{column} IS NULL")),
                Op::Ne => Ok(format!("{column} IS NOT NULL")),
                _ => Err(Error::InvalidArgument(format!(
                    "null can only be compared with = or !=, not {}",
                    op.symbol()
                ))),
            };
        }
        match op {
            Op::Prefix | Op::Suffix | Op::Contains => self.text_match(column, kind, op, value),
            _ if kind == Kind::Time => {
                let when = literal::time(value, op)?;
                Ok(when.compare(column, op, &mut |v| self.bind(v)))
            }
            _ => {
                let v = literal::scalar(kind, value, op)?;
                let p = self.bind(v);
                Ok(format!("{column} {} {p}", op.symbol()))
            }
        }
    }

    /// `^=`, `$=` and `~` on a text column.
    fn text_match(&mut self, column: &str, kind: Kind, op: Op, value: &Value) -> Result<String> {
        if !matches!(kind, Kind::Text | Kind::Name) {
            return Err(Error::InvalidArgument(format!(
                "{} compares text; this field holds {}",
                op.symbol(),
                literal::kind_name(kind)
            )));
        }
        let Value::Text(t) = value else {
            return Err(Error::InvalidArgument(format!(
                "{} needs a text value, not {value}",
                op.symbol()
            )));
        };
        let t = if kind == Kind::Name {
            crate::similar::fold(t)
        } else {
            t.clone()
        };
        Ok(match op {
            // A range on the column, so an index can serve it.
            Op::Prefix => {
                let lo = self.bind(SqlValue::Text(t.clone()));
                let hi = self.bind(SqlValue::Text(format!("{t}\u{10FFFF}")));
                format!("({column} >= {lo} AND {column} < {hi})")
            }
            Op::Suffix => {
                let p = self.bind(SqlValue::Text(t));
                format!("(substr({column}, -length({p})) = {p})")
            }
            _ => {
                let p = self.bind(SqlValue::Text(t));
                format!("(instr({column}, {p}) > 0)")
            }
        })
    }

    /// `column IN (…)`; long lists travel as one JSON parameter, so any
    /// length stays within SQLite's limit on bound parameters.
    fn in_list(&mut self, column: &str, kind: Kind, values: &[Value]) -> Result<String> {
        if kind == Kind::Time {
            let mut any = Vec::new();
            for v in values {
                let when = literal::time(v, Op::Eq)?;
                any.push(when.compare(column, Op::Eq, &mut |v| self.bind(v)));
            }
            return Ok(format!("({})", any.join(" OR ")));
        }
        let mut bound = Vec::with_capacity(values.len());
        for v in values {
            bound.push(literal::scalar(kind, v, Op::Eq)?);
        }
        if bound.len() <= literal::INLINE_IN_VALUES {
            let marks: Vec<String> = bound.into_iter().map(|v| self.bind(v)).collect();
            return Ok(format!("{column} IN ({})", marks.join(", ")));
        }
        let p = self.bind(SqlValue::Text(literal::json_array(&bound)));
        Ok(format!("{column} IN (SELECT value FROM json_each({p}))"))
    }
}

/// The name closest to `name`: a near-duplicate, or within 3 edits.
pub(crate) fn closest_name<'a>(name: &str, names: &[&'a str]) -> Option<&'a str> {
    crate::similar::closest(name, names.iter().copied()).or_else(|| {
        names
            .iter()
            .copied()
            .min_by_key(|n| strsim::levenshtein(n, name))
            .filter(|n| strsim::levenshtein(n, name) <= 3)
    })
}
