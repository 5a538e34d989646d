//! File suffixes and artifact keys.
//!
//! The suffix travels with the content (objects are stored as
//! `<hash><suffix>`), so tools that dispatch on extensions keep working on
//! cached paths. Compound suffixes such as `.tar.gz` or `.anndata.zarr` are
//! kept whole.

use crate::error::{Error, Result};

/// Compression or container extensions that belong to the extension before them.
const OUTER: &[&str] = &["gz", "bz2", "xz", "zst", "zip", "lz4", "br"];
/// Second-level extensions that qualify the one after them (`x.anndata.zarr`).
const QUALIFIERS: &[&str] = &[
    "anndata", "ome", "tar", "nii", "vcf", "fastq", "fq", "sam", "bed", "csv", "tsv", "json",
];

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// The suffix of a file name or `/`-separated path, with its leading dot
/// (`""` when there is none).
pub fn suffix_of(path: &str) -> String {
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    // A leading dot marks a hidden file, not a suffix (`.bashrc`).
    let body = name.strip_prefix('.').unwrap_or(name);
    let parts: Vec<&str> = body.split('.').collect();
    if parts.len() < 2 {
        return String::new();
    }
    let last = parts[parts.len() - 1];
    if last.is_empty()
        || !last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return String::new();
    }
    let mut take = 1;
    if parts.len() >= 3 {
        let prev = parts[parts.len() - 2].to_ascii_lowercase();
        if OUTER.contains(&last.to_ascii_lowercase().as_str())
            || QUALIFIERS.contains(&prev.as_str())
        {
            take = 2;
        }
    }
    format!(".{}", parts[parts.len() - take..].join("."))
}

/// Checks that a key is a clean relative path: no leading `/`, no `.` or
/// `..` segments, no empty segments, no control characters.
pub fn validate_key(key: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        })
    };
    if key.is_empty() {
        return invalid("it is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return invalid(&format!("it is longer than {MAX_KEY_LEN} bytes"));
    }
    if key.starts_with('/') {
        return invalid("keys are relative paths; drop the leading '/'");
    }
    if key.chars().any(|c| c.is_control()) {
        return invalid("it contains a control character (newline, tab, ...)");
    }
    if key.contains('\\') {
        return invalid("use '/' to separate folders, not '\\'");
    }
    for segment in key.trim_end_matches('/').split('/') {
        match segment {
            "" => return invalid("it has an empty path segment ('//')"),
            "." | ".." => return invalid("'.' and '..' segments are not allowed"),
            s if s.trim() != s => return invalid("a path segment starts or ends with whitespace"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks that `key` carries the same suffix as the content it names.
pub fn check_key_suffix(key: &str, path_suffix: &str, is_folder: bool) -> Result<()> {
    let key_suffix = suffix_of(key);
    if key_suffix.eq_ignore_ascii_case(path_suffix) {
        return Ok(());
    }
    let stem = key.trim_end_matches('/');
    let stem = stem.strip_suffix(key_suffix.as_str()).unwrap_or(stem);
    Err(Error::KeySuffixMismatch {
        key: key.to_string(),
        key_suffix: if key_suffix.is_empty() {
            "(no suffix)".into()
        } else {
            key_suffix
        },
        path_suffix: if path_suffix.is_empty() {
            "(no suffix)".into()
        } else {
            path_suffix.to_string()
        },
        what: if is_folder { "folder" } else { "file" },
        suggestion: format!("{stem}{path_suffix}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        for (path, want) in [
            ("plate1.parquet", ".parquet"),
            ("raw/plate1.parquet", ".parquet"),
            ("a/b.tar.gz", ".tar.gz"),
            ("pbmc.anndata.zarr", ".anndata.zarr"),
            ("pbmc.anndata.zarr/", ".anndata.zarr"),
            ("run42", ""),
            (".bashrc", ""),
            ("reads.fastq.gz", ".fastq.gz"),
            ("v1.2.csv", ".csv"),
            ("notes.", ""),
            ("my data.h5ad", ".h5ad"),
        ] {
            assert_eq!(suffix_of(path), want, "{path}");
        }
    }

    #[test]
    fn keys_are_clean_relative_paths() {
        assert!(validate_key("raw/plate1.parquet").is_ok());
        assert!(validate_key("run42/").is_ok());
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a\nb", "a\\b", " a/b"] {
            assert!(validate_key(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn suffix_mismatch_suggests_a_fix() {
        let err = check_key_suffix("raw/plate1.csv", ".parquet", false).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("raw/plate1.parquet"), "{msg}");
        assert!(check_key_suffix("raw/plate1.PARQUET", ".parquet", false).is_ok());
    }
}
