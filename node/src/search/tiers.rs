//! The SQL behind each search tier, every one an index look-up that
//! returns only live records (untrashed; latest versions for versioned
//! registries), so dead rows never crowd live ones out of a tier.
//!
//! A query of several words matches a record when every word does: the
//! word with the fewest postings drives (`search_word` by word), other
//! whole words are checked by primary-key seeks in the same statement,
//! and the rest (a prefix, a substring, a typo) against the record's own
//! words. Nothing is capped before the words are intersected.

use std::collections::HashMap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use crate::search::{Registry, explain, fuzzy, index};

/// At most this many records come from one tier.
pub const TIER_CAP: usize = 1000;

/// Postings are counted up to this many to pick the driving word.
const COUNT_BOUND: i64 = 5000;

/// At most this many vocabulary words stand for one substring.
const CONTAINS_WORDS: usize = 1000;

/// A non-driving matcher standing for at most this many vocabulary words
/// is checked by index seeks, one per word, inside the statement.
const SEEK_WORDS: usize = 64;

/// How one query word matches one of a record's words.
#[derive(Clone, Debug)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Contains(String),
    /// Within `fuzzy::max_edits` of the word.
    Fuzzy(String),
}

impl Matcher {
    /// Edits between this matcher and a record's word, if it matches.
    fn distance(&self, word: &str) -> Option<u32> {
        match self {
            Matcher::Exact(w) => (w == word).then_some(0),
            Matcher::Prefix(p) => word.starts_with(p.as_str()).then_some(0),
            Matcher::Contains(s) => word.contains(s.as_str()).then_some(0),
            Matcher::Fuzzy(w) => fuzzy::within(w, word, fuzzy::max_edits(w)),
        }
    }
}

/// A driving word's postings, as SQL on `search_word w`.
struct Drive {
    condition: String,
    params: Vec<SqlValue>,
    /// Distance of each word the condition admits (fuzzy drivers).
    distances: HashMap<String, u32>,
}

/// Runs SQL, handing each row to `each` until it returns false, and
/// records the plan while `explain::recording`.
pub fn rows(
    conn: &Connection,
    sql: &str,
    params: &[SqlValue],
    mut each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<bool>,
) -> rusqlite::Result<()> {
    explain::record(conn, sql, params);
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    while let Some(row) = rows.next()? {
        if !each(row)? {
            break;
        }
    }
    Ok(())
}

/// Ids from a one-column query.
pub fn ids(conn: &Connection, sql: &str, params: &[SqlValue]) -> rusqlite::Result<Vec<i64>> {
    let mut out = Vec::new();
    rows(conn, sql, params, |r| {
        out.push(r.get(0)?);
        Ok(true)
    })?;
    Ok(out)
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_string())
}

fn upper(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// Records whose folded name (key) is `q`.
pub fn exact(conn: &Connection, r: Registry, q: &str) -> rusqlite::Result<Vec<i64>> {
    let sql = format!(
        "SELECT t.id FROM {} t WHERE {} = ?1 AND {} LIMIT {TIER_CAP}",
        r.table(),
        r.name_on("t"),
        r.live_on("t")
    );
    ids(conn, &sql, &[text(q)])
}

/// Records with the synonym `q`.
pub fn synonym(conn: &Connection, r: Registry, q: &str) -> rusqlite::Result<Vec<i64>> {
    let sql = format!(
        "SELECT s.record_id FROM synonym s JOIN {} t ON t.id = s.record_id
         WHERE s.registry = ?1 AND s.fold = ?2 AND {} LIMIT {TIER_CAP}",
        r.table(),
        r.live_on("t")
    );
    ids(conn, &sql, &[text(r.tag()), text(q)])
}

/// Records whose folded name (key) starts with `q`.
pub fn name_prefix(conn: &Connection, r: Registry, q: &str) -> rusqlite::Result<Vec<i64>> {
    let name = r.name_on("t");
    let sql = format!(
        "SELECT t.id FROM {} t WHERE {name} >= ?1 AND {name} < ?2 AND {} LIMIT {TIER_CAP}",
        r.table(),
        r.live_on("t")
    );
    ids(conn, &sql, &[text(q), text(&upper(q))])
}

/// Records matched by every matcher, with their summed distance.
pub fn all_match(
    conn: &Connection,
    r: Registry,
    matchers: &[Matcher],
) -> rusqlite::Result<Vec<(i64, u32)>> {
    let code = index::registry_code(r.tag());
    let mut drives = Vec::with_capacity(matchers.len());
    for m in matchers {
        match drive(conn, m)? {
            Some(d) => drives.push(d),
            // A word nothing in the vocabulary matches: no record can.
            None => return Ok(Vec::new()),
        }
    }
    // The driver: the matcher with the fewest postings.
    let mut driver = 0;
    if matchers.len() > 1 {
        let mut fewest = i64::MAX;
        for (i, d) in drives.iter().enumerate() {
            let n = count_postings(conn, code, d)?;
            if n < fewest {
                (driver, fewest) = (i, n);
            }
        }
    }
    let mut params = drives[driver].params.clone();
    let mut sql = format!(
        "SELECT w.record_id, w.word FROM search_word w JOIN {} t ON t.id = w.record_id
         WHERE {} AND w.registry = {code} AND {}",
        r.table(),
        drives[driver].condition,
        r.live_on("t")
    );
    // Other whole words, and the few vocabulary words a substring or a
    // typo stands for: primary-key seeks in the statement itself. What is
    // left (a prefix; a typo's distance) is checked on the record's words.
    let mut rest: Vec<&Matcher> = Vec::new();
    for (i, m) in matchers.iter().enumerate() {
        let seek = |sql: &mut String, n: usize, condition: &str| {
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM search_word x{n} WHERE {} AND x{n}.registry = {code} AND x{n}.record_id = w.record_id)",
                condition.replace("w.word", &format!("x{n}.word"))
            ));
        };
        match m {
            _ if i == driver => {}
            Matcher::Exact(w) => {
                params.push(text(w));
                seek(&mut sql, i, &format!("w.word = ?{}", params.len()));
            }
            Matcher::Contains(_) | Matcher::Fuzzy(_) if drives[i].distances.len() <= SEEK_WORDS => {
                params.extend(drives[i].params.iter().cloned());
                let json = format!("?{}", params.len());
                seek(
                    &mut sql,
                    i,
                    &format!("w.word IN (SELECT value FROM json_each({json}))"),
                );
                if matches!(m, Matcher::Fuzzy(_)) {
                    rest.push(m);
                }
            }
            other => rest.push(other),
        }
    }
    let texts = (!rest.is_empty()).then(|| record_texts_sql(r));
    // (record, total distance, the driver's share of it)
    let mut found: Vec<(i64, u32, u32)> = Vec::new();
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut rejected: std::collections::HashSet<i64> = std::collections::HashSet::new();
    let distances = &drives[driver].distances;
    rows(conn, &sql, &params, |row| {
        let (id, word): (i64, String) = (row.get(0)?, row.get(1)?);
        let own = distances.get(&word).copied().unwrap_or(0);
        if let Some(&at) = seen.get(&id) {
            // Another of its words admitted by the driver: keep the closest.
            let (_, total, share) = &mut found[at];
            if own < *share {
                *total = *total - *share + own;
                *share = own;
            }
            return Ok(true);
        }
        if rejected.contains(&id) {
            return Ok(true);
        }
        let mut total = own;
        if let Some(sql) = &texts {
            let words = record_words(conn, sql, id)?;
            for m in &rest {
                match words.iter().filter_map(|w| m.distance(w)).min() {
                    Some(d) => total += d,
                    None => {
                        rejected.insert(id);
                        return Ok(true);
                    }
                }
            }
        }
        seen.insert(id, found.len());
        found.push((id, total, own));
        Ok(found.len() < TIER_CAP)
    })?;
    Ok(found
        .into_iter()
        .map(|(id, total, _)| (id, total))
        .collect())
}

/// The SQL condition on `search_word w` for a matcher's postings, or
/// `None` when no vocabulary word can match.
fn drive(conn: &Connection, m: &Matcher) -> rusqlite::Result<Option<Drive>> {
    let plain = |condition: &str, params: Vec<SqlValue>| {
        Some(Drive {
            condition: condition.to_string(),
            params,
            distances: HashMap::new(),
        })
    };
    Ok(match m {
        Matcher::Exact(w) => plain("w.word = ?1", vec![text(w)]),
        Matcher::Prefix(p) => plain(
            "w.word >= ?1 AND w.word < ?2",
            vec![text(p), text(&upper(p))],
        ),
        Matcher::Contains(s) => {
            let phrase = format!("\"{}\"", s.replace('"', "\"\""));
            let mut words: Vec<String> = Vec::new();
            rows(
                conn,
                &format!(
                    "SELECT word FROM search_vocab_trigram WHERE search_vocab_trigram MATCH ?1 LIMIT {CONTAINS_WORDS}"
                ),
                &[text(&phrase)],
                |r| {
                    words.push(r.get(0)?);
                    Ok(true)
                },
            )?;
            any_of(words.into_iter().map(|w| (w, 0)).collect())
        }
        Matcher::Fuzzy(w) => {
            let mut words = fuzzy::neighbours(conn, w)?;
            // The word itself: in a query of several, one typo is enough.
            words.push((w.clone(), 0));
            any_of(words)
        }
    })
}

/// Postings of any of `words` (with their distances).
fn any_of(words: Vec<(String, u32)>) -> Option<Drive> {
    if words.is_empty() {
        return None;
    }
    let list: Vec<&str> = words.iter().map(|(w, _)| w.as_str()).collect();
    let json = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
    Some(Drive {
        condition: "w.word IN (SELECT value FROM json_each(?1))".into(),
        params: vec![SqlValue::Text(json)],
        distances: words.into_iter().collect(),
    })
}

/// Postings of a driver, counted up to `COUNT_BOUND`.
fn count_postings(conn: &Connection, code: i64, d: &Drive) -> rusqlite::Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM search_word w WHERE {} AND w.registry = {code} LIMIT {COUNT_BOUND})",
        d.condition
    );
    let mut n = 0;
    rows(conn, &sql, &d.params, |r| {
        n = r.get(0)?;
        Ok(false)
    })?;
    Ok(n)
}

/// The searchable text of one record (what `index_text` indexed):
/// name or key, description, synonyms.
fn record_texts_sql(r: Registry) -> String {
    let table = r.table();
    match r {
        Registry::Label | Registry::Feature => format!(
            "SELECT t.name, t.description,
                    (SELECT group_concat(synonym, ' ') FROM synonym WHERE registry = '{}' AND record_id = t.id)
             FROM {table} t WHERE t.id = ?1",
            r.tag()
        ),
        Registry::Artifact | Registry::Collection => {
            format!("SELECT t.key, t.description, NULL FROM {table} t WHERE t.id = ?1")
        }
        Registry::Schema => {
            format!("SELECT t.name, t.description, NULL FROM {table} t WHERE t.id = ?1")
        }
    }
}

/// The folded words of one record.
fn record_words(conn: &Connection, sql: &str, id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let texts: [Option<String>; 3] =
        stmt.query_row([id], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]))?;
    let joined: Vec<String> = texts.into_iter().flatten().collect();
    Ok(index::words(&joined.join(" ")))
}
