//! Provenance: transforms (the code), runs (one execution of it), and
//! lineage (which artifacts each run read and wrote).
//!
//! A run is started by `labmesh run -- <command>` (see `exec`) or by the
//! library's [`Instance::track`]. While it runs, every artifact this process
//! reads through `cache` is linked as an input and every artifact it saves
//! as an output; child processes do the same through `LABMESH_RUN`, which
//! names the run. Links are rows in `run_input` and `run_output`, written in
//! the transaction of the save (or in one small transaction of their own
//! for a read), so recording provenance costs tens of microseconds.
//!
//! Invariants:
//! - the lineage graph is acyclic: a link that would close a cycle (a run
//!   reading what it produced, or producing what it read) is refused;
//! - an artifact has at most one creating run (`run_output.created = 1`);
//!   runs that produce the same content again are linked, never duplicated;
//! - a run leaves `running` exactly once, and only links to `running` runs
//!   are recorded.

mod command;
mod exec;
mod lineage;
mod link;
mod render;
mod svg;
mod track;
mod transform;

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use crate::artifact::{self, Artifact};
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::uid::{self, MIN_PREFIX_LEN, STEM_LEN};

pub use command::{Classified, classify};
pub use exec::{Executed, RunCommand};
pub use lineage::{
    ArtifactNode, Direction, EdgeKind, Lineage, LineageEdge, LineageNode, LineageOptions, RunNode,
};
pub use render::Format;
pub use track::{Outcome, RunContext, TrackOptions};

/// Environment variable naming the run that child processes record into.
pub const RUN_ENV: &str = "LABMESH_RUN";

/// Length of a run uid (runs are not versioned).
pub const RUN_UID_LEN: usize = 16;

/// What a transform is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransformKind {
    Script,
    Pipeline,
    Notebook,
    /// A program without a source file in the instance (`make`, `samtools`, `python -m x`).
    Command,
}

impl TransformKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransformKind::Script => "script",
            TransformKind::Pipeline => "pipeline",
            TransformKind::Notebook => "notebook",
            TransformKind::Command => "command",
        }
    }

    fn from_db(s: &str) -> TransformKind {
        match s {
            "pipeline" => TransformKind::Pipeline,
            "notebook" => TransformKind::Notebook,
            "command" => TransformKind::Command,
            _ => TransformKind::Script,
        }
    }
}

impl std::str::FromStr for TransformKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "script" => Ok(TransformKind::Script),
            "pipeline" => Ok(TransformKind::Pipeline),
            "notebook" => Ok(TransformKind::Notebook),
            "command" => Ok(TransformKind::Command),
            _ => Err(Error::InvalidArgument(format!(
                "unknown transform kind {s:?}: use script, pipeline, notebook or command"
            ))),
        }
    }
}

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Errored,
    /// Ended by a signal.
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Errored => "errored",
            RunStatus::Killed => "killed",
        }
    }

    fn from_db(s: &str) -> RunStatus {
        match s {
            "completed" => RunStatus::Completed,
            "errored" => RunStatus::Errored,
            "killed" => RunStatus::Killed,
            _ => RunStatus::Running,
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "running" => Ok(RunStatus::Running),
            "completed" => Ok(RunStatus::Completed),
            "errored" => Ok(RunStatus::Errored),
            "killed" => Ok(RunStatus::Killed),
            _ => Err(Error::InvalidArgument(format!(
                "unknown run status {s:?}: use running, completed, errored or killed"
            ))),
        }
    }
}

/// One version of a transform: a script, pipeline, notebook or command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transform {
    /// 16-character stem shared by the versions of a key + 4-character version.
    pub uid: String,
    pub key: String,
    pub kind: TransformKind,
    pub description: Option<String>,
    /// BLAKE3 of the source (none for commands).
    pub hash: Option<String>,
    pub size: Option<u64>,
    /// The artifact holding the source.
    pub source: Option<String>,
    /// 1 for the first version of the key, 2 for the next, …
    pub version: u64,
    pub is_latest: bool,
    pub revises: Option<String>,
    /// Runs of this version.
    pub n_runs: u64,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub created_at: i64,
    pub created_by: String,
    #[serde(skip)]
    pub(crate) id: i64,
}

/// The transform of a run, in brief.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransformRef {
    pub uid: String,
    pub key: String,
    pub kind: TransformKind,
    pub version: u64,
}

/// One execution of a transform.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    pub uid: String,
    pub transform: TransformRef,
    pub status: RunStatus,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub started_at: i64,
    #[serde(serialize_with = "crate::time::serde_ms::option::serialize")]
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why the run errored when the command gave no exit status.
    pub error: Option<String>,
    /// Links refused during the run, and other things worth knowing.
    pub notes: Vec<String>,
    pub params: serde_json::Value,
    pub environment: serde_json::Value,
    /// The artifact holding the captured stdout and stderr.
    pub report: Option<String>,
    /// The run that was active when this one started.
    pub parent: Option<String>,
    pub n_inputs: u64,
    pub n_outputs: u64,
    pub created_by: String,
    pub origin: String,
    #[serde(skip)]
    pub(crate) id: i64,
}

/// An artifact a run wrote, and whether the run created it (or produced
/// content that was already saved).
#[derive(Clone, Debug, Serialize)]
pub struct RunOutput {
    #[serde(flatten)]
    pub artifact: Artifact,
    pub created: bool,
}

/// Which runs `runs` lists.
#[derive(Clone, Debug)]
pub struct RunListOptions {
    /// Only runs of this transform key (any version) or transform uid.
    pub transform: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: usize,
}

impl Default for RunListOptions {
    fn default() -> Self {
        RunListOptions {
            transform: None,
            status: None,
            limit: 50,
        }
    }
}

/// The version number of transform `t` in its family.
const VERSION_OF_T: &str =
    "(SELECT count(*) FROM transform v WHERE substr(v.uid, 1, 16) = substr(t.uid, 1, 16)
     AND (v.created_at < t.created_at OR (v.created_at = t.created_at AND v.id <= t.id)))";

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
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
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
    /// A run by uid or uid prefix (4+ characters).
    pub fn run(&self, query: &str) -> Result<Run> {
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

    /// Runs, newest first.
    pub fn runs(&self, opts: &RunListOptions) -> Result<Vec<Run>> {
        let mut sql = run_select();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut conds = Vec::new();
        if let Some(t) = &opts.transform {
            let transform = self.transform(t)?;
            conds.push("r.transform_id IN (SELECT id FROM transform WHERE key = ?)");
            args.push(transform.key.into());
        }
        if let Some(s) = opts.status {
            conds.push("r.status = ?");
            args.push(s.as_str().to_string().into());
        }
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(" ORDER BY r.started_at DESC, r.id DESC LIMIT ?");
        args.push((opts.limit as i64).into());
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(rusqlite::params_from_iter(args.iter()), run_from_row)?
                    .collect()
            })
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

    /// The latest version of a transform, by key, uid or uid prefix.
    pub fn transform(&self, query: &str) -> Result<Transform> {
        let q = query.trim();
        let db = self.db_path();
        let by_key = format!(
            "{} WHERE t.key = ?1 ORDER BY t.is_latest DESC, t.created_at DESC, t.id DESC LIMIT 1",
            transform_select()
        );
        if let Some(t) = self
            .conn
            .prepare_cached(&by_key)
            .and_then(|mut s| s.query_row([q], transform_from_row).optional())
            .db(&db)?
        {
            return Ok(t);
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
