//! Keeping the search index in step with the registries.
//!
//! Searchable text is split into folded words. `search_word` maps each word
//! to the records that contain it; `search_vocab` holds every distinct word
//! once, with a trigram index over it for substring matches. Registries
//! call `index_text` / `unindex` in the same transaction as their rows.

use rusqlite::{Connection, params};

use crate::similar::strip_accents;

/// Splits text into its distinct folded words, sorted: lowercase runs of
/// letters and digits with accents folded away ("Liver_Tissue-2" ->
/// "2", "liver", "tissue"; "Épithélium" -> "epithelium").
pub fn words(text: &str) -> Vec<String> {
    let mut out = words_in_order(text);
    out.sort_unstable();
    out
}

/// The distinct folded words of `text` in the order they first appear
/// (search treats the last one typed as a prefix).
pub fn words_in_order(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let folded = strip_accents(&lower);
    // Names have a few words: a linear check; long descriptions: a set.
    let mut kept: Vec<&str> = Vec::new();
    let mut seen: Option<std::collections::HashSet<&str>> = None;
    for w in folded.split(|c: char| !c.is_alphanumeric()) {
        if w.is_empty() {
            continue;
        }
        let new = match &mut seen {
            Some(set) => set.insert(w),
            None => !kept.contains(&w),
        };
        if new {
            kept.push(w);
            if seen.is_none() && kept.len() > 16 {
                seen = Some(kept.iter().copied().collect());
            }
        }
    }
    kept.into_iter().map(str::to_string).collect()
}

/// The code of a registry tag in `search_word`.
pub fn registry_code(tag: &str) -> i64 {
    match tag {
        "artifact" => 1,
        "collection" => 2,
        "ulabel" => 3,
        "feature" => 4,
        "schema" => 5,
        _ => 0,
    }
}

/// The code of a field in `search_word`.
pub fn field_code(field: &str) -> i64 {
    match field {
        "name" => 1,
        "synonym" => 2,
        "key" => 3,
        "description" => 4,
        _ => 0,
    }
}

/// Whether a word belongs in the vocabulary (fuzzy and substring matches).
/// Numbers do not: "sample 123456" should not make 123456 a word to
/// correct typos against, and lab names are full of serial numbers.
fn in_vocabulary(word: &str) -> bool {
    !word.bytes().all(|b| b.is_ascii_digit())
}

/// Adds the words of `text` as `field` of a record.
pub fn index_text(
    conn: &Connection,
    registry: &str,
    record_id: i64,
    field: &str,
    text: &str,
) -> rusqlite::Result<()> {
    let mut posting = conn.prepare_cached(
        "INSERT OR IGNORE INTO search_word (word, registry, record_id, field) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for word in words(text) {
        posting.execute(params![
            word,
            registry_code(registry),
            record_id,
            field_code(field)
        ])?;
        add_to_vocabulary(conn, &word)?;
    }
    Ok(())
}

/// Records a word in the vocabulary; new words of three or more
/// characters also get trigrams (shorter ones are found by exact, word and
/// prefix matches).
fn add_to_vocabulary(conn: &Connection, word: &str) -> rusqlite::Result<()> {
    if !in_vocabulary(word) {
        return Ok(());
    }
    let mut vocab = conn.prepare_cached("INSERT OR IGNORE INTO search_vocab (word) VALUES (?1)")?;
    if vocab.execute([word])? == 1 && word.chars().count() >= 3 {
        conn.prepare_cached("INSERT INTO search_vocab_trigram (rowid, word) VALUES (?1, ?2)")?
            .execute(params![conn.last_insert_rowid(), word])?;
    }
    Ok(())
}

/// Indexes many (record id, field, text) entries of one registry: the
/// postings are sorted first, so the B-tree fills in order instead of at
/// random places — several times faster for bulk loads.
pub fn index_bulk(
    conn: &Connection,
    registry: &str,
    entries: &[(i64, &str, &str)],
) -> rusqlite::Result<()> {
    let mut postings: Vec<(String, i64, &str)> = Vec::with_capacity(entries.len() * 3);
    for (id, field, text) in entries {
        postings.extend(words(text).into_iter().map(|w| (w, *id, *field)));
    }
    postings.sort_unstable();
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO search_word (word, registry, record_id, field) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let code = registry_code(registry);
    for (word, id, field) in &postings {
        insert.execute(params![word, code, id, field_code(field)])?;
    }
    postings.dedup_by(|a, b| a.0 == b.0);
    for (word, ..) in &postings {
        add_to_vocabulary(conn, word)?;
    }
    Ok(())
}

/// Removes the postings that `texts` (field, text) gave a record. Its
/// vocabulary words stay: a word no record uses any more finds nothing.
pub fn unindex(
    conn: &Connection,
    registry: &str,
    record_id: i64,
    texts: &[(&str, &str)],
) -> rusqlite::Result<()> {
    let mut delete = conn.prepare_cached(
        "DELETE FROM search_word WHERE word = ?1 AND registry = ?2 AND record_id = ?3 AND field = ?4",
    )?;
    for (field, text) in texts {
        for word in words(text) {
            delete.execute(params![
                word,
                registry_code(registry),
                record_id,
                field_code(field)
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{words, words_in_order};

    #[test]
    fn words_are_folded_and_distinct() {
        assert_eq!(words("Liver_Tissue-2 liver"), ["2", "liver", "tissue"]);
        assert_eq!(words("raw/plate1.parquet"), ["parquet", "plate1", "raw"]);
        assert_eq!(words("  "), Vec::<String>::new());
        assert_eq!(words("Épithélium"), ["epithelium"]);
        assert_eq!(words_in_order("cell Alpha cell"), ["cell", "alpha"]);
    }
}
