//! Typo tolerance: the vocabulary words within one or two edits of a
//! query word.
//!
//! One edit is found by probing the vocabulary with every one-edit variant
//! of the word (a few hundred index look-ups). Two edits, allowed for
//! words of 8 characters or more (`max_typo_distance`), would be tens of
//! thousands of variants, so candidates come from the vocabulary ranges
//! that share the word's first letters (also with the first two swapped,
//! or the first or second dropped), checked by edit distance: a typo in
//! the first two letters and a second one elsewhere is not found.

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use crate::similar::max_typo_distance;

/// Words shorter than this are not corrected (too many neighbours).
pub const MIN_FUZZY_LEN: usize = 3;

/// The most edits tolerated in `word` (0: too short to correct).
pub fn max_edits(word: &str) -> u32 {
    let n = word.chars().count();
    if n < MIN_FUZZY_LEN {
        0
    } else {
        max_typo_distance(n).clamp(1, 2) as u32
    }
}

/// Edits between `a` and `b` when within `max`, else `None`.
pub fn within(a: &str, b: &str, max: u32) -> Option<u32> {
    let (la, lb) = (a.chars().count(), b.chars().count());
    if la.abs_diff(lb) > max as usize {
        return None;
    }
    let d = strsim::damerau_levenshtein(a, b) as u32;
    (d <= max).then_some(d)
}

/// Vocabulary words within `max_edits(word)` of `word` (not `word`
/// itself), with their distance.
pub fn neighbours(conn: &Connection, word: &str) -> rusqlite::Result<Vec<(String, u32)>> {
    let max = max_edits(word);
    if max == 0 {
        return Ok(Vec::new());
    }
    let mut out: Vec<(String, u32)> = Vec::new();
    {
        let sql = "SELECT 1 FROM search_vocab WHERE word = ?1";
        crate::search::explain::record(conn, sql, &[SqlValue::Text(word.into())]);
        let mut probe = conn.prepare_cached(sql)?;
        for candidate in one_edit_variants(word) {
            if probe.exists([&candidate])? {
                let d = strsim::damerau_levenshtein(word, &candidate) as u32;
                out.push((candidate, d));
            }
        }
    }
    if max >= 2 {
        let chars: Vec<char> = word.chars().collect();
        let starts: [String; 4] = [
            [chars[0], chars[1]].iter().collect(),
            [chars[0], chars[2]].iter().collect(),
            [chars[1], chars[0]].iter().collect(),
            [chars[1], chars[2]].iter().collect(),
        ];
        let sql = "SELECT word FROM search_vocab WHERE word >= ?1 AND word < ?2
             AND length(word) BETWEEN ?3 AND ?4";
        let n = chars.len() as i64;
        let example = [
            SqlValue::Text(starts[0].clone()),
            SqlValue::Text(format!("{}\u{10FFFF}", starts[0])),
            SqlValue::Integer(n - 2),
            SqlValue::Integer(n + 2),
        ];
        crate::search::explain::record(conn, sql, &example);
        let mut range = conn.prepare_cached(sql)?;
        for start in starts.iter() {
            let upper = format!("{start}\u{10FFFF}");
            let words = range.query_map(rusqlite::params![start, upper, n - 2, n + 2], |r| {
                r.get::<_, String>(0)
            })?;
            for w in words {
                let w = w?;
                if w == word || out.iter().any(|(o, _)| *o == w) {
                    continue;
                }
                if let Some(d) = within(word, &w, 2) {
                    out.push((w, d));
                }
            }
        }
    }
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    Ok(out)
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
    use super::*;

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

    #[test]
    fn long_words_tolerate_two_edits() {
        assert_eq!(max_edits("ab"), 0);
        assert_eq!(max_edits("livr"), 1);
        assert_eq!(max_edits("hepatocyte"), 2);
        assert_eq!(within("hepatocyte", "hepatocytte", 2), Some(1));
        assert_eq!(within("hepatocyte", "hepatocite", 2), Some(1));
        assert_eq!(within("hepatocyte", "hepatcite", 2), Some(2));
        assert_eq!(within("hepatocyte", "hepa", 2), None);
    }
}
