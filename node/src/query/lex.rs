//! The filter language's lexer: words, quoted strings, numbers (integers
//! kept exact), operators and punctuation, each with its byte offset so
//! errors can name the column.

use crate::error::{Error, Result};
use crate::query::parse::Op;

/// A token of the filter language.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Word(String),
    Text(String),
    Int(i64),
    Number(f64),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

/// Splits a filter into (byte offset, token) pairs.
pub fn lex(input: &str) -> Result<Vec<(usize, Tok)>> {
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
                // Integers stay exact; dates and other number-led words
                // stay text ("2026-11-24", "3d").
                if let Ok(n) = text.parse::<i64>() {
                    out.push((at, Tok::Int(n)));
                } else {
                    match text.parse::<f64>() {
                        Ok(x) if x.is_finite() => out.push((at, Tok::Number(x))),
                        _ => out.push((at, Tok::Word(text))),
                    }
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
