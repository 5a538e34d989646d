//! Metadata registries: labels, features and their values on artifacts,
//! schemas (feature sets) and collections.
//!
//! Every registry with names guards against duplicates and typos the same
//! way: an exactly equal name (after case folding and whitespace
//! collapsing) is the existing record, returned with a notice; a name one
//! edit away from an existing one is refused unless forced, with a "did you
//! mean". Each call is one transaction.

pub mod annotate;
pub mod collection;
pub mod dtype;
pub mod feature;
pub mod label;
pub mod schema;

use rusqlite::Connection;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::search::one_edit_variants;
use crate::similar::fold;

/// A record created by a call, or the existing one it turned out to be.
#[derive(Clone, Debug, Serialize)]
pub struct Added<T> {
    #[serde(flatten)]
    pub record: T,
    /// False when an existing record was returned.
    pub created: bool,
    pub notices: Vec<String>,
}

/// Checks a name for a named record and returns it trimmed.
pub(crate) fn clean_name(kind: &str, name: &str) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "a {kind} name cannot be empty"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "{kind} name {name:?} contains a control character"
        )));
    }
    if trimmed.chars().count() > 512 {
        return Err(Error::InvalidArgument(format!(
            "{kind} name is longer than 512 characters"
        )));
    }
    Ok(trimmed.to_string())
}

/// Existing names one edit away from `name` in `table` (looked up through
/// the folded-name index: every one-edit variant is probed, no scan).
/// `scope` restricts the candidates (`"type = ?2"`-style SQL on the table).
pub(crate) fn near_names(
    conn: &Connection,
    table: &str,
    scope_sql: &str,
    scope_arg: Option<&str>,
    name: &str,
) -> rusqlite::Result<Vec<String>> {
    let folded = fold(name);
    let sql = format!("SELECT name FROM {table} WHERE name_fold = ?1 {scope_sql} LIMIT 1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = Vec::new();
    for candidate in one_edit_variants(&folded) {
        // Series members ("plate1", "plate2") are not typos of each other.
        if !crate::similar::is_near(&folded, &candidate) {
            continue;
        }
        let found: Option<String> = match scope_arg {
            Some(arg) => stmt
                .query_row(rusqlite::params![candidate, arg], |r| r.get(0))
                .ok(),
            None => stmt.query_row([&candidate], |r| r.get(0)).ok(),
        };
        if let Some(n) = found {
            out.push(n);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Replaces a record's synonyms and their search postings.
pub(crate) fn set_synonyms(
    conn: &Connection,
    registry: &str,
    record_id: i64,
    synonyms: &[String],
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM synonym WHERE registry = ?1 AND record_id = ?2")?
        .execute(rusqlite::params![registry, record_id])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO synonym (registry, record_id, synonym, fold) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for s in synonyms {
        let s = s.trim();
        if !s.is_empty() {
            insert.execute(rusqlite::params![registry, record_id, s, fold(s)])?;
            crate::search::index::index_text(conn, registry, record_id, "synonym", s)?;
        }
    }
    Ok(())
}

/// A record's synonyms, in the order they were given.
pub(crate) fn synonyms_of(
    conn: &Connection,
    registry: &str,
    record_id: i64,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT synonym FROM synonym WHERE registry = ?1 AND record_id = ?2 ORDER BY synonym",
    )?;
    stmt.query_map(rusqlite::params![registry, record_id], |r| r.get(0))?
        .collect()
}

/// Splits a comma-separated list argument, trimming the items.
pub fn split_list(arg: &str) -> Vec<String> {
    arg.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
