//! Transform versions. A transform is named by its key; its source is
//! stored as an artifact and identified by its BLAKE3 hash. The same key
//! with a source seen before is that version again; a new source makes a
//! new version of the key's family, and `is_latest` moves to it.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::artifact::SaveOptions;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::provenance::TransformKind;
use crate::provenance::track::without_linking;
use crate::suffix::suffix_of;
use crate::time::now_ms;
use crate::uid::{self, STEM_LEN};

/// Prefix of the keys under which transform sources are saved.
pub const SOURCE_PREFIX: &str = ".labmesh/transforms/";

/// A stored source: its artifact and content hash.
#[derive(Clone, Debug)]
pub(crate) struct StoredSource {
    pub artifact_id: i64,
    pub hash: String,
    pub size: u64,
}

/// The artifact key of the source of transform `key` read from `path`:
/// `.labmesh/transforms/<key>`, carrying the file's suffix (an artifact
/// key ends in the suffix of its content).
pub(crate) fn source_key(key: &str, path: &Path) -> String {
    let file_suffix = path
        .file_name()
        .map(|n| suffix_of(&n.to_string_lossy()))
        .unwrap_or_default();
    let base = format!("{SOURCE_PREFIX}{}", key.trim_end_matches('/'));
    let key_suffix = suffix_of(&base);
    if key_suffix.eq_ignore_ascii_case(&file_suffix) {
        base
    } else if key_suffix.is_empty() {
        format!("{base}{file_suffix}")
    } else {
        format!("{base}/source{file_suffix}")
    }
}

impl Instance {
    /// Saves a transform's source as an artifact (or finds it: unchanged
    /// sources are not stored twice). Never linked to a run.
    pub(crate) fn store_source(&self, key: &str, path: &Path) -> Result<StoredSource> {
        let opts = SaveOptions {
            key: Some(source_key(key, path)),
            description: Some(format!("source of transform {key}")),
            ..SaveOptions::default()
        };
        let saved = without_linking(|| self.save(path, &opts))?;
        Ok(StoredSource {
            artifact_id: saved.artifact.id,
            hash: saved.artifact.hash.to_hex(),
            size: saved.artifact.size,
        })
    }

    /// The version of transform `key` with this source, made if it is new.
    /// Runs inside the caller's transaction.
    pub(crate) fn transform_version(
        &self,
        tx: &Connection,
        key: &str,
        kind: TransformKind,
        source: Option<&StoredSource>,
        description: Option<&str>,
    ) -> Result<i64> {
        let db = self.db_path();
        let hash = source.map(|s| s.hash.as_str());
        let existing: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM transform WHERE key = ?1 AND hash IS ?2
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .and_then(|mut s| s.query_row(params![key, hash], |r| r.get(0)).optional())
            .db(&db)?;
        if let Some(id) = existing {
            if let Some(s) = source {
                // The stored source may have been deleted since; point at it again.
                tx.prepare_cached(
                    "UPDATE transform SET source_id = ?2 WHERE id = ?1 AND source_id IS NULL",
                )
                .and_then(|mut st| st.execute(params![id, s.artifact_id]))
                .db(&db)?;
            }
            return Ok(id);
        }
        let previous: Option<(i64, String, i64, Option<String>)> = tx
            .prepare_cached(
                "SELECT id, uid, created_at, description FROM transform WHERE key = ?1
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()
            })
            .db(&db)?;
        let (uid, revises_id, created_at, description) = match &previous {
            // A new version is never older than the one it revises.
            Some((id, prev_uid, prev_created, prev_description)) => (
                uid::new_version(uid::stem(prev_uid)),
                Some(*id),
                now_ms().max(prev_created + 1),
                description.map(str::to_string).or(prev_description.clone()),
            ),
            None => (
                uid::new_family(),
                None,
                now_ms(),
                description.map(str::to_string),
            ),
        };
        tx.prepare_cached(
            "INSERT INTO transform (uid, key, kind, description, hash, size, source_id, revises_id,
                                    is_latest, created_at, created_by, origin_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?10, ?11)",
        )
        .and_then(|mut s| {
            s.execute(params![
                uid,
                key,
                kind.as_str(),
                description,
                hash,
                source.map(|s| s.size as i64),
                source.map(|s| s.artifact_id),
                revises_id,
                created_at,
                self.user_id,
                self.self_node_id,
            ])
        })
        .db(&db)?;
        let id = tx.last_insert_rowid();
        tx.prepare_cached(&format!(
            "UPDATE transform SET is_latest = (id = ?2) WHERE substr(uid, 1, {STEM_LEN}) = ?1"
        ))
        .and_then(|mut s| s.execute(params![uid::stem(&uid), id]))
        .db(&db)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_keys_keep_the_file_suffix() {
        assert_eq!(
            source_key("analyse.py", Path::new("/lab/analyse.py")),
            ".labmesh/transforms/analyse.py"
        );
        assert_eq!(
            source_key("normalize", Path::new("/tmp/x.R")),
            ".labmesh/transforms/normalize.R"
        );
        assert_eq!(
            source_key("steps/qc.sh", Path::new("/lab/run")),
            ".labmesh/transforms/steps/qc.sh/source"
        );
    }
}
