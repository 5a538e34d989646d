//! Links between runs and artifacts: the hooks `cache` and `save` call,
//! explicit links, and the cycle checks that keep lineage acyclic.
//!
//! Reads link in one small transaction of their own; saves link inside
//! the save's transaction. Without a current run, a hook costs a check of
//! a process-local list and one environment variable: no SQL at all.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::artifact::{Artifact, SaveStatus, Saved};
use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::provenance::Run;
use crate::time::now_ms;

/// Is the artifact downstream of the run (an output of it, or of a run
/// that read one of its outputs, …)? Then it cannot become the run's input.
const DERIVES_FROM_RUN: &str = "WITH RECURSIVE down(run_id) AS (
        SELECT ?1
        UNION
        SELECT i.run_id FROM down d
        JOIN run_output o ON o.run_id = d.run_id
        JOIN run_input i ON i.artifact_id = o.artifact_id
    )
    SELECT EXISTS (SELECT 1 FROM down d JOIN run_output o ON o.run_id = d.run_id
                   WHERE o.artifact_id = ?2)";

/// Is the artifact upstream of the run (an input of it, or of a run that
/// produced one of its inputs, …)? Then it cannot become the run's output.
/// Asked from both ends, smaller side first: the artifact's descendants,
/// walked up to a budget (usually few: a re-produced output is rarely read
/// yet), else the run's ancestors (its inputs' lineage).
const IS_DIRECT_INPUT: &str =
    "SELECT EXISTS (SELECT 1 FROM run_input WHERE run_id = ?1 AND artifact_id = ?2)";

/// (runs walked, whether the run is among them), downstream of ?2, at most ?3 runs.
const DOWNSTREAM_OF_ARTIFACT: &str = "WITH RECURSIVE down(run_id) AS (
        SELECT run_id FROM run_input WHERE artifact_id = ?2
        UNION
        SELECT i.run_id FROM down d
        JOIN run_output o ON o.run_id = d.run_id
        JOIN run_input i ON i.artifact_id = o.artifact_id
        LIMIT ?3
    )
    SELECT count(*), coalesce(max(run_id = ?1), 0) FROM down";

const RUN_DERIVES_FROM: &str = "WITH RECURSIVE up(run_id) AS (
        SELECT ?1
        UNION
        SELECT o.run_id FROM up u
        JOIN run_input i ON i.run_id = u.run_id
        JOIN run_output o ON o.artifact_id = i.artifact_id
    )
    SELECT EXISTS (SELECT 1 FROM up u JOIN run_input i ON i.run_id = u.run_id
                   WHERE i.artifact_id = ?2)";

/// How many runs downstream of an artifact to walk before asking the other way.
const DOWNSTREAM_BUDGET: i64 = 256;

fn cycle_message(artifact: &Artifact, run_uid: &str, as_input: bool) -> String {
    if as_input {
        format!(
            "{} ({}) derives from run {run_uid}, so it is not recorded as that run's input: \
             a run cannot consume what it produced",
            artifact.uid,
            artifact.label()
        )
    } else {
        format!(
            "{} ({}) is upstream of run {run_uid} (the run read it, or something made from it), \
             so it is not recorded as that run's output: a run cannot produce what it consumed",
            artifact.uid,
            artifact.label()
        )
    }
}

impl Instance {
    /// The current run, if it exists in this instance and is running.
    fn running_run(&self, conn: &Connection) -> Result<Option<(i64, String)>> {
        let Some(uid) = self.current_run() else {
            return Ok(None);
        };
        let id: Option<i64> = conn
            .prepare_cached("SELECT id FROM run WHERE uid = ?1 AND status = 'running'")
            .and_then(|mut s| s.query_row([&uid], |r| r.get(0)).optional())
            .db(&self.db_path())?;
        Ok(id.map(|id| (id, uid)))
    }

    /// Hook in `cache`: links a read artifact as an input of the current
    /// run. A read that would close a cycle is not linked; the run's notes
    /// say so.
    pub(crate) fn record_input(&self, artifact: &Artifact) -> Result<()> {
        if self.current_run().is_none() {
            return Ok(());
        }
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        if let Some((run_id, run_uid)) = self.running_run(&tx)? {
            if self.check(&tx, DERIVES_FROM_RUN, run_id, artifact.id)? {
                self.add_note(&tx, run_id, &cycle_message(artifact, &run_uid, true))?;
            } else {
                self.insert_input(&tx, run_id, artifact.id)?;
            }
        }
        tx.commit().db(&db)
    }

    /// Hook in `save`, inside its transaction: links saved artifacts as
    /// outputs of the current run. New artifacts are created by it; content
    /// that was already saved is linked as produced again (no duplicate),
    /// unless the run derives from it (a cycle), which a notice explains.
    pub(crate) fn record_outputs<'s>(
        &self,
        tx: &Connection,
        saved: impl IntoIterator<Item = &'s mut Saved>,
    ) -> Result<()> {
        if self.current_run().is_none() {
            return Ok(());
        }
        let Some((run_id, run_uid)) = self.running_run(tx)? else {
            return Ok(());
        };
        for s in saved {
            let created = s.status != SaveStatus::Existing;
            if !created && self.upstream_of_run(tx, run_id, s.artifact.id)? {
                let message = cycle_message(&s.artifact, &run_uid, false);
                self.add_note(tx, run_id, &message)?;
                s.notices.push(message);
                continue;
            }
            self.insert_output(tx, run_id, s.artifact.id, created)?;
        }
        Ok(())
    }

    /// `record_outputs` for a save that found its content already saved
    /// and so has no transaction of its own.
    pub(crate) fn record_output_now(&self, mut saved: Saved) -> Result<Saved> {
        if self.current_run().is_none() {
            return Ok(saved);
        }
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        self.record_outputs(&tx, [&mut saved])?;
        tx.commit().db(&db)?;
        Ok(saved)
    }

    /// Links an artifact as an input of `run`; refused for a cycle.
    pub(crate) fn link_run_input(&self, run: &Run, query: &str) -> Result<Artifact> {
        self.link_explicitly(run, query, true)
    }

    /// Links an artifact as an output of `run` (produced again, not
    /// created); refused for a cycle.
    pub(crate) fn link_run_output(&self, run: &Run, query: &str) -> Result<Artifact> {
        self.link_explicitly(run, query, false)
    }

    fn link_explicitly(&self, run: &Run, query: &str, as_input: bool) -> Result<Artifact> {
        let artifact = self.get(query)?;
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let status: Option<String> = tx
            .prepare_cached("SELECT status FROM run WHERE id = ?1")
            .and_then(|mut s| s.query_row([run.id], |r| r.get(0)).optional())
            .db(&db)?;
        if status.as_deref() != Some("running") {
            return Err(Error::InvalidArgument(format!(
                "run {} is {}: inputs and outputs are recorded only while a run is running",
                run.uid,
                status.as_deref().unwrap_or("gone")
            )));
        }
        let cycle = if as_input {
            self.check(&tx, DERIVES_FROM_RUN, run.id, artifact.id)?
        } else {
            self.upstream_of_run(&tx, run.id, artifact.id)?
        };
        if cycle {
            return Err(Error::InvalidArgument(format!(
                "refused: {}\n  hint: save the data as a new artifact, or record it in a new run",
                cycle_message(&artifact, &run.uid, as_input)
            )));
        }
        if as_input {
            self.insert_input(&tx, run.id, artifact.id)?;
        } else {
            // Linked by hand: produced by the run, not created by it (it was saved before).
            self.insert_output(&tx, run.id, artifact.id, false)?;
        }
        tx.commit().db(&db)?;
        Ok(artifact)
    }

    /// Whether the artifact is upstream of the run (see `RUN_DERIVES_FROM`).
    fn upstream_of_run(&self, conn: &Connection, run_id: i64, artifact_id: i64) -> Result<bool> {
        if self.check(conn, IS_DIRECT_INPUT, run_id, artifact_id)? {
            return Ok(true);
        }
        let (walked, found): (i64, bool) = conn
            .prepare_cached(DOWNSTREAM_OF_ARTIFACT)
            .and_then(|mut s| {
                s.query_row(params![run_id, artifact_id, DOWNSTREAM_BUDGET], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .db(&self.db_path())?;
        if found || walked < DOWNSTREAM_BUDGET {
            return Ok(found);
        }
        self.check(conn, RUN_DERIVES_FROM, run_id, artifact_id)
    }

    fn check(&self, conn: &Connection, sql: &str, run_id: i64, artifact_id: i64) -> Result<bool> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.query_row(params![run_id, artifact_id], |r| r.get(0)))
            .db(&self.db_path())
    }

    pub(crate) fn insert_input(
        &self,
        conn: &Connection,
        run_id: i64,
        artifact_id: i64,
    ) -> Result<()> {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO run_input (run_id, artifact_id, linked_at) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![run_id, artifact_id, now_ms()]))
        .map(|_| ())
        .db(&self.db_path())
    }

    fn insert_output(
        &self,
        conn: &Connection,
        run_id: i64,
        artifact_id: i64,
        created: bool,
    ) -> Result<()> {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO run_output (run_id, artifact_id, created, linked_at)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![run_id, artifact_id, created, now_ms()]))
        .map(|_| ())
        .db(&self.db_path())
    }

    /// Adds a sentence to a run's notes (once).
    fn add_note(&self, conn: &Connection, run_id: i64, note: &str) -> Result<()> {
        let db = self.db_path();
        let current: Option<String> = conn
            .prepare_cached("SELECT notes FROM run WHERE id = ?1")
            .and_then(|mut s| s.query_row([run_id], |r| r.get(0)))
            .db(&db)?;
        let mut notes: Vec<Value> = current
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if notes.iter().any(|n| n.as_str() == Some(note)) {
            return Ok(());
        }
        notes.push(Value::String(note.to_string()));
        conn.prepare_cached("UPDATE run SET notes = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![run_id, Value::Array(notes).to_string()]))
            .map(|_| ())
            .db(&db)
    }
}
