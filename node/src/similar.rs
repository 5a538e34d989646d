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

/// Lowercase base letters of U+0100..=U+017F (Latin Extended-A); `#`
/// marks the ligatures, which fold to two letters.
const LATIN_EXTENDED_A: &str = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii##jjkkkllllllllllnnnnnnnnnoooooo##rrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs";

/// Lowercase base letters of U+00E0..=U+00FF (lowercase Latin-1).
const LATIN_1_LOWER: &str = "aaaaaa#ceeeeiiiidnooooo÷ouuuuy#y";

/// Folds accents away, for search: "Épithélium" -> "Epithelium", "Straße"
/// -> "Strasse". Latin letters with diacritics become their base letters
/// (uppercase ones lowercase); combining marks are dropped.
pub fn strip_accents(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let code = c as u32;
        match code {
            0x0300..=0x036F => {}
            0x00C0..=0x00DE | 0x00E0..=0x00FF if code != 0xD7 => {
                let lower = if code < 0xE0 { code + 0x20 } else { code };
                match lower {
                    0xE6 => out.push_str("ae"),
                    0xFE => out.push_str("th"),
                    _ => out.push(
                        LATIN_1_LOWER
                            .chars()
                            .nth((lower - 0xE0) as usize)
                            .unwrap_or(c),
                    ),
                }
            }
            0x00DF => out.push_str("ss"),
            0x0132 | 0x0133 => out.push_str("ij"),
            0x0152 | 0x0153 => out.push_str("oe"),
            0x0100..=0x017F => out.push(
                LATIN_EXTENDED_A
                    .chars()
                    .nth((code - 0x100) as usize)
                    .unwrap_or(c),
            ),
            _ => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
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
    fn accents_fold_to_base_letters() {
        assert_eq!(strip_accents("Épithélium"), "epithelium");
        assert_eq!(strip_accents("épithélium"), "epithelium");
        assert_eq!(strip_accents("e\u{301}pithe\u{301}lium"), "epithelium");
        assert_eq!(strip_accents("Straße Œuvre Łódź"), "Strasse oeuvre lodz");
        assert_eq!(strip_accents("naïve × café"), "naive × cafe");
        assert_eq!(strip_accents("β-cell"), "β-cell");
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
