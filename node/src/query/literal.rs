//! Literals of the filter language as SQL values, by the kind of the
//! field they are compared with.
//!
//! Times are the one subtle kind. A timestamp (`2026-11-24T18:00:00Z`) is
//! an instant; a year (`2026`), a month (`2026-11`) or a date
//! (`2026-11-24`) is a period, and comparisons mean what they say about
//! it: `= 2026-11-24` is "during that day", `> 2026` "after 2026",
//! `<= 2026-11` "up to the end of November".

use rusqlite::types::Value as SqlValue;

use crate::error::{Error, Result};
use crate::query::catalog::Kind;
use crate::query::parse::{Op, Value};
use crate::similar::fold;

/// `in` lists longer than this are bound as one JSON array.
pub const INLINE_IN_VALUES: usize = 32;

/// Binds a non-time literal as the field's kind wants it.
pub fn scalar(kind: Kind, value: &Value, op: Op) -> Result<SqlValue> {
    let bad = |what: &str| {
        Error::InvalidArgument(format!(
            "{value} is not {what} (comparing with {})",
            op.symbol()
        ))
    };
    Ok(match (kind, value) {
        (_, Value::Null) => SqlValue::Null,
        (Kind::Number, Value::Int(n)) => SqlValue::Integer(*n),
        (Kind::Number, Value::Number(x)) => SqlValue::Real(*x),
        (Kind::Number, Value::Text(t)) => match t.trim().parse::<i64>() {
            Ok(n) => SqlValue::Integer(n),
            Err(_) => match t.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => SqlValue::Real(x),
                _ => return Err(bad("a number")),
            },
        },
        (Kind::Number, Value::Bool(_)) => return Err(bad("a number")),
        (Kind::Bool, v) => SqlValue::Integer(match v {
            Value::Bool(b) => *b as i64,
            Value::Int(n @ (0 | 1)) => *n,
            Value::Number(x) if *x == 0.0 || *x == 1.0 => *x as i64,
            Value::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => 1,
                "false" | "no" | "0" => 0,
                _ => return Err(bad("true or false")),
            },
            _ => return Err(bad("true or false")),
        }),
        (Kind::Time, _) => return Err(bad("a single instant")),
        (Kind::Name, v) => SqlValue::Text(fold(&as_text(v))),
        (Kind::Text, v) => SqlValue::Text(as_text(v)),
    })
}

/// A literal compared with text, as text.
fn as_text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Int(n) => n.to_string(),
        Value::Number(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
    }
}

/// A time literal: an instant, or a period `[start, end)` (unix ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Instant(i64),
    Period(i64, i64),
}

impl When {
    /// The SQL condition `column op self`, binding through `bind`.
    pub fn compare(self, column: &str, op: Op, bind: &mut dyn FnMut(SqlValue) -> String) -> String {
        match self {
            When::Instant(ms) => {
                let p = bind(SqlValue::Integer(ms));
                format!("{column} {} {p}", op.symbol())
            }
            When::Period(start, end) => {
                let mut at = |ms: i64| bind(SqlValue::Integer(ms));
                match op {
                    Op::Lt => format!("{column} < {}", at(start)),
                    Op::Le => format!("{column} < {}", at(end)),
                    Op::Gt => format!("{column} >= {}", at(end)),
                    Op::Ge => format!("{column} >= {}", at(start)),
                    Op::Ne => format!(
                        "(NOT ({column} >= {} AND {column} < {}))",
                        at(start),
                        at(end)
                    ),
                    _ => format!("({column} >= {} AND {column} < {})", at(start), at(end)),
                }
            }
        }
    }
}

/// Reads a literal compared with a time field.
pub fn time(value: &Value, op: Op) -> Result<When> {
    let bad = || {
        Error::InvalidArgument(format!(
            "{value} is not a date or timestamp (comparing with {}): write a year (2026), \
             a month (2026-11), a date (2026-11-24) or a timestamp (2026-11-24T18:00:00Z)",
            op.symbol()
        ))
    };
    match value {
        Value::Int(year @ 1000..=9999) => year_period(*year as i16).ok_or_else(bad),
        Value::Text(t) => parse_when(t.trim()).ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn parse_when(t: &str) -> Option<When> {
    use jiff::civil::{Date, DateTime};
    let ms = |dt: DateTime| {
        jiff::tz::TimeZone::UTC
            .to_timestamp(dt)
            .ok()
            .map(|ts| ts.as_millisecond())
    };
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(When::Instant(ts.as_millisecond()));
    }
    if t.contains('T') || t.contains(' ') {
        // A date and time without an offset: UTC.
        return t.parse::<DateTime>().ok().and_then(ms).map(When::Instant);
    }
    if let Ok(day) = t.parse::<Date>() {
        let next = day.tomorrow().ok()?;
        return Some(When::Period(
            ms(day.to_datetime(jiff::civil::Time::midnight()))?,
            ms(next.to_datetime(jiff::civil::Time::midnight()))?,
        ));
    }
    match t.split_once('-') {
        Some((y, m)) if y.len() == 4 && m.len() == 2 => {
            let (y, m): (i16, i8) = (y.parse().ok()?, m.parse().ok()?);
            let first = Date::new(y, m, 1).ok()?;
            let next = first.checked_add(jiff::Span::new().months(1)).ok()?;
            Some(When::Period(
                ms(first.to_datetime(jiff::civil::Time::midnight()))?,
                ms(next.to_datetime(jiff::civil::Time::midnight()))?,
            ))
        }
        None if t.len() == 4 => year_period(t.parse().ok()?),
        _ => None,
    }
}

fn year_period(year: i16) -> Option<When> {
    let start = |y: i16| {
        jiff::civil::Date::new(y, 1, 1)
            .ok()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
            .and_then(|dt| jiff::tz::TimeZone::UTC.to_timestamp(dt).ok())
            .map(|ts| ts.as_millisecond())
    };
    Some(When::Period(start(year)?, start(year.checked_add(1)?)?))
}

/// Bound values as one JSON array for `json_each`.
pub fn json_array(values: &[SqlValue]) -> String {
    let items: Vec<serde_json::Value> = values
        .iter()
        .map(|v| match v {
            SqlValue::Integer(n) => serde_json::Value::from(*n),
            SqlValue::Real(x) => serde_json::Value::from(*x),
            SqlValue::Text(t) => serde_json::Value::from(t.as_str()),
            _ => serde_json::Value::Null,
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::Name => "text",
        Kind::Number => "numbers",
        Kind::Bool => "true/false",
        Kind::Time => "times",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_months_and_days_are_periods_and_timestamps_instants() {
        let day = time(&Value::Text("2026-11-24".into()), Op::Eq).unwrap();
        assert_eq!(
            day,
            When::Period(1_795_478_400_000, 1_795_478_400_000 + 86_400_000)
        );
        let When::Period(start, end) = time(&Value::Int(2026), Op::Gt).unwrap() else {
            panic!("a year is a period")
        };
        assert_eq!(start, 1_767_225_600_000, "2026-01-01T00:00:00Z");
        assert_eq!(end, 1_798_761_600_000, "2027-01-01T00:00:00Z");
        assert!(matches!(
            time(&Value::Text("2026-11".into()), Op::Eq).unwrap(),
            When::Period(..)
        ));
        assert_eq!(
            time(&Value::Text("2026-11-24T00:00:00Z".into()), Op::Eq).unwrap(),
            When::Instant(1_795_478_400_000)
        );
        let err = time(&Value::Int(1_700_000_000_000), Op::Gt)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1700000000000 is not a date"), "{err}");
        assert!(time(&Value::Text("yesterday".into()), Op::Gt).is_err());
    }

    #[test]
    fn values_are_shown_as_written_in_errors() {
        let err = scalar(Kind::Bool, &Value::Int(2), Op::Eq)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "2 is not true or false (comparing with =)");
        assert_eq!(
            scalar(Kind::Bool, &Value::Int(1), Op::Eq).unwrap(),
            SqlValue::Integer(1)
        );
        assert_eq!(
            scalar(Kind::Number, &Value::Int(9_007_199_254_740_993), Op::Eq).unwrap(),
            SqlValue::Integer(9_007_199_254_740_993),
            "integers stay exact"
        );
    }
}
