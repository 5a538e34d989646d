//! Runs recorded from inside a program: [`Instance::track`] starts a run
//! and returns a [`RunContext`]; while it is active, `save` and `cache`
//! calls on any `Instance` of the same instance in this process link their
//! artifacts to it. Other processes link through `LABMESH_RUN`.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};

use crate::artifact::{Artifact, SaveOptions};
use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::provenance::link::note_text;
use crate::provenance::owner::Owner;
use crate::provenance::{RUN_ENV, RUN_UID_LEN, Run, RunStatus, TransformKind, command};
use crate::suffix::{suffix_of, validate_key};
use crate::time::now_ms;
use crate::uid;

/// Prefix of the keys under which run reports (captured output) are saved.
pub const REPORT_PREFIX: &str = ".labmesh/runs/";

/// Runs tracked in this process: (instance uid, run uid). A run uid of ""
/// reserves the slot while the run is being created.
static ACTIVE: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while labmesh saves its own records (sources, reports), which
    /// are never inputs or outputs of a run.
    static UNLINKED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` without linking what it reads or saves to any run.
pub(crate) fn without_linking<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            UNLINKED.set(self.0);
        }
    }
    let _reset = Reset(UNLINKED.replace(true));
    f()
}

fn active() -> std::sync::MutexGuard<'static, Vec<(String, String)>> {
    ACTIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn active_run(instance_uid: &str) -> Option<String> {
    active()
        .iter()
        .find(|(i, _)| i == instance_uid)
        .map(|(_, r)| r.clone())
}

fn deactivate(instance_uid: &str, run_uid: &str) {
    active().retain(|(i, r)| !(i == instance_uid && r == run_uid));
}

/// How [`Instance::track`] names and describes a run.
#[derive(Clone, Debug, Default)]
pub struct TrackOptions {
    /// The transform's key. Default: the source's path inside the instance.
    pub key: Option<String>,
    /// Default: from the source's name (`.ipynb` notebook, `.nf` pipeline,
    /// else script); `command` when there is no source.
    pub kind: Option<TransformKind>,
    /// The transform's source (a file or folder): hashed, and stored as an
    /// artifact; a new hash under the same key makes a new version.
    pub source: Option<PathBuf>,
    pub description: Option<String>,
    /// The run's parameters, any JSON (default `{}`).
    pub params: Option<Value>,
    /// Artifacts the run reads that it does not read through labmesh
    /// (uids, uid prefixes or keys), linked as inputs at the start.
    pub inputs: Vec<String>,
    /// Facts added to the recorded environment summary.
    pub environment: Map<String, Value>,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why the run errored, when there is no exit code to say it.
    pub error: Option<String>,
    /// A file holding the run's output, saved as its report artifact.
    pub report: Option<PathBuf>,
    /// Facts added to the environment summary (an interpreter's version).
    pub environment: Map<String, Value>,
    pub notes: Vec<String>,
    /// When the work ended (ms since the epoch), if not now: `labmesh run`
    /// passes the moment its command exited, so saving outputs and the
    /// report afterwards does not count as the run's time.
    pub finished_at: Option<i64>,
}

impl Outcome {
    pub fn completed() -> Outcome {
        Outcome {
            status: RunStatus::Completed,
            exit_code: None,
            signal: None,
            error: None,
            report: None,
            environment: Map::new(),
            notes: Vec::new(),
            finished_at: None,
        }
    }

    pub fn errored(error: impl Into<String>) -> Outcome {
        Outcome {
            status: RunStatus::Errored,
            error: Some(error.into()),
            ..Outcome::completed()
        }
    }
}

/// A run in progress, started by [`Instance::track`]. End it with
/// [`finish`](RunContext::finish) or [`fail`](RunContext::fail); dropped
/// without either (a panic, an early `?`), it ends as errored.
pub struct RunContext<'a> {
    instance: &'a Instance,
    run: Run,
    ended: bool,
}

impl std::fmt::Debug for RunContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("run", &self.run.uid)
            .finish()
    }
}

impl RunContext<'_> {
    pub fn uid(&self) -> &str {
        &self.run.uid
    }

    /// The run as it was when it started.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// Links an artifact the run read without going through `cache`.
    /// Refused if the artifact derives from this run (a cycle).
    pub fn add_input(&self, artifact: &str) -> Result<Artifact> {
        self.instance.link_run_input(&self.run, artifact)
    }

    /// Links an artifact the run produced without saving it.
    /// Refused if this run derives from the artifact (a cycle).
    pub fn add_output(&self, artifact: &str) -> Result<Artifact> {
        self.instance.link_run_output(&self.run, artifact)
    }

    /// Ends the run as completed.
    pub fn finish(self) -> Result<Run> {
        self.end(Outcome::completed())
    }

    /// Ends the run as errored; its outputs so far stay linked.
    pub fn fail(self, error: impl Into<String>) -> Result<Run> {
        self.end(Outcome::errored(error))
    }

    /// Ends the run with `outcome`.
    pub fn end(mut self, outcome: Outcome) -> Result<Run> {
        self.ended = true;
        self.instance.end_run(&self.run, outcome)
    }
}

impl Drop for RunContext<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.ended = true;
            let _ = self.instance.end_run(
                &self.run,
                Outcome::errored(
                    "the run context was dropped without finish() (a panic or an early return)",
                ),
            );
        }
    }
}

impl Instance {
    /// The uid of the run this process links artifacts to: one started by
    /// `track` in this process for this instance, else the one named by
    /// `LABMESH_RUN` (set by `labmesh run` for its command). Links are only
    /// recorded while that run is `running` in this instance.
    pub fn current_run(&self) -> Option<String> {
        if UNLINKED.get() {
            return None;
        }
        active_run(self.uid())
            .filter(|r| !r.is_empty())
            .or_else(|| {
                std::env::var(RUN_ENV)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
    }

    /// Starts a run of a transform and makes it this process's current run:
    /// until it ends, artifacts read with `cache` are linked as its inputs
    /// and artifacts saved as its outputs. One transaction for the
    /// transform version, the run and its declared inputs (the source is
    /// saved just before, as an ordinary, idempotent save).
    pub fn track(&self, opts: &TrackOptions) -> Result<RunContext<'_>> {
        let (key, source_path) = self.transform_key(opts)?;
        let kind = opts.kind.unwrap_or_else(|| match &source_path {
            Some(p) => command::kind_of(p),
            None => TransformKind::Command,
        });
        let inputs: Vec<Artifact> = opts
            .inputs
            .iter()
            .map(|q| self.get(q))
            .collect::<Result<_>>()?;
        let parent = self.current_run();
        {
            let mut runs = active();
            if let Some((_, uid)) = runs.iter().find(|(i, _)| i == self.uid()) {
                return Err(Error::InvalidArgument(format!(
                    "run {uid} is already being tracked in this process; finish it \
                     (`RunContext::finish`) before starting another"
                )));
            }
            runs.push((self.uid().to_string(), String::new()));
        }
        let started = self.start_run(&key, kind, source_path.as_deref(), parent, &inputs, opts);
        let mut runs = active();
        runs.retain(|(i, r)| !(i == self.uid() && r.is_empty()));
        let run = started?;
        runs.push((self.uid().to_string(), run.uid.clone()));
        Ok(RunContext {
            instance: self,
            run,
            ended: false,
        })
    }

    fn start_run(
        &self,
        key: &str,
        kind: TransformKind,
        source_path: Option<&Path>,
        parent: Option<String>,
        inputs: &[Artifact],
        opts: &TrackOptions,
    ) -> Result<Run> {
        let source = match source_path {
            Some(p) => Some(self.store_source(key, p)?),
            None => None,
        };
        let mut environment = command::environment(self.user());
        environment.extend(opts.environment.clone());
        let params = opts
            .params
            .clone()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let transform_id =
            self.transform_version(&tx, key, kind, source.as_ref(), opts.description.as_deref())?;
        let parent_id: Option<i64> = match parent {
            Some(p) => tx
                .prepare_cached("SELECT id FROM run WHERE uid = ?1 AND status = 'running'")
                .and_then(|mut s| s.query_row([p], |r| r.get(0)).optional())
                .db(&db)?,
            None => None,
        };
        let uid = uid::random(RUN_UID_LEN);
        let owner = Owner::current();
        tx.prepare_cached(
            "INSERT INTO run (uid, transform_id, parent_id, params, environment, status, started_at,
                              owner_pid, owner_start, owner_boot, owner_host, created_by, origin_id)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .and_then(|mut s| {
            s.execute(params![
                uid,
                transform_id,
                parent_id,
                params.to_string(),
                Value::Object(environment).to_string(),
                now_ms(),
                owner.pid,
                owner.start,
                owner.boot,
                owner.host,
                self.user_id,
                self.self_node_id,
            ])
        })
        .db(&db)?;
        let run_id = tx.last_insert_rowid();
        for a in inputs {
            // A new run has no outputs yet: no input can close a cycle.
            self.insert_input(&tx, run_id, a.id)?;
        }
        tx.commit().db(&db)?;
        self.run_by_id(run_id)
    }

    /// The transform key and the source's path for `opts`.
    fn transform_key(&self, opts: &TrackOptions) -> Result<(String, Option<PathBuf>)> {
        let source = match &opts.source {
            Some(p) => Some(std::fs::canonicalize(p).map_err(|e| Error::io("reading", p, e))?),
            None => None,
        };
        let key = match (&opts.key, &source) {
            (Some(k), _) => k.trim().trim_end_matches('/').to_string(),
            (None, Some(src)) => command::key_inside(src, self.root())?.ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{} is outside the instance at {}: a transform is keyed by its path inside \
                     the instance, so labmesh cannot name or version this one\n  \
                     hint: move or copy it into the instance, or name it with `--key NAME` \
                     (library: `TrackOptions::key`)",
                    src.display(),
                    self.root().display()
                ))
            })?,
            (None, None) => {
                return Err(Error::InvalidArgument(
                    "a run needs a transform: give a key (`TrackOptions::key`) or a source file \
                     (`TrackOptions::source`)"
                        .into(),
                ));
            }
        };
        validate_key(&key)?;
        Ok((key, source))
    }

    /// Ends a running run: saves its report, records status and timing.
    /// Outputs linked so far stay linked, whatever the status.
    pub(crate) fn end_run(&self, run: &Run, outcome: Outcome) -> Result<Run> {
        deactivate(self.uid(), &run.uid);
        let mut notes = outcome.notes;
        let status = match outcome.status {
            RunStatus::Running => {
                notes.push("ended with status \"running\"; recorded as errored".into());
                RunStatus::Errored
            }
            s => s,
        };
        let report_id = match &outcome.report {
            Some(path) => {
                let suffix = suffix_of(&path.file_name().unwrap_or_default().to_string_lossy());
                let opts = SaveOptions {
                    key: Some(format!("{REPORT_PREFIX}{}{suffix}", run.uid)),
                    description: Some(format!("output of run {} ({})", run.uid, run.transform.key)),
                    ..SaveOptions::default()
                };
                // A record of its own: two runs that print the same, or a
                // run that prints a saved file, must not share a report.
                match without_linking(|| self.save_own_record(path, &opts)) {
                    Ok(saved) => Some(saved.artifact.id),
                    Err(e) => {
                        notes.push(format!("the captured output could not be saved: {e}"));
                        None
                    }
                }
            }
            None => None,
        };
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let current: Option<Option<String>> = tx
            .prepare_cached("SELECT notes FROM run WHERE id = ?1 AND status = 'running'")
            .and_then(|mut s| s.query_row([run.id], |r| r.get(0)).optional())
            .db(&db)?;
        if let Some(existing) = current {
            let mut all: Vec<Value> = existing
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            for note in notes {
                if !all.iter().any(|n| note_text(n) == note) {
                    all.push(Value::String(note));
                }
            }
            let notes_json = (!all.is_empty()).then(|| Value::Array(all).to_string());
            tx.prepare_cached(
                "UPDATE run SET status = ?2, finished_at = max(?3, started_at), exit_code = ?4,
                     signal = ?5, error = ?6, report_id = ?7, notes = ?8,
                     environment = json_patch(environment, ?9)
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run.id,
                    status.as_str(),
                    outcome.finished_at.unwrap_or_else(now_ms),
                    outcome.exit_code,
                    outcome.signal,
                    outcome.error,
                    report_id,
                    notes_json,
                    Value::Object(outcome.environment).to_string(),
                ])
            })
            .db(&db)?;
        }
        tx.commit().db(&db)?;
        self.run_by_id(run.id)
    }
}
