//! The Artifact registry: files and folders with their content reference,
//! key, versions and provenance fields.

mod content;
mod insert;
mod lifecycle;
mod save;
mod source;

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::hash::ContentHash;
use crate::instance::Instance;
use crate::similar;
use crate::uid::{self, MIN_PREFIX_LEN, STEM_LEN, VERSIONED_UID_LEN};

pub use content::CachedContent;
pub(crate) use insert::refresh_latest as refresh_family;
pub use lifecycle::{Deleted, GcOptions, GcReport};
pub use save::{SaveOptions, SaveStatus, Saved};

/// What an artifact holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    File,
    Folder,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::File => "file",
            ArtifactKind::Folder => "folder",
        }
    }
}

/// One version of a file or folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// Global identity: 16-character stem shared by all versions + 4-character version.
    pub uid: String,
    pub key: Option<String>,
    pub description: Option<String>,
    pub kind: ArtifactKind,
    pub suffix: String,
    /// BLAKE3 of the content (of the manifest, for folders).
    pub hash: ContentHash,
    /// Bytes (all files, for folders).
    pub size: u64,
    /// Number of files, for folders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_files: Option<u64>,
    /// Root URL of the storage that holds the content.
    pub storage: String,
    pub is_latest: bool,
    /// The version this one revises.
    pub revises: Option<String>,
    /// A version tag chosen by the user (e.g. "1.0").
    pub version: Option<String>,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub created_at: i64,
    /// Handle of the user who created it.
    pub created_by: String,
    /// PeerId of the node that created it.
    pub origin: String,
    #[serde(serialize_with = "crate::time::serde_ms::option::serialize")]
    pub trashed_at: Option<i64>,
    #[serde(skip)]
    pub(crate) id: i64,
    #[serde(skip)]
    pub(crate) storage_id: i64,
}

impl Artifact {
    /// The uid shared by all versions.
    pub fn stem(&self) -> &str {
        uid::stem(&self.uid)
    }

    pub fn is_trashed(&self) -> bool {
        self.trashed_at.is_some()
    }

    /// The key if there is one, else the uid (for messages).
    pub fn label(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.uid)
    }

    /// One of labmesh's own records (a run's report, a transform's
    /// source), kept under `.labmesh/` keys and hidden from `ls`.
    pub fn is_internal(&self) -> bool {
        self.key.as_deref().is_some_and(is_internal_key)
    }
}

/// Keys under which labmesh keeps its own artifacts (run reports,
/// transform sources); users cannot save under them.
pub const INTERNAL_KEY_PREFIX: &str = ".labmesh/";

/// Whether a key is one of labmesh's own (see `INTERNAL_KEY_PREFIX`).
pub fn is_internal_key(key: &str) -> bool {
    key.starts_with(INTERNAL_KEY_PREFIX)
}

/// Which artifacts `list` returns.
#[derive(Clone, Debug)]
pub struct ListOptions {
    /// Every version, not only the latest of each family.
    pub all_versions: bool,
    /// Trashed artifacts instead of live ones.
    pub trash: bool,
    /// Only keys starting with this.
    pub key_prefix: Option<String>,
    pub limit: usize,
    /// Only records created on this node (PeerId).
    pub origin: Option<String>,
    /// Also labmesh's own artifacts (keys under `.labmesh/`: run reports,
    /// transform sources), which listings leave out by default.
    pub internal: bool,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            all_versions: false,
            trash: false,
            key_prefix: None,
            limit: 100,
            origin: None,
            internal: false,
        }
    }
}

pub(crate) const SELECT: &str = "SELECT a.id, a.uid, a.key, a.description, a.kind, a.suffix, a.hash, a.size, \
     a.n_files, s.root, a.is_latest, r.uid, a.version, a.created_at, u.handle, n.peer_id, a.trashed_at, a.storage_id \
     FROM artifact a \
     JOIN storage s ON s.id = a.storage_id \
     JOIN user u ON u.id = a.created_by \
     JOIN node n ON n.id = a.origin_id \
     LEFT JOIN artifact r ON r.id = a.revises_id";

pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Artifact> {
    let kind: String = row.get(4)?;
    let hash: String = row.get(6)?;
    Ok(Artifact {
        id: row.get(0)?,
        uid: row.get(1)?,
        key: row.get(2)?,
        description: row.get(3)?,
        kind: if kind == "folder" {
            ArtifactKind::Folder
        } else {
            ArtifactKind::File
        },
        suffix: row.get(5)?,
        hash: hash.parse().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                6,
                rusqlite::types::Type::Text,
                "bad hash".into(),
            )
        })?,
        size: row.get::<_, i64>(7)? as u64,
        n_files: row.get::<_, Option<i64>>(8)?.map(|n| n as u64),
        storage: row.get(9)?,
        is_latest: row.get(10)?,
        revises: row.get(11)?,
        version: row.get(12)?,
        created_at: row.get(13)?,
        created_by: row.get(14)?,
        origin: row.get(15)?,
        trashed_at: row.get(16)?,
        storage_id: row.get(17)?,
    })
}

impl Instance {
    /// Finds an artifact by uid, uid prefix (4+ characters) or key (its
    /// latest version). Trashed artifacts are found too; check `is_trashed`.
    pub fn get(&self, query: &str) -> Result<Artifact> {
        let query = query.trim();
        if uid::is_base62(query)
            && query.len() >= MIN_PREFIX_LEN
            && query.len() <= VERSIONED_UID_LEN
        {
            let mut matches = self.by_uid_prefix(query, 6)?;
            let one_family = matches.windows(2).all(|w| w[0].stem() == w[1].stem())
                && self.stems_with_prefix(query)? == 1;
            match matches.len() {
                0 => {}
                1 => return Ok(matches.remove(0)),
                // A prefix of the stem names the family: its latest version.
                _ if one_family => return self.family_head_artifact(matches[0].stem()),
                _ => {
                    return Err(Error::AmbiguousUid {
                        query: query.to_string(),
                        candidates: matches
                            .iter()
                            .map(|a| format!("{} {}", a.uid, a.label()))
                            .collect(),
                    });
                }
            }
        }
        if let Some(a) = self.latest_by_key(query)? {
            return Ok(a);
        }
        Err(Error::ArtifactNotFound {
            query: query.to_string(),
            suggestion: self.closest_key(query, false)?,
        })
    }

    /// Artifacts whose uid starts with `prefix` (at most `limit`).
    fn by_uid_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Artifact>> {
        let sql = format!("{SELECT} WHERE a.uid >= ?1 AND a.uid < ?2 ORDER BY a.uid LIMIT ?3");
        let mut stmt = self.conn.prepare_cached(&sql).db(&self.db_path())?;
        let rows = stmt
            .query_map(
                params![prefix, uid::prefix_upper_bound(prefix), limit as i64],
                from_row,
            )
            .db(&self.db_path())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.db_path())
    }

    /// How many families (up to 2) have a uid starting with `prefix`.
    fn stems_with_prefix(&self, prefix: &str) -> Result<usize> {
        let sql = format!(
            "SELECT count(*) FROM (SELECT DISTINCT substr(uid, 1, {STEM_LEN}) FROM artifact
             WHERE uid >= ?1 AND uid < ?2 LIMIT 2)"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_row(params![prefix, uid::prefix_upper_bound(prefix)], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .map(|n| n as usize)
            .db(&self.db_path())
    }

    /// The version of a family a user means: the live latest one, else the newest.
    fn family_head_artifact(&self, stem: &str) -> Result<Artifact> {
        let sql = format!(
            "{SELECT} WHERE substr(a.uid, 1, {STEM_LEN}) = ?1
             ORDER BY a.trashed_at IS NOT NULL, a.is_latest DESC, a.created_at DESC, a.uid DESC LIMIT 1"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([stem], from_row))
            .db(&self.db_path())
    }

    /// The version of `key` a user means: the live latest one, else the newest.
    pub(crate) fn latest_by_key(&self, key: &str) -> Result<Option<Artifact>> {
        let sql = format!(
            "{SELECT} WHERE a.key = ?1 ORDER BY a.trashed_at IS NOT NULL, a.is_latest DESC, a.created_at DESC, a.uid DESC LIMIT 1"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([key], from_row).optional())
            .db(&self.db_path())
    }

    pub(crate) fn artifact_by_id(&self, id: i64) -> Result<Artifact> {
        let sql = format!("{SELECT} WHERE a.id = ?1");
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([id], from_row))
            .db(&self.db_path())
    }

    /// An artifact with this content, if any: live first, then the oldest
    /// by `(created_at, uid)` — the same record on every replica, so content
    /// registered on two nodes dedups alike everywhere. labmesh's own
    /// records (keys under `.labmesh/`: run reports, transform sources) and
    /// users' records dedup only among themselves: a user's file is never
    /// returned as a run's report, nor a transform source as a user's file.
    pub(crate) fn by_content(
        &self,
        hash: &ContentHash,
        size: u64,
        kind: ArtifactKind,
        key: Option<&str>,
    ) -> Result<Option<Artifact>> {
        let own = key.is_some_and(is_own_key);
        let sql = format!(
            "{SELECT} WHERE a.hash = ?1 AND a.size = ?2 AND a.kind = ?3 \
             AND (coalesce(a.key, '') LIKE '.labmesh/%') = ?4 \
             ORDER BY a.trashed_at IS NOT NULL, a.created_at, a.uid LIMIT 1"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_row(
                    params![hash.to_hex(), size as i64, kind.as_str(), own],
                    from_row,
                )
                .optional()
            })
            .db(&self.db_path())
    }

    /// Lists artifacts, newest first.
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<Artifact>> {
        let mut sql = format!("{SELECT} WHERE ");
        sql.push_str(if opts.trash {
            "a.trashed_at IS NOT NULL"
        } else {
            "a.trashed_at IS NULL"
        });
        if !opts.all_versions && !opts.trash {
            sql.push_str(" AND a.is_latest = 1");
        }
        if !opts.internal {
            // A range, not LIKE, so the key index serves it.
            sql.push_str(" AND (a.key IS NULL OR a.key < '.labmesh/' OR a.key >= '.labmesh0')");
        }
        let upper;
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::new();
        if let Some(prefix) = &opts.key_prefix {
            upper = format!("{prefix}\u{10FFFF}");
            sql.push_str(" AND a.key >= ? AND a.key < ?");
            args.push(prefix);
            args.push(&upper);
        }
        if let Some(origin) = &opts.origin {
            sql.push_str(" AND a.origin_id = (SELECT id FROM node WHERE peer_id = ?)");
            args.push(origin);
        }
        let limit = opts.limit as i64;
        sql.push_str(" ORDER BY a.created_at DESC, a.id DESC LIMIT ?");
        args.push(&limit);
        let mut stmt = self.conn.prepare_cached(&sql).db(&self.db_path())?;
        let rows = stmt
            .query_map(args.as_slice(), from_row)
            .db(&self.db_path())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.db_path())
    }

    /// Every version in the family of the artifact `query` names, oldest first.
    pub fn versions(&self, query: &str) -> Result<Vec<Artifact>> {
        let artifact = self.get(query)?;
        self.family(artifact.stem())
    }

    pub(crate) fn family(&self, stem: &str) -> Result<Vec<Artifact>> {
        let sql = format!(
            "{SELECT} WHERE substr(a.uid, 1, {STEM_LEN}) = ?1 ORDER BY a.created_at, a.uid"
        );
        let mut stmt = self.conn.prepare_cached(&sql).db(&self.db_path())?;
        let rows = stmt.query_map([stem], from_row).db(&self.db_path())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.db_path())
    }

    /// The files of a folder artifact, in manifest order.
    pub fn folder_entries(&self, artifact: &Artifact) -> Result<Vec<crate::hash::manifest::Entry>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, hash, size, suffix FROM folder_entry WHERE artifact_id = ?1 ORDER BY path")
            .db(&self.db_path())?;
        let rows = stmt
            .query_map([artifact.id], |r| {
                let hash: String = r.get(1)?;
                Ok(crate::hash::manifest::Entry {
                    path: r.get(0)?,
                    hash: hash.parse().map_err(|_| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            "bad hash".into(),
                        )
                    })?,
                    size: r.get::<_, i64>(2)? as u64,
                    suffix: r.get(3)?,
                })
            })
            .db(&self.db_path())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.db_path())
    }

    /// The existing key closest to `query`, for "did you mean" hints. Looks
    /// only at keys that share its case-folded form or its folder, so it
    /// stays fast on large instances.
    /// With `same_suffix`, only keys of the same suffix count (for new keys:
    /// `a.csv` next to `a.tsv` is no typo).
    pub(crate) fn closest_key(&self, query: &str, same_suffix: bool) -> Result<Option<String>> {
        let folder = query.rsplit_once('/').map_or("", |(dir, _)| dir);
        let lower = query.to_lowercase();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key FROM artifact WHERE lower(key) = ?1 AND trashed_at IS NULL
                 UNION
                 SELECT key FROM (SELECT key FROM artifact
                     WHERE key >= ?2 AND key < ?3 AND trashed_at IS NULL AND is_latest = 1 LIMIT 500)",
            )
            .db(&self.db_path())?;
        let (lo, hi) = if folder.is_empty() {
            (String::new(), "\u{10FFFF}".to_string())
        } else {
            (format!("{folder}/"), format!("{folder}/\u{10FFFF}"))
        };
        let keys = stmt
            .query_map(params![lower, lo, hi], |r| r.get::<_, String>(0))
            .db(&self.db_path())?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.db_path())?;
        // Keys with different suffixes name different kinds of content.
        let suffix = crate::suffix::suffix_of(query);
        let same_kind = keys
            .iter()
            .map(String::as_str)
            .filter(|k| !same_suffix || crate::suffix::suffix_of(k) == suffix);
        Ok(similar::closest(query, same_kind).map(str::to_string))
    }
}

/// Whether a key names one of labmesh's own records (under `.labmesh/`).
pub(crate) fn is_own_key(key: &str) -> bool {
    key.starts_with(".labmesh/")
}
