//! Ranked, typo-tolerant search over a registry's text fields.
//!
//! Ranking, best first: exact name > synonym > whole word > prefix >
//! contains > fuzzy (one or two edits away), case-insensitive. Every tier is
//! an index look-up: names and synonyms by their folded form, words
//! through `search_word`, substrings through the trigram index over the
//! vocabulary, and typos by probing the vocabulary with the query's
//! one-edit neighbours — so no tier scans the registry's rows.

pub mod index;
pub mod vocabulary;

use std::collections::HashMap;

use rusqlite::params_from_iter;
use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::similar::fold;

/// Registries that can be searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    Label,
    Feature,
    Artifact,
    Collection,
    Schema,
}

impl Registry {
    pub const ALL: [Registry; 5] = [
        Registry::Artifact,
        Registry::Collection,
        Registry::Label,
        Registry::Feature,
        Registry::Schema,
    ];

    /// The registry's tag in `search_word` and `synonym`.
    pub fn tag(self) -> &'static str {
        match self {
            Registry::Label => "ulabel",
            Registry::Feature => "feature",
            Registry::Artifact => "artifact",
            Registry::Collection => "collection",
            Registry::Schema => "schema",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Registry::Label => "ulabel",
            other => other.tag(),
        }
    }

    /// The folded-name expression its exact and prefix look-ups use (each
    /// backed by an index).
    fn name_expr(self) -> &'static str {
        match self {
            Registry::Artifact | Registry::Collection => "lower(key)",
            _ => "name_fold",
        }
    }

    fn display(self) -> &'static str {
        match self {
            Registry::Label => "name, CASE WHEN type = '' THEN NULL ELSE 'type ' || type END",
            Registry::Feature => "name, dtype || coalesce(' [' || unit || ']', '')",
            Registry::Artifact => "key, description",
            Registry::Collection => "key, description",
            Registry::Schema => "name, n_features || ' features'",
        }
    }

    /// Rows that count: live, and the latest version for versioned ones.
    fn live(self) -> &'static str {
        match self {
            Registry::Artifact | Registry::Collection => "trashed_at IS NULL AND is_latest = 1",
            Registry::Schema => "1",
            _ => "trashed_at IS NULL",
        }
    }
}

impl std::str::FromStr for Registry {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "label" | "labels" | "ulabel" => Registry::Label,
            "feature" | "features" => Registry::Feature,
            "artifact" | "artifacts" => Registry::Artifact,
            "collection" | "collections" => Registry::Collection,
            "schema" | "schemas" => Registry::Schema,
            other => {
                let names = ["artifact", "collection", "label", "feature", "schema"];
                let hint = crate::similar::closest(other, names)
                    .map(|n| format!("; did you mean {n:?}?"))
                    .unwrap_or_default();
                return Err(Error::InvalidArgument(format!(
                    "unknown registry {other:?}: use one of {}{hint}",
                    names.join(", ")
                )));
            }
        })
    }
}

/// How a hit matched, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Exact,
    Synonym,
    Word,
    Prefix,
    Contains,
    Fuzzy,
}

/// One search result.
#[derive(Clone, Debug, Serialize)]
pub struct SearchHit {
    pub uid: String,
    pub name: String,
    /// Type, dtype, description… whatever tells hits apart.
    pub detail: Option<String>,
    pub tier: Tier,
    /// Edits between the query and the matched word (fuzzy hits).
    pub distance: u32,
}

/// At most this many candidates per tier are ranked.
const TIER_CAP: usize = 1000;

impl Instance {
    /// The best `limit` matches of `query` in `registry`.
    pub fn search(&self, registry: Registry, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let q = fold(query);
        if q.is_empty() {
            return Err(Error::InvalidArgument("the search query is empty".into()));
        }
        let mut best: HashMap<i64, (Tier, u32)> = HashMap::new();
        let add =
            |best: &mut HashMap<i64, (Tier, u32)>, ids: Vec<i64>, tier: Tier, distance: u32| {
                for id in ids {
                    let e = best.entry(id).or_insert((tier, distance));
                    if (tier, distance) < *e {
                        *e = (tier, distance);
                    }
                }
            };
        let (table, tag, name) = (registry.table(), registry.tag(), registry.name_expr());
        let code = index::registry_code(tag);
        let words = index::words(&q);

        add(
            &mut best,
            self.ids(
                &format!("SELECT id FROM {table} WHERE {name} = ?1 LIMIT {TIER_CAP}"),
                &[&q],
            )?,
            Tier::Exact,
            0,
        );
        add(
            &mut best,
            self.ids(&format!("SELECT record_id FROM synonym WHERE registry = '{tag}' AND fold = ?1 LIMIT {TIER_CAP}"), &[&q])?,
            Tier::Synonym,
            0,
        );
        add(
            &mut best,
            self.records_with_all_words(tag, &words)?,
            Tier::Word,
            0,
        );
        if best.len() < limit {
            let upper = format!("{q}\u{10FFFF}");
            add(
                &mut best,
                self.ids(
                    &format!(
                        "SELECT id FROM {table} WHERE {name} >= ?1 AND {name} < ?2 LIMIT {TIER_CAP}"
                    ),
                    &[&q, &upper],
                )?,
                Tier::Prefix,
                0,
            );
            if let Some(last) = words.last() {
                let upper = format!("{last}\u{10FFFF}");
                add(
                &mut best,
                    self.ids(
                        &format!(
                            "SELECT DISTINCT record_id FROM search_word WHERE word >= ?1 AND word < ?2 AND registry = {code} LIMIT {TIER_CAP}"
                        ),
                        &[last, &upper],
                    )?,
                    Tier::Prefix,
                    0,
                );
            }
        }
        if best.len() < limit {
            for w in words.iter().filter(|w| w.chars().count() >= 3) {
                let phrase = format!("\"{}\"", w.replace('"', "\"\""));
                let found = self.strings(
                    &format!("SELECT word FROM search_vocab_trigram WHERE search_vocab_trigram MATCH ?1 LIMIT {TIER_CAP}"),
                    &[&phrase],
                )?;
                add(&mut best, self.postings(tag, &found)?, Tier::Contains, 0);
            }
        }
        if best.len() < limit {
            for w in &words {
                for (word, distance) in self.vocabulary_neighbours(w)? {
                    add(
                        &mut best,
                        self.postings(tag, &[word])?,
                        Tier::Fuzzy,
                        distance,
                    );
                }
            }
        }

        let mut hits = self.describe_hits(registry, &best)?;
        hits.sort_by(|a, b| {
            (a.tier, a.distance, a.name.chars().count(), &a.name).cmp(&(
                b.tier,
                b.distance,
                b.name.chars().count(),
                &b.name,
            ))
        });
        hits.truncate(limit);
        Ok(hits)
    }

    /// Records that contain every word (a whole-word match).
    fn records_with_all_words(&self, tag: &str, words: &[String]) -> Result<Vec<i64>> {
        let Some((first, rest)) = words.split_first() else {
            return Ok(Vec::new());
        };
        let code = index::registry_code(tag);
        let sql = format!(
            "SELECT DISTINCT record_id FROM search_word WHERE word = ?1 AND registry = {code} LIMIT {TIER_CAP}"
        );
        let mut ids = self.ids(&sql, &[first])?;
        for w in rest {
            let others: std::collections::HashSet<i64> =
                self.ids(&sql, &[w])?.into_iter().collect();
            ids.retain(|id| others.contains(id));
        }
        Ok(ids)
    }

    fn postings(&self, tag: &str, words: &[String]) -> Result<Vec<i64>> {
        let code = index::registry_code(tag);
        let sql = format!(
            "SELECT DISTINCT record_id FROM search_word WHERE word = ?1 AND registry = {code} LIMIT {TIER_CAP}"
        );
        let mut out = Vec::new();
        for w in words {
            out.extend(self.ids(&sql, &[w])?);
            if out.len() >= TIER_CAP {
                break;
            }
        }
        Ok(out)
    }

    /// Vocabulary words one edit (Damerau) from `word`, with the distance.
    fn vocabulary_neighbours(&self, word: &str) -> Result<Vec<(String, u32)>> {
        if word.chars().count() < 3 {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM search_vocab WHERE word = ?1")
            .db(&self.db_path())?;
        let mut out = Vec::new();
        for candidate in one_edit_variants(word) {
            if stmt.exists([&candidate]).db(&self.db_path())? {
                let d = strsim::damerau_levenshtein(word, &candidate) as u32;
                out.push((candidate, d));
            }
        }
        Ok(out)
    }

    /// Names and details of the candidate records, live ones only.
    fn describe_hits(
        &self,
        registry: Registry,
        best: &HashMap<i64, (Tier, u32)>,
    ) -> Result<Vec<SearchHit>> {
        let ids: Vec<i64> = best.keys().copied().collect();
        let mut hits = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT id, uid, {} FROM {} WHERE id IN ({marks}) AND {}",
                registry.display(),
                registry.table(),
                registry.live()
            );
            let mut stmt = self.conn.prepare(&sql).db(&self.db_path())?;
            let rows = stmt
                .query_map(params_from_iter(chunk.iter()), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .db(&self.db_path())?;
            for row in rows {
                let (id, uid, name, detail) = row.db(&self.db_path())?;
                let (tier, distance) = best[&id];
                hits.push(SearchHit {
                    uid,
                    name: name.unwrap_or_default(),
                    detail,
                    tier,
                    distance,
                });
            }
        }
        Ok(hits)
    }

    fn ids(&self, sql: &str, args: &[&String]) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(sql).db(&self.db_path())?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| r.get(0))
            .db(&self.db_path())?;
        rows.collect::<rusqlite::Result<Vec<i64>>>()
            .db(&self.db_path())
    }

    fn strings(&self, sql: &str, args: &[&String]) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(sql).db(&self.db_path())?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| r.get(0))
            .db(&self.db_path())?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .db(&self.db_path())
    }
}

/// Every string one edit away from `word`: deletions, adjacent
/// transpositions, substitutions and insertions over the word's own
/// characters plus a–z and 0–9.
pub fn one_edit_variants(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    for c in &chars {
        if !alphabet.contains(c) {
            alphabet.push(*c);
        }
    }
    let n = chars.len();
    let mut out = Vec::with_capacity(n * 2 * alphabet.len() + 2 * n);
    let join = |v: &[char]| v.iter().collect::<String>();
    for i in 0..n {
        let mut v = chars.clone();
        v.remove(i);
        out.push(join(&v));
        if i + 1 < n {
            let mut v = chars.clone();
            v.swap(i, i + 1);
            out.push(join(&v));
        }
        for &c in &alphabet {
            if c != chars[i] {
                let mut v = chars.clone();
                v[i] = c;
                out.push(join(&v));
            }
        }
    }
    for i in 0..=n {
        for &c in &alphabet {
            let mut v = chars.clone();
            v.insert(i, c);
            out.push(join(&v));
        }
    }
    out.sort_unstable();
    out.dedup();
    out.retain(|v| v != word && !v.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::one_edit_variants;

    #[test]
    fn variants_cover_the_common_typos() {
        let v = one_edit_variants("livr");
        assert!(v.contains(&"liver".to_string()), "insertion");
        let v = one_edit_variants("lvier");
        assert!(v.contains(&"liver".to_string()), "transposition");
        let v = one_edit_variants("livar");
        assert!(v.contains(&"liver".to_string()), "substitution");
        let v = one_edit_variants("liverr");
        assert!(v.contains(&"liver".to_string()), "deletion");
        assert!(!v.contains(&"liverr".to_string()));
    }
}
