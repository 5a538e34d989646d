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

use crate::error::{Error, Result};

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
    Number(f64),
    Bool(bool),
    Null,
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
        Value::Number(x as f64)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Text(String),
    Number(f64),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

fn lex(input: &str) -> Result<Vec<(usize, Tok)>> {
    let err =
        |at: usize, msg: &str| Error::InvalidArgument(format!("filter, column {}: {msg}", at + 1));
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((at, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((at, Tok::RParen));
                i += 1;
            }
            ',' => {
                out.push((at, Tok::Comma));
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&(_, c)) = chars.get(i) else {
                        return Err(err(at, "this string is not closed"));
                    };
                    i += 1;
                    match c {
                        '\\' => match chars.get(i) {
                            Some(&(_, e)) => {
                                s.push(e);
                                i += 1;
                            }
                            None => return Err(err(at, "this string is not closed")),
                        },
                        c if c == quote => break,
                        c => s.push(c),
                    }
                }
                out.push((at, Tok::Text(s)));
            }
            '=' | '!' | '<' | '>' | '^' | '$' | '~' => {
                let next = chars.get(i + 1).map(|&(_, c)| c);
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, 2),
                    ('=', _) => (Op::Eq, 1),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('>', _) => (Op::Gt, 1),
                    ('^', Some('=')) => (Op::Prefix, 2),
                    ('$', Some('=')) => (Op::Suffix, 2),
                    ('~', _) => (Op::Contains, 1),
                    _ => {
                        return Err(err(
                            at,
                            &format!("unknown operator {c:?}; use = != < <= > >= ^= $= ~"),
                        ));
                    }
                };
                out.push((at, Tok::Op(op)));
                i += len;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|&(_, d)| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(|&(_, d)| {
                    d.is_ascii_alphanumeric() || matches!(d, '.' | '-' | ':' | '+' | '_')
                }) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|&(_, c)| c).collect();
                // Dates and other number-led words stay text ("2026-11-24", "3d").
                match text.parse::<f64>() {
                    Ok(x) => out.push((at, Tok::Number(x))),
                    Err(_) => out.push((at, Tok::Word(text))),
                }
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while chars.get(i).is_some_and(|&(_, d)| {
                    d.is_alphanumeric() || matches!(d, '_' | '.' | '-' | '/' | ':')
                }) {
                    i += 1;
                }
                out.push((
                    at,
                    Tok::Word(chars[start..i].iter().map(|&(_, c)| c).collect()),
                ));
            }
            '`' => {
                // `a feature name with spaces`
                let end = input[at + 1..]
                    .find('`')
                    .ok_or_else(|| err(at, "this `name` is not closed"))?;
                out.push((at, Tok::Word(input[at + 1..at + 1 + end].to_string())));
                while chars.get(i).is_some_and(|&(p, _)| p <= at + 1 + end) {
                    i += 1;
                }
            }
            other => return Err(err(at, &format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
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
        if self.eat_keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.expr()?;
            if self.peek() != Some(&Tok::RParen) {
                return Err(self.err("expected ')' to close the '('"));
            }
            self.pos += 1;
            return Ok(e);
        }
        self.comparison()
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
        assert_eq!(parts[1], field("size").gt(1000.0));
        assert_eq!(parts[2], field("labels.name").eq("liver"));
        assert_eq!(parts[3], field("temperature").ge(37.0));
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
