//! Runs and transforms by uid, uid prefix, key or path; listings; the
//! artifacts a run read and wrote, and the runs that produced an artifact.

use rusqlite::{OptionalExtension, Row, params};

use crate::artifact::{self, Artifact};
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::provenance::{
    RUN_UID_LEN, Run, RunListOptions, RunOutput, RunStatus, Transform, TransformKind, TransformRef,
    VERSION_OF_T, command, link,
};
use crate::uid::{self, MIN_PREFIX_LEN, STEM_LEN};

fn transform_select() -> String {
    format!(
        "SELECT t.id, t.uid, t.key, t.kind, t.description, t.hash, t.size, s.uid, {VERSION_OF_T},
                t.is_latest, p.uid, (SELECT count(*) FROM run WHERE transform_id = t.id), t.created_at, u.handle
         FROM transform t
         JOIN user u ON u.id = t.created_by
         LEFT JOIN artifact s ON s.id = t.source_id
         LEFT JOIN transform p ON p.id = t.revises_id"
    )
}

fn transform_from_row(r: &Row<'_>) -> rusqlite::Result<Transform> {
    Ok(Transform {
        id: r.get(0)?,
        uid: r.get(1)?,
        key: r.get(2)?,
        kind: TransformKind::from_db(&r.get::<_, String>(3)?),
        description: r.get(4)?,
        hash: r.get(5)?,
        size: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
        source: r.get(7)?,
        version: r.get::<_, i64>(8)? as u64,
        is_latest: r.get(9)?,
        revises: r.get(10)?,
        n_runs: r.get::<_, i64>(11)? as u64,
        created_at: r.get(12)?,
        created_by: r.get(13)?,
    })
}

fn run_select() -> String {
    format!(
        "SELECT r.id, r.uid, t.uid, t.key, t.kind, {VERSION_OF_T}, r.status, r.started_at, r.finished_at,
                r.exit_code, r.signal, r.error, r.notes, r.params, r.environment, rep.uid, par.uid,
                (SELECT count(*) FROM run_input WHERE run_id = r.id),
                (SELECT count(*) FROM run_output WHERE run_id = r.id),
                u.handle, n.peer_id
         FROM run r
         JOIN transform t ON t.id = r.transform_id
         JOIN user u ON u.id = r.created_by
         JOIN node n ON n.id = r.origin_id
         LEFT JOIN artifact rep ON rep.id = r.report_id
         LEFT JOIN run par ON par.id = r.parent_id"
    )
}

fn json_column(r: &Row<'_>, i: usize) -> rusqlite::Result<serde_json::Value> {
    let text: Option<String> = r.get(i)?;
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null))
}

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<Run> {
    let started_at: i64 = r.get(7)?;
    let finished_at: Option<i64> = r.get(8)?;
    let notes = match json_column(r, 12)? {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| link::note_text(v).to_string())
            .collect(),
        _ => Vec::new(),
    };
    Ok(Run {
        id: r.get(0)?,
        uid: r.get(1)?,
        transform: TransformRef {
            uid: r.get(2)?,
            key: r.get(3)?,
            kind: TransformKind::from_db(&r.get::<_, String>(4)?),
            version: r.get::<_, i64>(5)? as u64,
        },
        status: RunStatus::from_db(&r.get::<_, String>(6)?),
        started_at,
        finished_at,
        duration_ms: finished_at.map(|f| (f - started_at).max(0)),
        exit_code: r.get(9)?,
        signal: r.get(10)?,
        error: r.get(11)?,
        notes,
        params: json_column(r, 13)?,
        environment: json_column(r, 14)?,
        report: r.get(15)?,
        parent: r.get(16)?,
        n_inputs: r.get::<_, i64>(17)? as u64,
        n_outputs: r.get::<_, i64>(18)? as u64,
        created_by: r.get(19)?,
        origin: r.get(20)?,
    })
}

impl Instance {
    /// A run by uid or uid prefix (4+ characters). A run found `running`
    /// whose recording process died is ended first (see `orphan`).
    pub fn run(&self, query: &str) -> Result<Run> {
        self.end_orphaned_runs_if_possible();
        let q = query.trim();
        let db = self.db_path();
        if uid::is_base62(q) && q.len() >= MIN_PREFIX_LEN && q.len() <= RUN_UID_LEN {
            let sql = format!(
                "{} WHERE r.uid >= ?1 AND r.uid < ?2 ORDER BY r.uid LIMIT 6",
                run_select()
            );
            let mut found: Vec<Run> = self
                .conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_map(params![q, uid::prefix_upper_bound(q)], run_from_row)?
                        .collect()
                })
                .db(&db)?;
            match found.len() {
                0 => {}
                1 => return Ok(found.remove(0)),
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "{q:?} is ambiguous: it matches {} runs ({})\n  hint: give more characters of the run uid",
                        found.len(),
                        found
                            .iter()
                            .map(|r| format!("{} {}", r.uid, r.transform.key))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Err(Error::InvalidArgument(format!(
            "no run matches {q:?}\n  hint: `labmesh runs` lists runs; give a run uid or 4+ of its first characters"
        )))
    }

    pub(crate) fn run_by_id(&self, id: i64) -> Result<Run> {
        let sql = format!("{} WHERE r.id = ?1", run_select());
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([id], run_from_row))
            .db(&self.db_path())
    }

    /// Runs, newest first. Runs found `running` whose recording process
    /// died are ended first (see `orphan`).
    pub fn runs(&self, opts: &RunListOptions) -> Result<Vec<Run>> {
        self.end_orphaned_runs_if_possible();
        let ids = self.run_ids(opts)?;
        ids.into_iter().map(|id| self.run_by_id(id)).collect()
    }

    /// The ids `runs` shows, newest first. Each transform version is read
    /// through its own index range (`run_transform`) and the ranges merged,
    /// so a transform with many versions or runs costs `limit` rows each,
    /// not a sort of all its runs; the run rows (with their counts) are
    /// built only for the ids shown.
    fn run_ids(&self, opts: &RunListOptions) -> Result<Vec<i64>> {
        let db = self.db_path();
        let limit = opts.limit as i64;
        let status = opts.status.map(|s| s.as_str());
        let newest = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<Vec<(i64, i64)>> {
            self.conn
                .prepare_cached(sql)
                .and_then(|mut s| s.query_map(args, |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .db(&db)
        };
        let mut found: Vec<(i64, i64)> = match &opts.transform {
            Some(t) => {
                // An exact key needs no `transform()` (which counts its runs).
                let exact: Option<String> = self
                    .conn
                    .prepare_cached("SELECT key FROM transform WHERE key = ?1 LIMIT 1")
                    .and_then(|mut s| s.query_row([t.trim()], |r| r.get(0)).optional())
                    .db(&db)?;
                let key = match exact {
                    Some(k) => k,
                    None => self.transform(t)?.key,
                };
                let versions: Vec<i64> = self
                    .conn
                    .prepare_cached("SELECT id FROM transform WHERE key = ?1")
                    .and_then(|mut s| s.query_map([&key], |r| r.get(0))?.collect())
                    .db(&db)?;
                let mut all = Vec::new();
                for v in versions {
                    all.extend(newest(
                        "SELECT started_at, id FROM run WHERE transform_id = ?1
                             AND (?2 IS NULL OR status = ?2)
                         ORDER BY started_at DESC, id DESC LIMIT ?3",
                        &[&v, &status, &limit],
                    )?);
                }
                all
            }
            None => match status {
                Some(st) => newest(
                    "SELECT started_at, id FROM run WHERE status = ?1
                     ORDER BY started_at DESC, id DESC LIMIT ?2",
                    &[&st, &limit],
                )?,
                None => newest(
                    "SELECT started_at, id FROM run ORDER BY started_at DESC, id DESC LIMIT ?1",
                    &[&limit],
                )?,
            },
        };
        found.sort_unstable_by(|a, b| b.cmp(a));
        found.truncate(opts.limit);
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    /// The run that created an artifact (saved it first), if a tracked run did.
    pub fn creating_run(&self, artifact: &Artifact) -> Result<Option<Run>> {
        let sql = format!(
            "{} JOIN run_output ro ON ro.run_id = r.id WHERE ro.artifact_id = ?1 AND ro.created = 1",
            run_select()
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([artifact.id], run_from_row).optional())
            .db(&self.db_path())
    }

    /// The artifacts a run read, in the order it read them.
    pub fn run_inputs(&self, run: &Run) -> Result<Vec<Artifact>> {
        let sql = format!(
            "{} JOIN run_input ri ON ri.artifact_id = a.id WHERE ri.run_id = ?1 ORDER BY ri.linked_at, a.id",
            artifact::SELECT
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_map([run.id], artifact::from_row)?.collect())
            .db(&self.db_path())
    }

    /// The artifacts a run wrote, in the order it wrote them.
    pub fn run_outputs(&self, run: &Run) -> Result<Vec<RunOutput>> {
        // The created flag is the last column, after the artifact's own.
        let sql = artifact::SELECT.replacen(
            " FROM artifact a",
            ", ro.created FROM artifact a JOIN run_output ro ON ro.artifact_id = a.id",
            1,
        ) + " WHERE ro.run_id = ?1 ORDER BY ro.linked_at, a.id";
        let mut stmt = self.conn.prepare_cached(&sql).db(&self.db_path())?;
        let created_col = stmt.column_count() - 1;
        stmt.query_map([run.id], |r| {
            Ok(RunOutput {
                artifact: artifact::from_row(r)?,
                created: r.get(created_col)?,
            })
        })
        .and_then(|rows| rows.collect())
        .db(&self.db_path())
    }

    /// The runs that produced an artifact: its creating run first, then
    /// runs that produced the same content again.
    pub fn producing_runs(&self, artifact: &Artifact) -> Result<Vec<Run>> {
        let sql = format!(
            "{} JOIN run_output ro ON ro.run_id = r.id WHERE ro.artifact_id = ?1
             ORDER BY ro.created DESC, r.started_at, r.id",
            run_select()
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_map([artifact.id], run_from_row)?.collect())
            .db(&self.db_path())
    }

    /// The latest version of a transform, by key, uid or uid prefix. A
    /// key may be given as a path (`./analyse.py`, or `s.py` from inside
    /// `scripts/`): it is the key of that path inside the instance.
    pub fn transform(&self, query: &str) -> Result<Transform> {
        let q = query.trim();
        let db = self.db_path();
        let by_key = format!(
            "{} WHERE t.key = ?1 ORDER BY t.is_latest DESC, t.created_at DESC, t.id DESC LIMIT 1",
            transform_select()
        );
        for key in std::iter::once(q.to_string()).chain(self.keys_of_path(q)) {
            if let Some(t) = self
                .conn
                .prepare_cached(&by_key)
                .and_then(|mut s| s.query_row([&key], transform_from_row).optional())
                .db(&db)?
            {
                return Ok(t);
            }
        }
        if uid::is_base62(q) && q.len() >= MIN_PREFIX_LEN && q.len() <= uid::VERSIONED_UID_LEN {
            let sql = format!(
                "{} WHERE t.uid >= ?1 AND t.uid < ?2 ORDER BY t.uid LIMIT 6",
                transform_select()
            );
            let found: Vec<Transform> = self
                .conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_map(params![q, uid::prefix_upper_bound(q)], transform_from_row)?
                        .collect()
                })
                .db(&db)?;
            if let Some(first) = found.first() {
                let one_family = found
                    .iter()
                    .all(|t| uid::stem(&t.uid) == uid::stem(&first.uid));
                if found.len() == 1 || (one_family && q.len() <= STEM_LEN) {
                    return if found.len() == 1 {
                        Ok(found[0].clone())
                    } else {
                        self.transform(&first.key)
                    };
                }
                return Err(Error::InvalidArgument(format!(
                    "{q:?} is ambiguous: it matches {} transforms ({})\n  hint: give more characters of the uid",
                    found.len(),
                    found
                        .iter()
                        .map(|t| format!("{} {}", t.uid, t.key))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let keys: Vec<String> = self
            .conn
            .prepare_cached("SELECT DISTINCT key FROM transform LIMIT 2000")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&db)?;
        let hint = match crate::similar::closest(q, keys.iter().map(String::as_str)) {
            Some(near) => format!("did you mean {near:?}?"),
            None => "hint: `labmesh transform ls` lists transforms; `labmesh run -- <command>` makes one".into(),
        };
        Err(Error::InvalidArgument(format!(
            "no transform matches {q:?}\n  {hint}"
        )))
    }

    /// The keys a path given for a transform may stand for: itself without
    /// `./` and doubled slashes, and its path inside the instance when it
    /// is relative to a directory in the instance (or names a file there).
    fn keys_of_path(&self, q: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let lexical: Vec<&str> = q
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        if !lexical.is_empty() {
            keys.push(lexical.join("/"));
        }
        let path = std::path::Path::new(q);
        if let Ok(Some(k)) = command::key_inside(path, self.root()) {
            keys.push(k); // an existing file, by any path
        } else if let Ok(cwd) = std::env::current_dir()
            && let (Ok(cwd), Ok(root)) = (
                std::fs::canonicalize(cwd),
                std::fs::canonicalize(self.root()),
            )
            && let Ok(rel) = cwd.strip_prefix(&root)
            && path.is_relative()
        {
            // A file that is gone, named from a directory inside the instance.
            let joined: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .chain(lexical.iter().map(|s| s.to_string()))
                .collect();
            if !joined.is_empty() && !joined.iter().any(|s| s == "..") {
                keys.push(joined.join("/"));
            }
        }
        keys.retain(|k| k != q);
        keys.dedup();
        keys
    }

    /// Every version of the transform `query` names, oldest first.
    pub fn transform_versions(&self, query: &str) -> Result<Vec<Transform>> {
        let t = self.transform(query)?;
        let sql = format!(
            "{} WHERE substr(t.uid, 1, {STEM_LEN}) = ?1 ORDER BY t.created_at, t.id",
            transform_select()
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map([uid::stem(&t.uid)], transform_from_row)?
                    .collect()
            })
            .db(&self.db_path())
    }

    /// The latest version of every transform, most recently created first.
    pub fn transforms(&self) -> Result<Vec<Transform>> {
        let sql = format!(
            "{} WHERE t.is_latest = 1 ORDER BY t.created_at DESC, t.id DESC",
            transform_select()
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_map([], transform_from_row)?.collect())
            .db(&self.db_path())
    }
}
