//! Feature dtypes and parsing values against them.
//!
//! `int`, `float`, `bool`, `str`, `date`, `datetime`, `json`, categorical
//! `cat[label]` / `cat[label:<type>]` (values are labels, of that type), and
//! `list[<dtype>]` of any of those.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dtype {
    Int,
    Float,
    Bool,
    Str,
    Date,
    DateTime,
    Json,
    /// Values are labels, optionally restricted to one label type.
    CatLabel {
        type_: Option<String>,
    },
    List(Box<Dtype>),
}

impl Dtype {
    /// The scalar dtype of list elements (or itself).
    pub fn element(&self) -> &Dtype {
        match self {
            Dtype::List(inner) => inner,
            other => other,
        }
    }

    pub fn is_list(&self) -> bool {
        matches!(self, Dtype::List(_))
    }

    /// Whether values compare as numbers (`<`, `>=` in filters).
    pub fn is_numeric(&self) -> bool {
        matches!(
            self.element(),
            Dtype::Int | Dtype::Float | Dtype::Bool | Dtype::Date | Dtype::DateTime
        )
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dtype::Int => f.write_str("int"),
            Dtype::Float => f.write_str("float"),
            Dtype::Bool => f.write_str("bool"),
            Dtype::Str => f.write_str("str"),
            Dtype::Date => f.write_str("date"),
            Dtype::DateTime => f.write_str("datetime"),
            Dtype::Json => f.write_str("json"),
            Dtype::CatLabel { type_: None } => f.write_str("cat[label]"),
            Dtype::CatLabel { type_: Some(t) } => write!(f, "cat[label:{t}]"),
            Dtype::List(inner) => write!(f, "list[{inner}]"),
        }
    }
}

impl FromStr for Dtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = || {
            Error::InvalidArgument(format!(
                "unknown dtype {s:?}: use int, float, bool, str, date, datetime, json, cat[label], \
                 cat[label:<type>] or list[<dtype>]"
            ))
        };
        if let Some(inner) = s.strip_prefix("list[").and_then(|r| r.strip_suffix(']')) {
            let inner: Dtype = inner.parse()?;
            if inner.is_list() {
                return Err(Error::InvalidArgument(
                    "lists of lists are not supported".into(),
                ));
            }
            return Ok(Dtype::List(Box::new(inner)));
        }
        if let Some(inner) = s.strip_prefix("cat[").and_then(|r| r.strip_suffix(']')) {
            return match inner.split_once(':') {
                None if inner == "label" || inner == "ulabel" => {
                    Ok(Dtype::CatLabel { type_: None })
                }
                Some(("label" | "ulabel", t)) if !t.trim().is_empty() => Ok(Dtype::CatLabel {
                    type_: Some(t.trim().to_string()),
                }),
                _ => Err(Error::InvalidArgument(format!(
                    "unknown categorical target in {s:?}: use cat[label] or cat[label:<type>]"
                ))),
            };
        }
        Ok(match s.to_ascii_lowercase().as_str() {
            "int" | "integer" | "int64" => Dtype::Int,
            "float" | "float64" | "number" => Dtype::Float,
            "bool" | "boolean" => Dtype::Bool,
            "str" | "string" | "text" => Dtype::Str,
            "date" => Dtype::Date,
            "datetime" | "timestamp" => Dtype::DateTime,
            "json" | "dict" => Dtype::Json,
            _ => return Err(bad()),
        })
    }
}

/// A parsed scalar value, before categorical values are resolved to labels.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// An int, exact over all of i64.
    Int(i64),
    /// A float, bool (0/1), date or datetime (unix ms).
    Num(f64),
    Text(String),
    Json(String),
    /// A label reference, resolved by the caller against the registry.
    Label(String),
}

/// Parses `raw` as a value of `dtype` (lists: comma-separated or a JSON
/// array). The error says what the feature expects.
pub fn parse_value(feature: &str, dtype: &Dtype, raw: &str) -> Result<Vec<Scalar>> {
    match dtype {
        Dtype::List(inner) => {
            let items: Vec<String> = match serde_json::from_str::<Vec<serde_json::Value>>(raw) {
                Ok(values) => values
                    .into_iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect(),
                Err(_) => crate::registry::split_list(raw),
            };
            items
                .iter()
                .map(|i| parse_scalar(feature, inner, i))
                .collect()
        }
        scalar => Ok(vec![parse_scalar(feature, scalar, raw)?]),
    }
}

fn parse_scalar(feature: &str, dtype: &Dtype, raw: &str) -> Result<Scalar> {
    let v = raw.trim();
    let wrong = |what: &str| {
        Error::InvalidArgument(format!("feature {feature} is {dtype}: {v:?} is not {what}"))
    };
    Ok(match dtype {
        Dtype::Int => Scalar::Int(v.parse::<i64>().map_err(|_| wrong("an integer"))?),
        Dtype::Float => {
            let x: f64 = v.parse().map_err(|_| wrong("a number"))?;
            if !x.is_finite() {
                return Err(wrong("a finite number"));
            }
            Scalar::Num(x)
        }
        Dtype::Bool => Scalar::Num(match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => 1.0,
            "false" | "no" | "0" => 0.0,
            _ => return Err(wrong("true or false")),
        }),
        Dtype::Str => Scalar::Text(v.to_string()),
        Dtype::Date => {
            Scalar::Num(parse_date_ms(v).ok_or_else(|| wrong("a date like 2026-11-24"))? as f64)
        }
        Dtype::DateTime => Scalar::Num(
            parse_datetime_ms(v).ok_or_else(|| wrong("a timestamp like 2026-11-24T18:00:00Z"))?
                as f64,
        ),
        Dtype::Json => {
            let value: serde_json::Value =
                serde_json::from_str(v).map_err(|_| wrong("valid JSON"))?;
            Scalar::Json(value.to_string())
        }
        Dtype::CatLabel { .. } => {
            if v.is_empty() {
                return Err(wrong("a label name"));
            }
            Scalar::Label(v.to_string())
        }
        Dtype::List(_) => return Err(wrong("a single value")),
    })
}

/// `2026-11-24` -> unix milliseconds at midnight UTC.
pub fn parse_date_ms(v: &str) -> Option<i64> {
    let date: jiff::civil::Date = v.parse().ok()?;
    let ts = jiff::tz::TimeZone::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .ok()?;
    Some(ts.as_millisecond())
}

/// RFC 3339 timestamp (or a bare date) -> unix milliseconds.
pub fn parse_datetime_ms(v: &str) -> Option<i64> {
    v.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
        .or_else(|| parse_date_ms(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_round_trip_and_typos_are_explained() {
        for s in [
            "int",
            "float",
            "bool",
            "str",
            "date",
            "datetime",
            "json",
            "cat[label]",
            "cat[label:tissue]",
            "list[int]",
            "list[cat[label:tissue]]",
        ] {
            assert_eq!(s.parse::<Dtype>().unwrap().to_string(), s);
        }
        let err = "flaot".parse::<Dtype>().unwrap_err().to_string();
        assert!(err.contains("int, float"), "{err}");
        assert!("cat[gene]".parse::<Dtype>().is_err());
        assert!("list[list[int]]".parse::<Dtype>().is_err());
    }

    #[test]
    fn values_are_checked_against_the_dtype() {
        assert_eq!(
            parse_value("t", &Dtype::Float, "37.5").unwrap(),
            vec![Scalar::Num(37.5)]
        );
        let err = parse_value("temperature", &Dtype::Float, "warm")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "feature temperature is float: \"warm\" is not a number"
        );
        assert!(parse_value("n", &Dtype::Int, "3.5").is_err());
        assert_eq!(
            parse_value("n", &Dtype::Int, "9007199254740993").unwrap(),
            vec![Scalar::Int(9_007_199_254_740_993)],
            "ints above 2^53 stay exact"
        );
        assert_eq!(
            parse_value("b", &Dtype::Bool, "yes").unwrap(),
            vec![Scalar::Num(1.0)]
        );
        assert_eq!(
            parse_value("d", &Dtype::Date, "2026-11-24").unwrap(),
            vec![Scalar::Num(1_795_478_400_000.0)]
        );
        assert!(parse_value("d", &Dtype::Date, "24/11/2026").is_err());
        assert_eq!(
            parse_value("j", &Dtype::Json, "{\"a\": 1}").unwrap(),
            vec![Scalar::Json("{\"a\":1}".into())]
        );
        let list = Dtype::List(Box::new(Dtype::Int));
        assert_eq!(parse_value("l", &list, "1, 2,3").unwrap().len(), 3);
        assert_eq!(parse_value("l", &list, "[1, 2]").unwrap().len(), 2);
        assert!(parse_value("x", &Dtype::Float, "NaN").is_err());
    }
}
