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
    pub fn judge(&self, value: &str) -> Verdict {
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
    /// Loads the names (and synonyms) of a registry field.
    pub fn vocabulary(&self, field: &FieldSpec) -> Result<Vocabulary> {
        let db = self.db_path();
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
        let got = v.inspect_all(["liver", "LIVER", "hepar", "kidnee", "xyz"]);
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
