//! Ranked, typo-tolerant search over a registry's text fields.
//!
//! Ranking, best first: exact name > synonym > whole word > prefix >
//! contains > fuzzy (one edit away, two for words of 8+ characters),
//! case- and accent-insensitive. Every tier is an index look-up: names and
//! synonyms by their folded form, words through `search_word`, substrings
//! through the trigram index over the vocabulary, and typos through the
//! vocabulary words near the query's — so no tier scans the registry's
//! rows. A query of several words needs every word to match (the last one
//! typed may be the start of a word), and each tier counts live records
//! only, so old versions and trashed rows never crowd out live ones.

pub mod explain;
pub mod fuzzy;
pub mod index;
mod tiers;
pub mod vocabulary;

use std::collections::HashMap;

use rusqlite::params_from_iter;
use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::similar::fold;
pub use fuzzy::one_edit_variants;
use tiers::Matcher;

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

    /// The folded-name expression on table alias `t` that exact and
    /// prefix look-ups use (each backed by an index).
    fn name_on(self, t: &str) -> String {
        match self {
            Registry::Artifact | Registry::Collection => format!("lower({t}.key)"),
            _ => format!("{t}.name_fold"),
        }
    }

    /// Name and detail columns of hits, on table alias `t`.
    fn display(self) -> &'static str {
        match self {
            Registry::Label => "t.name, CASE WHEN t.type = '' THEN NULL ELSE 'type ' || t.type END",
            Registry::Feature => "t.name, t.dtype || coalesce(' [' || t.unit || ']', '')",
            Registry::Artifact => "t.key, t.description",
            Registry::Collection => "t.key, t.description",
            Registry::Schema => "t.name, t.n_features || ' features'",
        }
    }

    /// Rows that count, on table alias `t`: live, and the latest version
    /// for versioned registries.
    fn live_on(self, t: &str) -> String {
        match self {
            Registry::Artifact | Registry::Collection => {
                format!("{t}.trashed_at IS NULL AND {t}.is_latest = 1")
            }
            Registry::Schema => "1".into(),
            _ => format!("{t}.trashed_at IS NULL"),
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

impl Instance {
    /// The best `limit` matches of `query` in `registry`.
    pub fn search(&self, registry: Registry, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let q = fold(query);
        if q.is_empty() {
            return Err(Error::InvalidArgument("the search query is empty".into()));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let db = self.db_path();
        let conn = &self.conn;
        let typed = index::words_in_order(&q);
        let mut best = Ranked::default();
        best.add(tiers::exact(conn, registry, &q).db(&db)?, Tier::Exact);
        best.add(tiers::synonym(conn, registry, &q).db(&db)?, Tier::Synonym);
        if typed.is_empty() {
            return self.describe_hits(registry, &best, limit);
        }
        let whole: Vec<Matcher> = typed.iter().cloned().map(Matcher::Exact).collect();
        best.add_ranked(
            tiers::all_match(conn, registry, &whole).db(&db)?,
            Tier::Word,
        );
        if best.len() < limit {
            best.add(
                tiers::name_prefix(conn, registry, &q).db(&db)?,
                Tier::Prefix,
            );
            // The last word typed may be unfinished: a prefix; the others whole.
            let mut matchers = whole.clone();
            if let Some(Matcher::Exact(last)) = matchers.pop() {
                matchers.push(Matcher::Prefix(last));
            }
            best.add_ranked(
                tiers::all_match(conn, registry, &matchers).db(&db)?,
                Tier::Prefix,
            );
        }
        let short = |w: &String| w.chars().count() < fuzzy::MIN_FUZZY_LEN;
        if best.len() < limit && !typed.iter().all(short) {
            let matchers: Vec<Matcher> = typed
                .iter()
                .map(|w| match short(w) {
                    true => Matcher::Exact(w.clone()),
                    false => Matcher::Contains(w.clone()),
                })
                .collect();
            best.add_ranked(
                tiers::all_match(conn, registry, &matchers).db(&db)?,
                Tier::Contains,
            );
        }
        if best.len() < limit && !typed.iter().all(short) {
            let matchers: Vec<Matcher> = typed
                .iter()
                .map(|w| match short(w) {
                    true => Matcher::Exact(w.clone()),
                    false => Matcher::Fuzzy(w.clone()),
                })
                .collect();
            best.add_ranked(
                tiers::all_match(conn, registry, &matchers).db(&db)?,
                Tier::Fuzzy,
            );
        }
        self.describe_hits(registry, &best, limit)
    }

    /// Runs a search and returns the query plan of every statement it ran
    /// (`EXPLAIN QUERY PLAN`), to check that each is an index look-up.
    pub fn search_plan(
        &self,
        registry: Registry,
        query: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        let (result, plans) = explain::recording(|| self.search(registry, query, limit));
        result.map(|_| plans)
    }

    /// Names and details of the best records, live ones only, ranked.
    fn describe_hits(
        &self,
        registry: Registry,
        best: &Ranked,
        limit: usize,
    ) -> Result<Vec<SearchHit>> {
        let db = self.db_path();
        let ids: Vec<i64> = best.0.keys().copied().collect();
        let mut hits = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT t.id, t.uid, {} FROM {} t WHERE t.id IN ({marks}) AND {}",
                registry.display(),
                registry.table(),
                registry.live_on("t")
            );
            let mut stmt = self.conn.prepare(&sql).db(&db)?;
            let rows = stmt
                .query_map(params_from_iter(chunk.iter()), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .db(&db)?;
            for row in rows {
                let (id, uid, name, detail) = row.db(&db)?;
                let (tier, distance) = best.0[&id];
                hits.push(SearchHit {
                    uid,
                    name: name.unwrap_or_default(),
                    detail,
                    tier,
                    distance,
                });
            }
        }
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
}

/// Each candidate record's best (tier, distance) so far.
#[derive(Default)]
struct Ranked(HashMap<i64, (Tier, u32)>);

impl Ranked {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn add(&mut self, ids: Vec<i64>, tier: Tier) {
        self.add_ranked(ids.into_iter().map(|id| (id, 0)).collect(), tier);
    }

    fn add_ranked(&mut self, found: Vec<(i64, u32)>, tier: Tier) {
        for (id, distance) in found {
            let e = self.0.entry(id).or_insert((tier, distance));
            if (tier, distance) < *e {
                *e = (tier, distance);
            }
        }
    }
}
