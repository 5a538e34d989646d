//! Compiling a filter to parameterised SQL for one registry.
//!
//! Values are always bound parameters, never spliced into the SQL. Fields
//! come from a per-registry catalog; relations compile to `id IN (…)`
//! sub-queries over the link tables, and a name that is not a field is
//! looked up as a feature, compared by its dtype. A misspelt name gets an
//! error listing the valid ones and the closest match.

use rusqlite::types::Value as SqlValue;

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::query::parse::{Expr, Op, Value};
use crate::registry::dtype::{Dtype, parse_date_ms, parse_datetime_ms};
use crate::similar::fold;

/// How a field's values compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Compared case-insensitively through its folded form.
    Name,
    Number,
    Bool,
    /// Unix ms in the database; literals are dates or timestamps.
    Time,
}

/// A field of a registry or of a related registry: name, SQL expression, kind.
pub struct FieldDef {
    pub name: &'static str,
    pub sql: &'static str,
    pub kind: Kind,
}

/// A relation: `<name>.<field> op value` compiles to
/// `<outer id> IN (<select> AND cond)`. The sub-query is not correlated, so
/// SQLite evaluates it once through the link table's index and drives the
/// outer rows from it, instead of probing once per outer row.
pub struct Relation {
    pub name: &'static str,
    /// `SELECT <outer id> FROM … WHERE 1`, to be extended with `AND cond`.
    pub select: &'static str,
    pub fields: &'static [FieldDef],
}

/// What can be filtered in a registry.
pub struct Catalog {
    pub registry: &'static str,
    /// The outer query's id column (relations and features match on it).
    pub id: &'static str,
    pub fields: &'static [FieldDef],
    pub relations: &'static [Relation],
    /// Whether bare names that are not fields are features of the record.
    pub features: bool,
}

impl Catalog {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.fields.iter().map(|f| f.name.to_string()).collect();
        for r in self.relations {
            out.extend(r.fields.iter().map(|f| format!("{}.{}", r.name, f.name)));
        }
        out
    }
}

/// What a path in a filter names.
enum Target {
    /// A column of the registry itself.
    Field(&'static str, Kind),
    /// A field of a related registry, reached through a link table.
    Relation {
        name: &'static str,
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
    },
}

impl Target {
    fn column(&self) -> (String, Kind) {
        match self {
            Target::Field(sql, kind) => (sql.to_string(), *kind),
            Target::Relation { column, kind, .. } | Target::Feature { column, kind, .. } => {
                (column.to_string(), *kind)
            }
        }
    }

    /// Comparisons with the same key inside an AND share one sub-query.
    fn group(&self) -> Option<String> {
        match self {
            Target::Field(..) => None,
            Target::Relation { name, .. } => Some(format!("relation:{name}")),
            Target::Feature { id, .. } => Some(format!("feature:{id}")),
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

impl Compiler<'_> {
    fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }

    fn expr(&mut self, e: &Expr) -> Result<String> {
        Ok(match e {
            Expr::And(parts) => self.and(parts)?,
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
                let (column, kind) = target.column();
                let cond = self.condition(e, &column, kind)?;
                self.wrap(&target, vec![cond])
            }
            Expr::IsNull { path, negated } => {
                let target = self.resolve(path)?;
                let (column, _) = target.column();
                match target {
                    Target::Field(..) => format!(
                        "{column} {}",
                        if *negated { "IS NOT NULL" } else { "IS NULL" }
                    ),
                    // On a relation or a feature, "is null" means "has none".
                    _ => {
                        let has = self.wrap(&target, vec![format!("{column} IS NOT NULL")]);
                        if *negated {
                            has
                        } else {
                            format!("(NOT {has})")
                        }
                    }
                }
            }
        })
    }

    /// An AND: comparisons on the same relation or feature share one
    /// sub-query, so `temperature >= 37 and temperature < 38` reads one
    /// index range, and `labels.name = x and labels.type = y` means the
    /// same label is both.
    fn and(&mut self, parts: &[Expr]) -> Result<String> {
        let mut out: Vec<String> = Vec::new();
        let mut groups: Vec<(String, Target, Vec<String>)> = Vec::new();
        for p in parts {
            let path = match p {
                Expr::Compare { path, .. } | Expr::In { path, .. } => Some(path),
                _ => None,
            };
            let target = match path {
                Some(path) => Some(self.resolve(path)?),
                None => None,
            };
            match target {
                Some(t) if t.group().is_some() => {
                    let (column, kind) = t.column();
                    let cond = self.condition(p, &column, kind)?;
                    let key = t.group().unwrap_or_default();
                    match groups.iter_mut().find(|g| g.0 == key) {
                        Some(g) => g.2.push(cond),
                        None => groups.push((key, t, vec![cond])),
                    }
                }
                _ => out.push(self.expr(p)?),
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
                    name: rel.name,
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
            Dtype::Int | Dtype::Float => ("v.value_num", Kind::Number, ""),
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
        })
    }

    /// The condition of one comparison on `column`.
    fn condition(&mut self, e: &Expr, column: &str, kind: Kind) -> Result<String> {
        match e {
            Expr::Compare { op, value, .. } => self.compare(column, kind, *op, value),
            Expr::In {
                values, negated, ..
            } => {
                let mut items = Vec::new();
                for v in values {
                    items.push(self.literal(kind, v, Op::Eq)?);
                }
                let cond = format!("{column} IN ({})", items.join(", "));
                Ok(if *negated {
                    format!("(NOT {cond})")
                } else {
                    cond
                })
            }
            _ => unreachable!("only comparisons have a single condition"),
        }
    }

    /// Puts conditions on a target into the outer query's terms.
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
        let hint = crate::similar::closest(name, all.iter().copied())
            .or_else(|| {
                all.iter()
                    .copied()
                    .min_by_key(|n| strsim::levenshtein(n, name))
                    .filter(|n| strsim::levenshtein(n, name) <= 3)
            })
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

    fn compare(&mut self, sql: &str, kind: Kind, op: Op, value: &Value) -> Result<String> {
        if *value == Value::Null {
            return match op {
                Op::Eq => Ok(format!("{sql} IS NULL")),
                Op::Ne => Ok(format!("{sql} IS NOT NULL")),
                _ => Err(Error::InvalidArgument(format!(
                    "null can only be compared with = or !=, not {}",
                    op.symbol()
                ))),
            };
        }
        match op {
            Op::Prefix | Op::Suffix | Op::Contains => {
                if !matches!(kind, Kind::Text | Kind::Name) {
                    return Err(Error::InvalidArgument(format!(
                        "{} compares text; this field holds {}",
                        op.symbol(),
                        kind_name(kind)
                    )));
                }
                let Value::Text(t) = value else {
                    return Err(Error::InvalidArgument(format!(
                        "{} needs a text value",
                        op.symbol()
                    )));
                };
                let t = if kind == Kind::Name {
                    fold(t)
                } else {
                    t.clone()
                };
                Ok(match op {
                    // A range on the column, so an index can serve it.
                    Op::Prefix => {
                        let lo = self.bind(SqlValue::Text(t.clone()));
                        let hi = self.bind(SqlValue::Text(format!("{t}\u{10FFFF}")));
                        format!("({sql} >= {lo} AND {sql} < {hi})")
                    }
                    Op::Suffix => {
                        let p = self.bind(SqlValue::Text(t));
                        format!("(substr({sql}, -length({p})) = {p})")
                    }
                    _ => {
                        let p = self.bind(SqlValue::Text(t));
                        format!("(instr({sql}, {p}) > 0)")
                    }
                })
            }
            _ => {
                let lit = self.literal(kind, value, op)?;
                Ok(format!("{sql} {} {lit}", op.symbol()))
            }
        }
    }

    /// Binds a literal as the field's kind wants it.
    fn literal(&mut self, kind: Kind, value: &Value, op: Op) -> Result<String> {
        let bad = |what: &str| {
            Error::InvalidArgument(format!(
                "{value:?} is not {what} (comparing with {})",
                op.symbol()
            ))
        };
        let v = match (kind, value) {
            (Kind::Number, Value::Number(x)) => SqlValue::Real(*x),
            (Kind::Number, Value::Text(t)) => {
                SqlValue::Real(t.parse().map_err(|_| bad("a number"))?)
            }
            (Kind::Number, _) => return Err(bad("a number")),
            (Kind::Bool, Value::Bool(b)) => SqlValue::Integer(*b as i64),
            (Kind::Bool, _) => return Err(bad("true or false")),
            (Kind::Time, Value::Text(t)) => SqlValue::Integer(
                parse_datetime_ms(t)
                    .or_else(|| parse_date_ms(t))
                    .ok_or_else(|| bad("a date or timestamp"))?,
            ),
            (Kind::Time, Value::Number(x)) => SqlValue::Integer(*x as i64),
            (Kind::Time, _) => return Err(bad("a date or timestamp")),
            (Kind::Name, Value::Text(t)) => SqlValue::Text(fold(t)),
            (Kind::Name, Value::Number(x)) => SqlValue::Text(fold(&number_text(*x))),
            (Kind::Text, Value::Text(t)) => SqlValue::Text(t.clone()),
            (Kind::Text, Value::Number(x)) => SqlValue::Text(number_text(*x)),
            (Kind::Text | Kind::Name, Value::Bool(b)) => SqlValue::Text(b.to_string()),
            (_, Value::Null) => SqlValue::Null,
        };
        Ok(self.bind(v))
    }
}

fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::Name => "text",
        Kind::Number => "numbers",
        Kind::Bool => "true/false",
        Kind::Time => "times",
    }
}
