//! validate / inspect / standardize: checking many values against a
//! registry field's names and synonyms.
//!
//! The field's terms are loaded once into hash maps (exact, case-folded,
//! synonyms), so checking a million values is a million hash look-ups;
//! suggestions are computed once per distinct invalid value.

use std::collections::HashMap;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::search::one_edit_variants;
use crate::similar::fold;

/// Which names to check values against: `label`, `label:<type>`, `feature`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldSpec {
    Label { type_: Option<String> },
    Feature,
}

impl FromStr for FieldSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (head, arg) = match s.split_once(':') {
            Some((h, a)) => (h.trim(), Some(a.trim())),
            None => (s.trim(), None),
        };
        match (head.to_ascii_lowercase().as_str(), arg) {
            ("label" | "ulabel" | "labels", t) => Ok(FieldSpec::Label {
                type_: t.filter(|t| !t.is_empty()).map(str::to_string),
            }),
            ("feature" | "features", None) => Ok(FieldSpec::Feature),
            _ => Err(Error::InvalidArgument(format!(
                "cannot validate against {s:?}: use label, label:<type> or feature"
            ))),
        }
    }
}

impl std::fmt::Display for FieldSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldSpec::Label { type_: None } => f.write_str("label"),
            FieldSpec::Label { type_: Some(t) } => write!(f, "label:{t}"),
            FieldSpec::Feature => f.write_str("feature"),
        }
    }
}

/// The verdict on one value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    /// Exactly a canonical name.
    Valid,
    /// A canonical name in another case or spacing.
    Case { standard: String },
    /// A synonym of a canonical name.
    Synonym { standard: String },
    /// Not in the registry.
    Invalid { suggestion: Option<String> },
    /// No value at all (an empty cell, a null): nothing to check.
    Missing,
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid)
    }

    /// The canonical name, when the value can be standardized.
    pub fn standard(&self) -> Option<&str> {
        match self {
            Verdict::Case { standard } | Verdict::Synonym { standard } => Some(standard),
            _ => None,
        }
    }
}

/// A field's names, ready for fast look-ups.
pub struct Vocabulary {
    exact: HashMap<String, ()>,
    folded: HashMap<String, String>,
    synonyms: HashMap<String, String>,
}

impl Vocabulary {
    pub fn len(&self) -> usize {
        self.exact.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    /// Judges one value (no suggestion for invalid ones; see `inspect_all`).
    /// A blank value is `Missing`, not invalid.
    pub fn judge(&self, value: &str) -> Verdict {
        if value.trim().is_empty() {
            return Verdict::Missing;
        }
        if self.exact.contains_key(value) {
            return Verdict::Valid;
        }
        let f = fold(value);
        if let Some(standard) = self.folded.get(&f) {
            return Verdict::Case {
                standard: standard.clone(),
            };
        }
        if let Some(standard) = self.synonyms.get(&f) {
            return Verdict::Synonym {
                standard: standard.clone(),
            };
        }
        Verdict::Invalid { suggestion: None }
    }

    /// Judges every value; each distinct invalid value gets a "did you mean"
    /// from the names one edit away.
    pub fn inspect_all<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> Vec<Verdict> {
        let mut suggestions: HashMap<String, Option<String>> = HashMap::new();
        values
            .into_iter()
            .map(|v| match self.judge(v) {
                Verdict::Invalid { .. } => {
                    let suggestion = suggestions
                        .entry(v.to_string())
                        .or_insert_with(|| self.suggest(v))
                        .clone();
                    Verdict::Invalid { suggestion }
                }
                other => other,
            })
            .collect()
    }

    fn suggest(&self, value: &str) -> Option<String> {
        let f = fold(value);
        if f.chars().count() < 3 {
            return None;
        }
        one_edit_variants(&f).into_iter().find_map(|v| {
            self.folded
                .get(&v)
                .or_else(|| self.synonyms.get(&v))
                .cloned()
        })
    }
}

impl Instance {
    /// Loads the names (and synonyms) of a registry field. A label type no
    /// label has (a typo, usually) and an empty registry are errors, not an
    /// empty vocabulary that would call every value invalid.
    pub fn vocabulary(&self, field: &FieldSpec) -> Result<Vocabulary> {
        let db = self.db_path();
        self.check_field_exists(field)?;
        let (names_sql, synonyms_sql, arg): (&str, &str, Option<&str>) = match field {
            FieldSpec::Label { type_ } => (
                "SELECT name FROM ulabel WHERE trashed_at IS NULL AND (?1 IS NULL OR type = ?1)",
                "SELECT s.fold, l.name FROM synonym s JOIN ulabel l ON l.id = s.record_id
                 WHERE s.registry = 'ulabel' AND l.trashed_at IS NULL AND (?1 IS NULL OR l.type = ?1)",
                type_.as_deref(),
            ),
            FieldSpec::Feature => (
                "SELECT name FROM feature WHERE trashed_at IS NULL AND ?1 IS NULL",
                "SELECT s.fold, f.name FROM synonym s JOIN feature f ON f.id = s.record_id
                 WHERE s.registry = 'feature' AND ?1 IS NULL",
                None,
            ),
        };
        let mut vocab = Vocabulary {
            exact: HashMap::new(),
            folded: HashMap::new(),
            synonyms: HashMap::new(),
        };
        let mut stmt = self.conn.prepare(names_sql).db(&db)?;
        let mut rows = stmt.query([arg]).db(&db)?;
        while let Some(row) = rows.next().db(&db)? {
            let name: String = row.get(0).db(&db)?;
            vocab
                .folded
                .entry(fold(&name))
                .or_insert_with(|| name.clone());
            vocab.exact.insert(name, ());
        }
        let mut stmt = self.conn.prepare(synonyms_sql).db(&db)?;
        let mut rows = stmt.query([arg]).db(&db)?;
        while let Some(row) = rows.next().db(&db)? {
            vocab
                .synonyms
                .entry(row.get(0).db(&db)?)
                .or_insert(row.get(1).db(&db)?);
        }
        Ok(vocab)
    }
}

impl Instance {
    /// Errors when `field` names nothing: an unknown label type (with the
    /// closest existing one), or a registry with no records yet.
    fn check_field_exists(&self, field: &FieldSpec) -> Result<()> {
        let db = self.db_path();
        let (registry, any_sql, add) = match field {
            FieldSpec::Label { type_: Some(t) } => {
                let exists: bool = self
                    .conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM ulabel WHERE type = ?1)")
                    .and_then(|mut s| s.query_row([t], |r| r.get(0)))
                    .db(&db)?;
                if exists {
                    return Ok(());
                }
                let types = self.label_types()?;
                let named: Vec<&str> = types
                    .iter()
                    .map(String::as_str)
                    .filter(|t| !t.is_empty())
                    .collect();
                let hint = crate::similar::closest(t, named.iter().copied())
                    .map(|c| format!("; did you mean label:{c}?"))
                    .unwrap_or_default();
                let listed = if named.is_empty() {
                    "no label has a type yet".to_string()
                } else {
                    format!("types: {}", named.join(", "))
                };
                return Err(Error::InvalidArgument(format!(
                    "no label has type {t:?}{hint}\n  {listed}"
                )));
            }
            FieldSpec::Label { type_: None } => (
                "label",
                "SELECT EXISTS (SELECT 1 FROM ulabel WHERE trashed_at IS NULL)",
                "`labmesh label add` or `labmesh label import`",
            ),
            FieldSpec::Feature => (
                "feature",
                "SELECT EXISTS (SELECT 1 FROM feature WHERE trashed_at IS NULL)",
                "`labmesh feature add`",
            ),
        };
        let any: bool = self.conn.query_row(any_sql, [], |r| r.get(0)).db(&db)?;
        if any {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "there are no {registry}s to check values against yet; add some with {add}"
            )))
        }
    }

    /// The distinct label types ('' for untyped), walked through the
    /// `ulabel_type` index one type at a time.
    pub fn label_types(&self) -> Result<Vec<String>> {
        self.conn
            .prepare_cached(
                "WITH RECURSIVE t(type) AS (
                     SELECT (SELECT min(type) FROM ulabel)
                     UNION ALL
                     SELECT (SELECT min(type) FROM ulabel WHERE type > t.type) FROM t WHERE t.type IS NOT NULL)
                 SELECT type FROM t WHERE type IS NOT NULL",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&self.db_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocabulary {
        let mut v = Vocabulary {
            exact: HashMap::new(),
            folded: HashMap::new(),
            synonyms: HashMap::new(),
        };
        for n in ["liver", "kidney"] {
            v.exact.insert(n.into(), ());
            v.folded.insert(n.into(), n.into());
        }
        v.synonyms.insert("hepar".into(), "liver".into());
        v
    }

    #[test]
    fn verdicts() {
        let v = vocab();
        let got = v.inspect_all(["liver", "LIVER", "hepar", "kidnee", "xyz", " "]);
        assert_eq!(
            got[5],
            Verdict::Missing,
            "a blank value is missing, not invalid"
        );
        assert_eq!(got[0], Verdict::Valid);
        assert_eq!(
            got[1],
            Verdict::Case {
                standard: "liver".into()
            }
        );
        assert_eq!(
            got[2],
            Verdict::Synonym {
                standard: "liver".into()
            }
        );
        assert_eq!(
            got[3],
            Verdict::Invalid {
                suggestion: Some("kidney".into())
            }
        );
        assert_eq!(got[4], Verdict::Invalid { suggestion: None });
        assert!("label:tissue".parse::<FieldSpec>().is_ok());
        assert!("gene".parse::<FieldSpec>().is_err());
    }
}
