//! "Did you mean …?": near-duplicate detection for names and keys.
//!
//! Two strings are near-duplicates when they are equal after case folding
//! and whitespace trimming, or a small edit apart (Damerau–Levenshtein,
//! scaled to the length, so "livr" ~ "liver" but "cat" !~ "dog").

/// Case-folded, trimmed, inner whitespace collapsed.
pub fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Largest edit distance still considered a typo for a string of `len` chars.
pub fn max_typo_distance(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        8..=15 => 2,
        _ => 3,
    }
}

/// Whether `a` and `b` are probably the same name typed differently.
/// Names that differ only in their digits ("plate1", "plate2") are members
/// of a series, not typos.
pub fn is_near(a: &str, b: &str) -> bool {
    let (fa, fb) = (fold(a), fold(b));
    if fa == fb {
        return true;
    }
    let no_digits = |s: &str| {
        s.chars()
            .filter(|c| !c.is_ascii_digit())
            .collect::<String>()
    };
    if no_digits(&fa) == no_digits(&fb) {
        return false;
    }
    let len = fa.chars().count().min(fb.chars().count());
    let max = max_typo_distance(len);
    max > 0 && strsim::damerau_levenshtein(&fa, &fb) <= max
}

/// The candidate closest to `query` that is a near-duplicate of it, if any
/// (an exact match is not a suggestion).
pub fn closest<'a>(query: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let fq = fold(query);
    candidates
        .into_iter()
        .filter(|c| *c != query && is_near(query, c))
        .min_by_key(|c| (strsim::damerau_levenshtein(&fq, &fold(c)), c.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_case_and_whitespace_are_near() {
        assert!(is_near("liver", "Liver "));
        assert!(is_near("livr", "liver"));
        assert!(is_near("lvier", "liver"));
        assert!(is_near("raw/plate1.parqet", "raw/plate1.parquet"));
        assert!(!is_near("raw/plate1.parquet", "raw/plate2.parquet"));
        assert!(!is_near("sample1", "sample12"));
        assert!(!is_near("cat", "dog"));
        assert!(!is_near("kidney", "liver"));
    }

    #[test]
    fn closest_picks_the_nearest_and_skips_exact() {
        let keys = ["raw/plate1.parquet", "raw/plate12.parquet", "other.csv"];
        assert_eq!(
            closest("raw/plate1.parqet", keys),
            Some("raw/plate1.parquet")
        );
        assert_eq!(closest("raw/plate1.parquet", keys), None);
        assert_eq!(closest("zzz", keys), None);
    }
}
