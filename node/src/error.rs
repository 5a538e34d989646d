//! The library's error type. Every message says what happened and, where
//! there is one, what to do about it: the CLI prints them as they are.

use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "not inside a labmesh instance: no .labmesh/ in {} or any parent\n  \
         hint: run `labmesh init <dir>` to create one, or pass --instance DIR / set LABMESH_INSTANCE",
        searched.display()
    )]
    NoInstanceFound { searched: PathBuf },

    #[error(
        "{} is not a labmesh instance: {} is missing\n  \
         hint: check the path, or run `labmesh init {}` to create one",
        path.display(), missing.display(), path.display()
    )]
    NotAnInstance { path: PathBuf, missing: PathBuf },

    #[error(
        "{} is already a labmesh instance\n  hint: use it as it is (`labmesh info`), or choose another directory",
        path.display()
    )]
    AlreadyAnInstance { path: PathBuf },

    #[error(
        "the instance at {} has schema version {found}, but this labmesh knows versions up to {supported}\n  \
         hint: it was written by a newer labmesh; upgrade labmesh to open it",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no such file or directory: {}\n  hint: check the path (it is resolved against the current directory)", path.display())]
    PathNotFound { path: PathBuf },

    #[error("{} is neither a regular file nor a folder; only files and folders can be saved", path.display())]
    UnsupportedFileType { path: PathBuf },

    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },

    #[error(
        "key {key:?} ends in {key_suffix:?} but the {what} ends in {path_suffix:?}\n  \
         hint: use a key ending in {path_suffix:?}, e.g. {suggestion:?}"
    )]
    KeySuffixMismatch {
        key: String,
        key_suffix: String,
        path_suffix: String,
        what: &'static str,
        suggestion: String,
    },

    #[error("no artifact matches {query:?}{}", did_you_mean(suggestion))]
    ArtifactNotFound {
        query: String,
        suggestion: Option<String>,
    },

    #[error(
        "{query:?} is ambiguous: it matches {} artifacts ({})\n  hint: give more characters of the uid",
        candidates.len(), candidates.join(", ")
    )]
    AmbiguousUid {
        query: String,
        candidates: Vec<String>,
    },

    #[error("artifact {uid} is in the trash\n  hint: `labmesh restore {uid}` brings it back")]
    Trashed { uid: String },

    #[error("artifact {uid} is not in the trash; nothing to restore")]
    NotTrashed { uid: String },

    #[error(
        "content of artifact {uid} is corrupted at {location}: expected BLAKE3 {expected} ({expected_size} bytes), \
         found {actual} ({actual_size} bytes)\n  \
         hint: save the original file again to repair the object (same content heals it), \
         or `labmesh delete {uid} --permanent` if it is lost"
    )]
    Corrupted {
        uid: String,
        location: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },

    #[error(
        "content of artifact {uid} is missing from storage at {location}\n  \
         hint: save the original file again to restore it, or `labmesh delete {uid} --permanent`"
    )]
    ContentMissing { uid: String, location: String },

    #[error("invalid storage location {url:?}: {reason}")]
    InvalidStorage { url: String, reason: String },

    #[error("storage {url}: {source}")]
    Storage {
        url: String,
        #[source]
        source: object_store::Error,
    },

    #[error(
        "the revision target {query:?} has no key and no content in common with the new file; {reason}"
    )]
    InvalidRevision { query: String, reason: String },

    #[error("invalid config {}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },

    #[error("node key: {0}")]
    Key(#[from] labmesh_crypto::KeyError),

    #[error("token: {0}")]
    Token(#[from] labmesh_crypto::TokenError),

    #[error("database {}: {source}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "{} changed while it was being saved, so nothing was saved\n  \
         hint: save it again when it is no longer being written",
        path.display()
    )]
    ChangedWhileSaving { path: PathBuf },

    #[error(
        "{} is empty or damaged ({reason}), so this instance cannot be opened\n  \
         hint: restore instance.db from a backup; labmesh does not rebuild it over your records",
        path.display()
    )]
    DamagedDatabase { path: PathBuf, reason: String },

    #[error("{0}")]
    InvalidArgument(String),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("\n  did you mean {s:?}?"),
        None => "\n  hint: `labmesh ls` lists artifacts; a uid prefix of 4+ characters or a key both work".into(),
    }
}

impl Error {
    /// An I/O error annotated with what we were doing and to which path.
    pub(crate) fn io(what: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        let path = path.as_ref().to_path_buf();
        if source.kind() == std::io::ErrorKind::NotFound && what == "reading" {
            return Error::PathNotFound { path };
        }
        Error::Io { what, path, source }
    }
}

/// Attaches the database path to rusqlite errors.
pub(crate) trait DbContext<T> {
    fn db(self, path: &Path) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, rusqlite::Error> {
    fn db(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Database {
            path: path.to_path_buf(),
            source,
        })
    }
}
