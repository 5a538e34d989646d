//! The row half of saving: inserting an artifact, placing it in its
//! version family, and the answer for content that is already saved.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, params};

use crate::artifact::Artifact;
use crate::artifact::save::{SaveOptions, SaveStatus, Saved};
use crate::artifact::source::Source;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::time::now_ms;
use crate::uid::{self, STEM_LEN};

impl Instance {
    /// Inserts the row of a stored source and moves `is_latest` in its family.
    /// `families` maps keys to stems created earlier in the same batch;
    /// `own_record` inserts a new row even if the content is registered.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn insert(
        &self,
        tx: &Transaction<'_>,
        src: &Source,
        opts: &SaveOptions,
        families: &mut HashMap<String, String>,
        warn_similar: bool,
        own_record: bool,
    ) -> Result<Saved> {
        let db = self.db_path();
        // Another process may have registered the same content since we looked.
        if !own_record
            && let Some(existing) =
                self.by_content(&src.hash, src.size, src.kind, src.key.as_deref())?
        {
            return Ok(existing_notice(existing, src, opts));
        }
        let previous = match (&src.revises, &src.key) {
            (Some(r), _) => Some(self.family_head(tx, r.stem())?.unwrap_or((
                r.id,
                r.uid.clone(),
                r.created_at,
            ))),
            (None, Some(key)) => match families.get(key) {
                Some(stem) => self.family_head(tx, stem)?,
                None => tx
                    .prepare_cached(
                        "SELECT id, uid, created_at FROM artifact WHERE key = ?1
                         ORDER BY trashed_at IS NOT NULL, created_at DESC, uid DESC LIMIT 1",
                    )
                    .and_then(|mut s| {
                        s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                            .optional()
                    })
                    .db(&db)?,
            },
            (None, None) => None,
        };
        let mut notices = src.notices.clone();
        let (uid, revises_id, created_at) = match &previous {
            // A new version is never older than the one it revises, so
            // `is_latest` follows creation even across clock adjustments.
            Some((id, prev_uid, prev_created)) => (
                uid::new_version(uid::stem(prev_uid)),
                Some(*id),
                now_ms().max(prev_created + 1),
            ),
            None => {
                // Batches skip the fuzzy look-up: it would cost more than the save.
                if let Some(key) = src.key.as_ref().filter(|_| warn_similar)
                    && let Some(near) = self.closest_key(key, true)?
                {
                    notices.push(format!(
                        "new key {key:?} is close to the existing {near:?}; did you mean {near:?}? \
                         (`labmesh save <file> --key {near:?}` saves a new version of it)"
                    ));
                }
                (uid::new_family(), None, now_ms())
            }
        };
        let n_files = src.manifest.as_ref().map(|(m, _)| m.entries.len() as i64);
        tx.prepare_cached(
            "INSERT INTO artifact (uid, key, description, kind, suffix, hash, size, n_files, storage_id,
                                   revises_id, is_latest, version, created_at, created_by, origin_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?12, ?13, ?14)",
        )
        .and_then(|mut s| {
            s.execute(params![
                uid,
                src.key,
                opts.description,
                src.kind.as_str(),
                src.suffix,
                src.hash.to_hex(),
                src.size as i64,
                n_files,
                self.default_storage.id,
                revises_id,
                opts.version,
                created_at,
                self.user_id,
                self.self_node_id,
            ])
        })
        .db(&db)?;
        let id = tx.last_insert_rowid();
        if let Some((m, _)) = &src.manifest {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO folder_entry (artifact_id, path, hash, size, suffix) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .db(&db)?;
            for e in &m.entries {
                stmt.execute(params![
                    id,
                    e.path,
                    e.hash.to_hex(),
                    e.size as i64,
                    e.suffix
                ])
                .db(&db)?;
            }
        }
        self.record_written(src)?;
        self.share_artifact(tx, id)?;
        if let Some(key) = &src.key {
            crate::search::index::index_text(tx, "artifact", id, "key", key).db(&db)?;
        }
        if let Some(d) = &opts.description {
            crate::search::index::index_text(tx, "artifact", id, "description", d).db(&db)?;
        }
        let stem = uid::stem(&uid).to_string();
        refresh_latest(tx, &stem).db(&db)?;
        if let Some(key) = &src.key {
            families.insert(key.clone(), stem);
        }
        let status = match previous {
            Some((_, prev_uid, _)) => SaveStatus::NewVersion { previous: prev_uid },
            None => SaveStatus::Created,
        };
        Ok(Saved {
            artifact: self.artifact_by_id(id)?,
            status,
            notices,
        })
    }

    /// The newest version of a family: (id, uid, created_at), in the order
    /// `refresh_latest` uses.
    fn family_head(&self, tx: &Transaction<'_>, stem: &str) -> Result<Option<(i64, String, i64)>> {
        tx.prepare_cached(&format!(
            "SELECT id, uid, created_at FROM artifact WHERE substr(uid, 1, {STEM_LEN}) = ?1
             ORDER BY trashed_at IS NOT NULL, created_at DESC, uid DESC LIMIT 1"
        ))
        .and_then(|mut s| {
            s.query_row([stem], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .db(&self.db_path())
    }
}

/// The answer for content that is already registered. Nothing is changed,
/// so every option the save could not apply is named.
pub(super) fn existing_notice(artifact: Artifact, src: &Source, opts: &SaveOptions) -> Saved {
    let uid = &artifact.uid;
    let mut notices = src.notices.clone();
    if artifact.is_trashed() {
        notices.push(format!(
            "same content is in the trash as {uid} ({}), so nothing was saved; \
             `labmesh restore {uid}` brings it back",
            artifact.label()
        ));
    } else {
        notices.push(match (&artifact.key, &src.key) {
            (Some(k), Some(want)) if k != want => format!(
                "same content is already saved as {uid} ({k}), so nothing was saved under {want:?} \
                 (labmesh keeps one artifact per content)"
            ),
            _ => format!("content unchanged: returning the existing artifact {uid}"),
        });
    }
    if let Some(d) = &opts.description
        && artifact.description.as_deref() != Some(d.as_str())
    {
        notices.push(format!(
            "the description was not changed; `labmesh edit {uid} --description {d:?}` changes it"
        ));
    }
    if let Some(v) = &opts.version
        && artifact.version.as_deref() != Some(v.as_str())
    {
        notices.push(format!(
            "the version tag {v:?} was not applied: {uid} is an existing version"
        ));
    }
    if let Some(r) = &src.revises
        && r.stem() != artifact.stem()
    {
        notices.push(format!(
            "no new version of {} was made: the content already is {uid}",
            r.label()
        ));
    }
    Saved {
        artifact,
        status: SaveStatus::Existing,
        notices,
    }
}

/// Marks the newest live version of a family as the latest, and only it:
/// by (created_at, uid), which every replica of a shared family agrees on
/// (ids are local). `family_head` and the look-ups use the same order.
pub(crate) fn refresh_latest(conn: &rusqlite::Connection, stem: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "UPDATE artifact SET is_latest = (id IS (
             SELECT id FROM artifact WHERE substr(uid, 1, {STEM_LEN}) = ?1 AND trashed_at IS NULL
             ORDER BY created_at DESC, uid DESC LIMIT 1))
         WHERE substr(uid, 1, {STEM_LEN}) = ?1"
    ))?
    .execute([stem])
    .map(|_| ())
}
