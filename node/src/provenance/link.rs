//! Links between runs and artifacts: the hooks `cache` and `save` call,
//! explicit links, and the cycle checks that keep lineage acyclic.
//!
//! Reads link in one small transaction of their own; saves link inside
//! the save's transaction. Without a current run, a hook costs a check of
//! a process-local list and one environment variable: no SQL at all.
//!
//! A link closes a cycle when there is already a path the other way: a
//! run may not read what derives from it (a path run → … → artifact), nor
//! produce what it derives from (artifact → … → run). Each check walks the
//! lineage from both ends, one after the other, each walk stopping after
//! [`WALK_BUDGET`] runs: if either walk finishes inside the budget, the
//! answer is exact. Only when both ends have more lineage than that (an
//! artifact read by a hundred runs, re-produced by a run with a hundred
//! runs of history) is the link refused unproven, with a note saying so —
//! a bound on the time a save holds the write lock, whatever the history:
//! each walk reads at most `WALK_BUDGET` runs, and each of its steps at
//! most `WALK_BUDGET + 1` readers, outputs, inputs or producers of one
//! node (the `provenance` bench measures it at a 200,000-run chain). Exact answers at any size would need a reachability index
//! that every re-produced output of a popular artifact rewrites, which
//! costs as much as the walk it saves. Brand-new artifacts need no check:
//! nothing has read them yet.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::artifact::{Artifact, SaveStatus, Saved};
use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::provenance::Run;
use crate::time::now_ms;

/// Runs walked from each end of a would-be link before giving up.
pub const WALK_BUDGET: i64 = 100;

// The walks below are recursive CTEs over the link tables' indexes. A
// CTE's LIMIT stops it after that many rows, but one step can still add
// every reader of an artifact (or every output of a run) at once, so each
// step reads at most ?3 + 1 of them: the `<= (… OFFSET ?3)` bounds make a
// range scan of the index. A capped step yields more than ?3 rows, so the
// walk reaches its LIMIT and counts as unfinished: a cap never hides a path.

/// Runs downstream of run ?1 (itself included), at most ?3; whether one of
/// them wrote artifact ?2.
const FORWARD_FROM_RUN: &str = "WITH RECURSIVE down(run_id) AS (
        SELECT ?1
        UNION
        SELECT i.run_id FROM down d
        JOIN run_output o ON o.run_id = d.run_id AND o.artifact_id <= coalesce(
            (SELECT artifact_id FROM run_output WHERE run_id = d.run_id
             ORDER BY artifact_id LIMIT 1 OFFSET ?3), 9223372036854775807)
        JOIN run_input i ON i.artifact_id = o.artifact_id AND i.run_id <= coalesce(
            (SELECT run_id FROM run_input WHERE artifact_id = o.artifact_id
             ORDER BY run_id LIMIT 1 OFFSET ?3), 9223372036854775807)
        LIMIT ?3
    )
    SELECT count(*), coalesce(max(EXISTS (SELECT 1 FROM run_output o
                                           WHERE o.run_id = down.run_id AND o.artifact_id = ?2)), 0)
    FROM down";

/// Runs upstream of artifact ?2 (its producers, theirs, …), at most ?3;
/// whether run ?1 is one of them.
const BACKWARD_FROM_ARTIFACT: &str = "WITH RECURSIVE up(run_id) AS (
        SELECT run_id FROM (SELECT run_id FROM run_output WHERE artifact_id = ?2
                            ORDER BY run_id LIMIT ?3 + 1)
        UNION
        SELECT o.run_id FROM up u
        JOIN run_input i ON i.run_id = u.run_id AND i.artifact_id <= coalesce(
            (SELECT artifact_id FROM run_input WHERE run_id = u.run_id
             ORDER BY artifact_id LIMIT 1 OFFSET ?3), 9223372036854775807)
        JOIN run_output o ON o.artifact_id = i.artifact_id AND o.run_id <= coalesce(
            (SELECT run_id FROM run_output WHERE artifact_id = i.artifact_id
             ORDER BY run_id LIMIT 1 OFFSET ?3), 9223372036854775807)
        LIMIT ?3
    )
    SELECT count(*), coalesce(max(run_id = ?1), 0) FROM up";

/// Runs downstream of artifact ?2 (its readers, …), at most ?3; whether
/// run ?1 is one of them.
const FORWARD_FROM_ARTIFACT: &str = "WITH RECURSIVE down(run_id) AS (
        SELECT run_id FROM (SELECT run_id FROM run_input WHERE artifact_id = ?2
                            ORDER BY run_id LIMIT ?3 + 1)
        UNION
        SELECT i.run_id FROM down d
        JOIN run_output o ON o.run_id = d.run_id AND o.artifact_id <= coalesce(
            (SELECT artifact_id FROM run_output WHERE run_id = d.run_id
             ORDER BY artifact_id LIMIT 1 OFFSET ?3), 9223372036854775807)
        JOIN run_input i ON i.artifact_id = o.artifact_id AND i.run_id <= coalesce(
            (SELECT run_id FROM run_input WHERE artifact_id = o.artifact_id
             ORDER BY run_id LIMIT 1 OFFSET ?3), 9223372036854775807)
        LIMIT ?3
    )
    SELECT count(*), coalesce(max(run_id = ?1), 0) FROM down";

/// Runs upstream of run ?1 (itself included), at most ?3; whether one of
/// them read artifact ?2.
const BACKWARD_FROM_RUN: &str = "WITH RECURSIVE up(run_id) AS (
        SELECT ?1
        UNION
        SELECT o.run_id FROM up u
        JOIN run_input i ON i.run_id = u.run_id AND i.artifact_id <= coalesce(
            (SELECT artifact_id FROM run_input WHERE run_id = u.run_id
             ORDER BY artifact_id LIMIT 1 OFFSET ?3), 9223372036854775807)
        JOIN run_output o ON o.artifact_id = i.artifact_id AND o.run_id <= coalesce(
            (SELECT run_id FROM run_output WHERE artifact_id = i.artifact_id
             ORDER BY run_id LIMIT 1 OFFSET ?3), 9223372036854775807)
        LIMIT ?3
    )
    SELECT count(*), coalesce(max(EXISTS (SELECT 1 FROM run_input i
                                           WHERE i.run_id = up.run_id AND i.artifact_id = ?2)), 0)
    FROM up";

const IS_DIRECT_INPUT: &str =
    "SELECT EXISTS (SELECT 1 FROM run_input WHERE run_id = ?1 AND artifact_id = ?2)";

/// What the cycle check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cycle {
    No,
    Yes,
    /// Both ends have more lineage than the budget: not proven either way.
    Unproven,
}

/// The current run as a link target.
enum Target {
    Running {
        id: i64,
        uid: String,
    },
    /// The run exists but takes no links; why, in a sentence.
    Ended(String),
    /// No current run, or one this instance does not know.
    None,
}

fn refusal(artifact: &Artifact, run_uid: &str, as_input: bool, cycle: Cycle) -> String {
    let (what, role) = if as_input {
        ("input", "consume what it produced")
    } else {
        ("output", "produce what it consumed")
    };
    match cycle {
        Cycle::Unproven => format!(
            "{} ({}) is not recorded as run {run_uid}'s {what}: proving that the link closes \
             no cycle would walk more than {WALK_BUDGET} runs of lineage from both ends, \
             which labmesh does not do while it holds the write lock",
            artifact.uid,
            artifact.label()
        ),
        _ if as_input => format!(
            "{} ({}) derives from run {run_uid}, so it is not recorded as that run's input: \
             a run cannot {role}",
            artifact.uid,
            artifact.label()
        ),
        _ => format!(
            "{} ({}) is upstream of run {run_uid} (the run read it, or something made from it), \
             so it is not recorded as that run's output: a run cannot {role}",
            artifact.uid,
            artifact.label()
        ),
    }
}

impl Instance {
    /// The current run as a link target. A running run whose recording
    /// process died is ended here (the caller holds the write lock).
    fn link_target(&self, conn: &Connection) -> Result<Target> {
        let Some(uid) = self.current_run() else {
            return Ok(Target::None);
        };
        let found: Option<(i64, String, Option<String>)> = conn
            .prepare_cached("SELECT id, status, error FROM run WHERE uid = ?1")
            .and_then(|mut s| {
                s.query_row([&uid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .db(&self.db_path())?;
        let Some((id, status, error)) = found else {
            return Ok(Target::None);
        };
        if status == "running" {
            return Ok(match self.end_if_orphaned(conn, id)? {
                Some(why) => Target::Ended(format!("run {uid} was ended as errored: {why}")),
                None => Target::Running { id, uid },
            });
        }
        Ok(Target::Ended(match error {
            Some(e) => format!("run {uid} is {status} ({e})"),
            None => format!("run {uid} is {status}"),
        }))
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
        if let Target::Running { id, uid } = self.link_target(&tx)? {
            match self.cycle(&tx, id, artifact.id, true)? {
                Cycle::No => self.insert_input(&tx, id, artifact.id)?,
                cycle => {
                    let note = refusal(artifact, &uid, true, cycle);
                    self.add_note(&tx, id, &note, false)?;
                }
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
        let (run_id, run_uid) = match self.link_target(tx)? {
            Target::Running { id, uid } => (id, uid),
            Target::Ended(why) => {
                for s in saved {
                    s.notices
                        .push(format!("{} is not linked to it: {why}", s.artifact.uid));
                }
                return Ok(());
            }
            Target::None => return Ok(()),
        };
        for s in saved {
            let created = s.status != SaveStatus::Existing;
            if !created {
                let cycle = self.cycle(tx, run_id, s.artifact.id, false)?;
                if cycle != Cycle::No {
                    let message = refusal(&s.artifact, &run_uid, false, cycle);
                    // The caller shows the notice; `labmesh run` need not repeat it.
                    self.add_note(tx, run_id, &message, true)?;
                    s.notices.push(message);
                    continue;
                }
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
        let status: Option<(String, Option<String>)> = tx
            .prepare_cached("SELECT status, error FROM run WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([run.id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .db(&db)?;
        let ended = match status {
            Some((s, _)) if s == "running" => self
                .end_if_orphaned(&tx, run.id)?
                .map(|why| format!("ended as errored: {why}")),
            Some((s, Some(e))) => Some(format!("{s} ({e})")),
            Some((s, None)) => Some(s),
            None => Some("gone".into()),
        };
        if let Some(state) = ended {
            tx.commit().db(&db)?; // keeps the end of an orphaned run
            return Err(Error::InvalidArgument(format!(
                "run {} is {state}: inputs and outputs are recorded only while a run is running",
                run.uid
            )));
        }
        let cycle = self.cycle(&tx, run.id, artifact.id, as_input)?;
        if cycle != Cycle::No {
            let hint = if cycle == Cycle::Unproven {
                "if the link is right, record it in a run with less history"
            } else {
                "save the data as a new artifact, or record it in a new run"
            };
            return Err(Error::InvalidArgument(format!(
                "refused: {}\n  hint: {hint}",
                refusal(&artifact, &run.uid, as_input, cycle)
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

    /// Whether linking the artifact to the run (as an input, or as an
    /// output) would close a cycle. See the module doc.
    fn cycle(
        &self,
        conn: &Connection,
        run_id: i64,
        artifact_id: i64,
        as_input: bool,
    ) -> Result<Cycle> {
        // A run's own descendants are few while it runs; an artifact's
        // readers usually are too. Those ends first.
        let (first, second) = if as_input {
            (FORWARD_FROM_RUN, BACKWARD_FROM_ARTIFACT)
        } else {
            if self.exists(conn, IS_DIRECT_INPUT, run_id, artifact_id)? {
                return Ok(Cycle::Yes);
            }
            (FORWARD_FROM_ARTIFACT, BACKWARD_FROM_RUN)
        };
        let mut outcome = Cycle::No;
        for sql in [first, second] {
            let (walked, found): (i64, bool) = conn
                .prepare_cached(sql)
                .and_then(|mut s| {
                    s.query_row(params![run_id, artifact_id, WALK_BUDGET], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                })
                .db(&self.db_path())?;
            if found {
                return Ok(Cycle::Yes); // a path found in part of the lineage is a path
            }
            if walked < WALK_BUDGET {
                return Ok(Cycle::No); // this end's whole lineage, and no path
            }
            outcome = Cycle::Unproven;
        }
        Ok(outcome)
    }

    fn exists(&self, conn: &Connection, sql: &str, run_id: i64, artifact_id: i64) -> Result<bool> {
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

    /// Adds a sentence to a run's notes (once). `shown`: the caller hands
    /// it to the user already (a save's notice), so `labmesh run` need not
    /// repeat it at the end.
    pub(crate) fn add_note(
        &self,
        conn: &Connection,
        run_id: i64,
        note: &str,
        shown: bool,
    ) -> Result<()> {
        let db = self.db_path();
        let current: Option<String> = conn
            .prepare_cached("SELECT notes FROM run WHERE id = ?1")
            .and_then(|mut s| s.query_row([run_id], |r| r.get(0)))
            .db(&db)?;
        let mut notes: Vec<Value> = current
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if notes.iter().any(|n| note_text(n) == note) {
            return Ok(());
        }
        notes.push(if shown {
            serde_json::json!({ "note": note, "shown": true })
        } else {
            Value::String(note.to_string())
        });
        conn.prepare_cached("UPDATE run SET notes = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![run_id, Value::Array(notes).to_string()]))
            .map(|_| ())
            .db(&db)
    }
}

/// The sentence of a stored note: a string, or `{"note": …, "shown": true}`.
pub(crate) fn note_text(note: &Value) -> &str {
    match note {
        Value::String(s) => s,
        Value::Object(o) => o.get("note").and_then(Value::as_str).unwrap_or_default(),
        _ => "",
    }
}

/// Whether a stored note was already handed to the user by a save.
pub(crate) fn note_shown(note: &Value) -> bool {
    note.get("shown").and_then(Value::as_bool).unwrap_or(false)
}
