//! Folder manifests. A folder artifact's identity is the BLAKE3 of its
//! manifest: one line per file, `<hash> <size> <relative/path>\n`, sorted by
//! path (bytewise, `/` as separator). Equal trees give equal hashes on
//! every platform, and the manifest is plain text anyone can check.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::hash::{ContentHash, hash_file};
use crate::parallel::parallel_map;
use crate::paths::DOT_DIR;
use crate::progress::Progress;
use crate::suffix::suffix_of;

/// One file of a folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Path relative to the folder, `/`-separated.
    pub path: String,
    pub hash: ContentHash,
    pub size: u64,
    pub suffix: String,
}

/// A folder's files, sorted by path, with the manifest's own hash.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub entries: Vec<Entry>,
}

impl Manifest {
    pub fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Manifest { entries }
    }

    /// The canonical text whose hash is the folder's hash.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.entries.len() * 100);
        for e in &self.entries {
            out.push_str(&e.hash.to_hex());
            out.push(' ');
            out.push_str(&e.size.to_string());
            out.push(' ');
            out.push_str(&e.path);
            out.push('\n');
        }
        out
    }

    pub fn hash(&self) -> ContentHash {
        ContentHash::of(self.to_text().as_bytes())
    }

    /// Total bytes of all files.
    pub fn size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Parses the canonical text back (used when materializing a folder).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |line: &str| Error::InvalidArgument(format!("malformed manifest line {line:?}"));
        let mut entries = Vec::new();
        for line in text.lines() {
            let mut parts = line.splitn(3, ' ');
            let (Some(hash), Some(size), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(line));
            };
            entries.push(Entry {
                hash: hash.parse().map_err(|_| bad(line))?,
                size: size.parse().map_err(|_| bad(line))?,
                suffix: suffix_of(path),
                path: path.to_string(),
            });
        }
        Ok(Manifest::new(entries))
    }
}

/// A folder's files as found on disk.
#[derive(Debug, Default)]
pub struct Listing {
    /// (relative `/`-path, absolute path, size), sorted by relative path.
    pub files: Vec<(String, PathBuf, u64)>,
    /// `.labmesh/` directories left out: labmesh's own files (databases,
    /// a node's private key) are never content.
    pub skipped: Vec<PathBuf>,
}

/// Lists a folder's files (recursively) with their sizes, sorted by path.
pub fn list_files(root: &Path) -> Result<Listing> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("reading folder", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("reading folder", &dir, e))?;
            let path = entry.path();
            // Follow links to files; refuse links to folders (cycles, surprises).
            let meta = std::fs::metadata(&path).map_err(|e| Error::io("reading", &path, e))?;
            if meta.is_dir() {
                if entry.file_type().map(|t| t.is_symlink()).unwrap_or(false) {
                    return Err(Error::InvalidArgument(format!(
                        "{} is a link to a folder; labmesh saves files, not links to folders \
                         (copy the target in, or remove the link)",
                        path.display()
                    )));
                }
                if entry.file_name() == DOT_DIR {
                    skipped.push(path);
                    continue;
                }
                stack.push(path);
            } else if meta.is_file() {
                if entry.file_type().map(|t| t.is_symlink()).unwrap_or(false) {
                    refuse_link_into_dot_dir(&path)?;
                }
                let rel = relative_slash_path(root, &path)?;
                out.push((rel, path, meta.len()));
            } else {
                return Err(Error::UnsupportedFileType { path });
            }
        }
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    skipped.sort();
    Ok(Listing {
        files: out,
        skipped,
    })
}

/// Whether a path lies inside a `.labmesh/` directory (any instance's).
pub fn is_inside_dot_dir(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == DOT_DIR)
}

/// A link to a file inside a `.labmesh/` directory would smuggle labmesh's
/// own files (a node's private key) into content.
fn refuse_link_into_dot_dir(link: &Path) -> Result<()> {
    let target = std::fs::canonicalize(link).map_err(|e| Error::io("reading", link, e))?;
    if is_inside_dot_dir(&target) {
        return Err(Error::InvalidArgument(format!(
            "{} links to {}, inside a .labmesh/ directory: labmesh's own files (its database, \
             the node's private key) are never saved\n  hint: remove the link, or copy what you need out first",
            link.display(),
            target.display()
        )));
    }
    Ok(())
}

fn relative_slash_path(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut parts = Vec::new();
    for c in rel.components() {
        let s = c.as_os_str().to_str().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{} is not valid UTF-8; rename it to save the folder",
                path.display()
            ))
        })?;
        if s.contains('\n') {
            return Err(Error::InvalidArgument(format!(
                "{} has a newline in its name; rename it to save the folder",
                path.display()
            )));
        }
        parts.push(s);
    }
    Ok(parts.join("/"))
}

/// A folder hashed into its manifest.
#[derive(Debug)]
pub struct Scanned {
    pub manifest: Manifest,
    /// The files on disk, in manifest order.
    pub files: Vec<PathBuf>,
    /// `.labmesh/` directories left out (see `Listing::skipped`).
    pub skipped: Vec<PathBuf>,
}

/// Hashes every file of a folder (on all cores) into its manifest.
pub fn build(root: &Path, progress: &dyn Progress) -> Result<Scanned> {
    let Listing { files, skipped } = list_files(root)?;
    if files.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "folder {} has no files; there is nothing to save",
            root.display()
        )));
    }
    progress.start("hashing", files.iter().map(|f| f.2).sum());
    let hashed = parallel_map(&files, |(rel, path, _)| {
        let (hash, size) = hash_file(path, progress)?;
        Ok(Entry {
            path: rel.clone(),
            hash,
            size,
            suffix: suffix_of(rel),
        })
    })?;
    progress.finish();
    let paths = files.into_iter().map(|f| f.1).collect();
    Ok(Scanned {
        manifest: Manifest::new(hashed),
        files: paths,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn manifest_is_sorted_canonical_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/x.csv"), "1,2\n").unwrap();
        std::fs::write(dir.path().join("a.txt"), "hello").unwrap();
        let m = build(dir.path(), &NoProgress).unwrap().manifest;
        let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.txt", "b/c/x.csv"]);
        let text = m.to_text();
        assert_eq!(
            text.lines().next().unwrap(),
            format!("{} 5 a.txt", ContentHash::of(b"hello"))
        );
        let parsed = Manifest::parse(&text).unwrap();
        assert_eq!(parsed.hash(), m.hash());
        assert_eq!(parsed.entries[1].suffix, ".csv");
    }

    #[test]
    fn same_tree_same_hash_different_content_different_hash() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [&a, &b] {
            std::fs::write(d.path().join("f"), "same").unwrap();
        }
        let ha = build(a.path(), &NoProgress).unwrap().manifest.hash();
        assert_eq!(ha, build(b.path(), &NoProgress).unwrap().manifest.hash());
        std::fs::write(b.path().join("f"), "other").unwrap();
        assert_ne!(ha, build(b.path(), &NoProgress).unwrap().manifest.hash());
    }

    #[test]
    fn dot_labmesh_directories_are_skipped_and_links_into_them_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lab/.labmesh")).unwrap();
        std::fs::write(dir.path().join("lab/.labmesh/node.key"), "PRIVATE").unwrap();
        std::fs::write(dir.path().join("lab/data.csv"), "1").unwrap();
        let scanned = build(dir.path(), &NoProgress).unwrap();
        let paths: Vec<_> = scanned
            .manifest
            .entries
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(paths, ["lab/data.csv"]);
        assert_eq!(scanned.skipped, [dir.path().join("lab/.labmesh")]);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(
                dir.path().join("lab/.labmesh/node.key"),
                dir.path().join("lab/key.pem"),
            )
            .unwrap();
            let err = build(dir.path(), &NoProgress).unwrap_err().to_string();
            assert!(err.contains("key.pem") && err.contains(".labmesh"), "{err}");
        }
    }

    #[test]
    fn empty_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(dir.path(), &NoProgress).unwrap_err();
        assert!(err.to_string().contains("no files"), "{err}");
    }
}
