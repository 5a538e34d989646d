//! Runs whose recording process died: found `running` by `runs`, `lineage`
//! or a link, they are ended as errored, once, with a sentence saying why.
//! The recorded end is the run's last sign of life (its newest link), not
//! the moment it was found.

use rusqlite::{Connection, OptionalExtension, params};

use crate::db::write_txn;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::provenance::owner::{Liveness, Owner};

/// Environment key naming what recorded a run (`labmesh run` sets it).
pub(crate) const RECORDED_BY: &str = "recorded_by";

/// A running run and its owner, as stored.
struct Candidate {
    id: i64,
    owner: Option<Owner>,
    recorded_by: Option<String>,
}

const CANDIDATE: &str = "SELECT id, owner_pid, owner_start, owner_boot, owner_host,
        json_extract(environment, '$.recorded_by')
     FROM run WHERE status = 'running'";

fn candidate(r: &rusqlite::Row<'_>) -> rusqlite::Result<Candidate> {
    let pid: Option<i64> = r.get(1)?;
    Ok(Candidate {
        id: r.get(0)?,
        owner: match pid {
            Some(pid) => Some(Owner {
                pid: pid as u32,
                start: r.get(2)?,
                boot: r.get(3)?,
                host: r.get(4)?,
            }),
            None => None,
        },
        recorded_by: r.get(5)?,
    })
}

/// Why the run was ended, when its owner is gone.
fn verdict(c: &Candidate) -> Option<String> {
    let owner = c.owner.as_ref()?;
    if owner.liveness() != Liveness::Dead {
        return None;
    }
    Some(match c.recorded_by.as_deref() {
        Some(wrapper) => format!(
            "{wrapper} (pid {}) died before its command ended, so the run's outcome is unknown",
            owner.pid
        ),
        None => format!(
            "the process that tracked the run (pid {}) died without ending it",
            owner.pid
        ),
    })
}

impl Instance {
    /// Ends the running run `run_id` if its recording process died, and
    /// says why. Runs inside the caller's write transaction.
    pub(crate) fn end_if_orphaned(&self, conn: &Connection, run_id: i64) -> Result<Option<String>> {
        let found = conn
            .prepare_cached(&format!("{CANDIDATE} AND id = ?1"))
            .and_then(|mut s| s.query_row([run_id], candidate).optional())
            .db(&self.db_path())?;
        let Some(why) = found.as_ref().and_then(verdict) else {
            return Ok(None);
        };
        self.end_orphan(conn, run_id, &why)?;
        Ok(Some(why))
    }

    /// Ends every running run whose recording process died; returns how
    /// many. Costs one indexed read when no run is running.
    pub fn end_orphaned_runs(&self) -> Result<usize> {
        let db = self.db_path();
        let running: Vec<Candidate> = self
            .conn
            .prepare_cached(CANDIDATE)
            .and_then(|mut s| s.query_map([], candidate)?.collect())
            .db(&db)?;
        let dead: Vec<(i64, String)> = running
            .iter()
            .filter_map(|c| verdict(c).map(|why| (c.id, why)))
            .collect();
        if dead.is_empty() {
            return Ok(0);
        }
        let tx = write_txn(&self.conn).db(&db)?;
        let mut ended = 0;
        for (id, _) in &dead {
            // Re-checked under the write lock: its owner may have ended it meanwhile.
            if self.end_if_orphaned(&tx, *id)?.is_some() {
                ended += 1;
            }
        }
        tx.commit().db(&db)?;
        Ok(ended)
    }

    /// `end_orphaned_runs` for commands that only read: a database they
    /// cannot write (read-only files) must not stop them from reading.
    pub(crate) fn end_orphaned_runs_if_possible(&self) {
        let _ = self.end_orphaned_runs();
    }

    fn end_orphan(&self, conn: &Connection, run_id: i64, why: &str) -> Result<()> {
        let note = format!("{why}; what its command read or saved afterwards was not linked");
        self.add_note(conn, run_id, &note, false)?;
        conn.prepare_cached(
            "UPDATE run SET status = 'errored', error = ?2,
                 finished_at = max(started_at,
                     coalesce((SELECT max(linked_at) FROM run_input WHERE run_id = ?1), 0),
                     coalesce((SELECT max(linked_at) FROM run_output WHERE run_id = ?1), 0))
             WHERE id = ?1 AND status = 'running'",
        )
        .and_then(|mut s| s.execute(params![run_id, why]))
        .map(|_| ())
        .db(&self.db_path())
    }
}
