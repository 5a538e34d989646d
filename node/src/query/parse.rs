//! The filter language: lexer and parser.
//!
//! ```text
//! expr       := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" expr ")" | comparison
//! comparison := path op value
//!             | path ["not"] "in" "(" value ("," value)* ")"
//!             | path "is" ["not"] "null"
//! path       := name ("." name)*          e.g. key, labels.name, temperature
//! op         := = == != < <= > >= ^= (starts with) $= (ends with) ~ (contains)
//! value      := "text" | 'text' | number | true | false | null | bareword
//! ```
//! Keywords are case-insensitive. Errors name the column and what was expected.
//!
//! Filters are bounded (`MAX_DEPTH` levels of nesting, `MAX_CONDITIONS`
//! comparisons), so a generated or hostile filter gets an error that says
//! so instead of exhausting the stack or SQLite's expression limits.

use std::fmt;

use crate::error::{Error, Result};
use crate::query::lex::{Tok, lex};

/// Deepest nesting of parentheses and `not` a filter may have.
pub const MAX_DEPTH: usize = 64;
/// Most comparisons one filter may have (`in` lists count once).
pub const MAX_CONDITIONS: usize = 200;
/// Most values one `in (…)` list may have.
pub const MAX_IN_VALUES: usize = 100_000;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Prefix,
    Suffix,
    Contains,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Prefix => "^=",
            Op::Suffix => "$=",
            Op::Contains => "~",
        }
    }
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    /// An integer literal, kept exact (ids and counts above 2^53 too).
    Int(i64),
    Number(f64),
    Bool(bool),
    Null,
}

/// As the user would write it in a filter.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(t) => write!(f, "{t:?}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Number(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => f.write_str("null"),
        }
    }
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        path: Vec<String>,
        op: Op,
        value: Value,
    },
    In {
        path: Vec<String>,
        values: Vec<Value>,
        negated: bool,
    },
    IsNull {
        path: Vec<String>,
        negated: bool,
    },
}

/// Builders for the typed API: `field("size").gt(1000.0).and(field("key").starts_with("raw/"))`.
pub struct Field(Vec<String>);

pub fn field(path: &str) -> Field {
    Field(path.split('.').map(str::to_string).collect())
}

impl Field {
    fn cmp(self, op: Op, value: Value) -> Expr {
        Expr::Compare {
            path: self.0,
            op,
            value,
        }
    }
    pub fn eq(self, v: impl Into<Value>) -> Expr {
        self.cmp(Op::Eq, v.into())
    }
    pub fn ne(self, v: impl Into<Value>) -> Expr {
        self.cmp(Op::Ne, v.into())
    }
    pub fn lt(self, v: impl Into<Value>) -> Expr {
        self.cmp(Op::Lt, v.into())
    }
    pub fn le(self, v: impl Into<Value>) -> Expr {
        self.cmp(Op::Le, v.into())
    }
    pub fn gt(self, v: impl Into<Value>) -> Expr {
        self.cmp(Op::Gt, v.into())
    }
    pub fn ge(self, v: impl Into<Value>) -> Expr {
        self.cmp(Op::Ge, v.into())
    }
    pub fn starts_with(self, v: &str) -> Expr {
        self.cmp(Op::Prefix, Value::Text(v.into()))
    }
    pub fn contains(self, v: &str) -> Expr {
        self.cmp(Op::Contains, Value::Text(v.into()))
    }
    pub fn is_in(self, values: impl IntoIterator<Item = Value>) -> Expr {
        Expr::In {
            path: self.0,
            values: values.into_iter().collect(),
            negated: false,
        }
    }
}

impl Expr {
    /// Whether any comparison in the expression is on the field `name`.
    pub fn mentions(&self, name: &str) -> bool {
        match self {
            Expr::And(v) | Expr::Or(v) => v.iter().any(|e| e.mentions(name)),
            Expr::Not(e) => e.mentions(name),
            Expr::Compare { path, .. } | Expr::In { path, .. } | Expr::IsNull { path, .. } => {
                path.len() == 1 && path[0] == name
            }
        }
    }

    /// Refuses expressions deeper than `MAX_DEPTH` or with more than
    /// `MAX_CONDITIONS` comparisons (walked without recursion, so built
    /// expressions of any depth are checked safely).
    pub fn check_limits(&self) -> Result<()> {
        let mut stack: Vec<(&Expr, usize)> = vec![(self, 1)];
        let mut conditions = 0usize;
        while let Some((e, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(too_deep());
            }
            match e {
                Expr::And(v) | Expr::Or(v) => stack.extend(v.iter().map(|c| (c, depth + 1))),
                Expr::Not(inner) => stack.push((inner, depth + 1)),
                Expr::In { values, .. } if values.len() > MAX_IN_VALUES => {
                    return Err(too_many_values(values.len()));
                }
                _ => {
                    conditions += 1;
                    if conditions > MAX_CONDITIONS {
                        return Err(too_many_conditions());
                    }
                }
            }
        }
        Ok(())
    }

    pub fn and(self, other: Expr) -> Expr {
        Expr::And(vec![self, other])
    }
    pub fn or(self, other: Expr) -> Expr {
        Expr::Or(vec![self, other])
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Number(x)
    }
}
impl From<i64> for Value {
    fn from(x: i64) -> Self {
        Value::Int(x)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
    /// Current nesting of parentheses and `not` (bounded by `MAX_DEPTH`).
    depth: usize,
    /// Comparisons parsed so far (bounded by `MAX_CONDITIONS`).
    conditions: usize,
}

impl Parser {
    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.len, |t| t.0)
    }
    fn err(&self, msg: &str) -> Error {
        Error::InvalidArgument(format!("filter, column {}: {msg}", self.at() + 1))
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let yes = self.keyword(kw);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expr(&mut self) -> Result<Expr> {
        let mut parts = vec![self.and()?];
        while self.eat_keyword("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr> {
        let mut parts = vec![self.unary()?];
        while self.eat_keyword("and") {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.keyword("not") || self.peek() == Some(&Tok::LParen) {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(too_deep());
            }
            let e = self.nested();
            self.depth -= 1;
            return e;
        }
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(too_many_conditions());
        }
        self.comparison()
    }

    /// `not unary` or `( expr )`, one level deeper.
    fn nested(&mut self) -> Result<Expr> {
        if self.eat_keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.pos += 1;
        let e = self.expr()?;
        if self.peek() != Some(&Tok::RParen) {
            return Err(self.err("expected ')' to close the '('"));
        }
        self.pos += 1;
        Ok(e)
    }

    fn comparison(&mut self) -> Result<Expr> {
        let path = match self.peek() {
            Some(Tok::Word(w)) if !is_keyword(w) => w.clone(),
            Some(Tok::Word(w)) => {
                return Err(self.err(&format!("expected a field name, found keyword {w:?}")));
            }
            _ => {
                return Err(
                    self.err("expected a field name (e.g. key, size, labels.name, a feature)")
                );
            }
        };
        self.pos += 1;
        let path: Vec<String> = path.split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(self.err("a field name has an empty part"));
        }
        if self.eat_keyword("is") {
            let negated = self.eat_keyword("not");
            if !self.eat_keyword("null") {
                return Err(self.err("expected null after 'is'"));
            }
            return Ok(Expr::IsNull { path, negated });
        }
        let negated = self.eat_keyword("not");
        if self.eat_keyword("in") {
            if self.peek() != Some(&Tok::LParen) {
                return Err(self.err("expected '(' after 'in'"));
            }
            self.pos += 1;
            let mut values = vec![self.value()?];
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                values.push(self.value()?);
                if values.len() > MAX_IN_VALUES {
                    return Err(too_many_values(values.len()));
                }
            }
            if self.peek() != Some(&Tok::RParen) {
                return Err(self.err("expected ',' or ')' in the list"));
            }
            self.pos += 1;
            return Ok(Expr::In {
                path,
                values,
                negated,
            });
        }
        if negated {
            return Err(self.err("expected 'in' after 'not' (or write 'not (…)')"));
        }
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("contains") => Op::Contains,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("startswith") => Op::Prefix,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("endswith") => Op::Suffix,
            _ => {
                return Err(self.err(&format!(
                    "expected an operator after {:?} (= != < <= > >= ^= $= ~ in, is null)",
                    path.join(".")
                )));
            }
        };
        self.pos += 1;
        let value = self.value()?;
        Ok(Expr::Compare { path, op, value })
    }

    fn value(&mut self) -> Result<Value> {
        let v = match self.peek() {
            Some(Tok::Text(s)) => Value::Text(s.clone()),
            Some(Tok::Int(n)) => Value::Int(*n),
            Some(Tok::Number(x)) => Value::Number(*x),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
            Some(Tok::Word(w)) if !is_keyword(w) => Value::Text(w.clone()),
            _ => return Err(self.err("expected a value (\"text\", a number, true, false or null)")),
        };
        self.pos += 1;
        Ok(v)
    }
}

fn too_deep() -> Error {
    Error::InvalidArgument(format!(
        "the filter nests parentheses and `not` more than {MAX_DEPTH} levels deep; \
         simplify it (`not not x` is `x`)"
    ))
}

fn too_many_conditions() -> Error {
    Error::InvalidArgument(format!(
        "the filter has more than {MAX_CONDITIONS} comparisons; \
         use `field in (a, b, …)` for many values of one field"
    ))
}

fn too_many_values(n: usize) -> Error {
    Error::InvalidArgument(format!(
        "an `in (…)` list has {n} values, more than the {MAX_IN_VALUES} a filter takes; \
         split the query, or put the values on the records as a label"
    ))
}

fn is_keyword(w: &str) -> bool {
    ["and", "or", "not", "in", "is", "null"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

/// Parses a filter expression.
pub fn parse(input: &str) -> Result<Expr> {
    let toks = lex(input)?;
    if toks.is_empty() {
        return Err(Error::InvalidArgument("the filter is empty".into()));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        len: input.len(),
        depth: 0,
        conditions: 0,
    };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return Err(
            p.err("unexpected text after the end of the expression (missing 'and' / 'or'?)")
        );
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_issue_example() {
        let e = parse(
            r#"key ^= "raw/" and size > 1000 and labels.name = "liver" and temperature >= 37"#,
        )
        .unwrap();
        let Expr::And(parts) = e else {
            panic!("and expected")
        };
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], field("key").starts_with("raw/"));
        assert_eq!(parts[1], field("size").gt(1000));
        assert_eq!(parts[2], field("labels.name").eq("liver"));
        assert_eq!(parts[3], field("temperature").ge(37));
        assert_eq!(
            parse("x = 9007199254740993").unwrap(),
            field("x").eq(9_007_199_254_740_993i64),
            "integers are exact"
        );
        assert_eq!(parse("x = 1.5").unwrap(), field("x").eq(1.5));
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        let deep = format!("{}a = 1{}", "(".repeat(65), ")".repeat(65));
        assert!(parse(&deep).unwrap_err().to_string().contains("64 levels"));
        let ok = format!("{}a = 1{}", "(".repeat(63), ")".repeat(63));
        assert!(parse(&ok).is_ok());
        let nots = format!("{}a = 1", "not ".repeat(100_000));
        assert!(parse(&nots).unwrap_err().to_string().contains("64 levels"));
        let many = vec!["a = 1"; 201].join(" or ");
        assert!(
            parse(&many)
                .unwrap_err()
                .to_string()
                .contains("200 comparisons")
        );
        assert!(parse(&vec!["a = 1"; 200].join(" or ")).is_ok());
    }

    #[test]
    fn precedence_not_in_and_null() {
        let e = parse("a = 1 or b = 2 and not c in (x, 'y')").unwrap();
        let Expr::Or(parts) = e else { panic!() };
        assert!(matches!(&parts[1], Expr::And(v) if matches!(&v[1], Expr::Not(_))));
        assert_eq!(
            parse("d is not null").unwrap(),
            Expr::IsNull {
                path: vec!["d".into()],
                negated: true
            }
        );
        assert_eq!(
            parse("k not in ('a')").unwrap(),
            Expr::In {
                path: vec!["k".into()],
                values: vec![Value::Text("a".into())],
                negated: true
            }
        );
        assert_eq!(
            parse("created_at >= 2026-11-01").unwrap(),
            field("created_at").ge("2026-11-01")
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        for (input, want) in [
            ("key ^= ", "column 8: expected a value"),
            ("key \"raw\"", "expected an operator"),
            ("(size > 1", "expected ')'"),
            ("size > 1 size < 2", "unexpected text"),
            ("key = 'open", "not closed"),
            ("key % 3", "unexpected character"),
            ("", "empty"),
        ] {
            let err = parse(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}: {err}");
        }
    }
}
