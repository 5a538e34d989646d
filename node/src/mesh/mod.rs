//! The node side of sync: it drives `labmesh_sync`'s engine over SQLite.
//!
//! - `store`: the engine's reads, over the sync tables.
//! - `records`: records as documents, documents back as rows.
//! - `access`: read and write rights from capability tokens.
//! - here: applying the engine's effects in the caller's transaction,
//!   local writes of shared records, sharing, conflicts.
//!
//! Records that are not in a shared scope never reach the engine: the
//! only cost a save of an unshared record pays is one indexed look-up in
//! `share`.

pub mod access;
mod apply;
mod conflicts;
pub mod records;
mod revalidate;
pub mod revocation;
pub mod session;
mod share;
pub mod status;
pub mod store;
mod write;

use std::cell::RefCell;

use labmesh_sync::{Config, Engine, FieldValue, LocalWrite, Outgoing, RecordUid, ScopeId};
use rusqlite::Connection;
use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::time::now_ms;
use store::SqlStore;

/// A scope this node shares or subscribes to.
#[derive(Clone, Debug, Serialize)]
pub struct ShareInfo {
    pub scope: String,
    pub owner: String,
    /// The peer this node subscribes through (`None`: its own scope).
    pub subscribed_from: Option<String>,
    pub records: u64,
    pub conflicted: u64,
}

/// A record with concurrently written values.
#[derive(Clone, Debug, Serialize)]
pub struct ConflictInfo {
    pub scope: String,
    pub uid: String,
    pub field: String,
    /// Every value written concurrently, rendered as text.
    pub values: Vec<String>,
    /// The value every replica shows until someone resolves.
    pub winner: String,
}

/// Shared writes collected by `batch_shared`.
#[derive(Default)]
pub struct Pending(pub RefCell<Option<Vec<LocalWrite>>>);

/// Messages local writes produced, for a daemon to send (a CLI process
/// has no connections; peers catch up through anti-entropy).
#[derive(Default)]
pub struct Outbox(pub RefCell<Vec<Outgoing>>);

pub(crate) fn parse_scope(text: &str) -> Result<ScopeId> {
    ScopeId::new(text.trim()).map_err(|e| Error::InvalidArgument(format!("{e}")))
}

fn field_text(v: &FieldValue) -> String {
    match v {
        FieldValue::Null => "null".into(),
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::F64(f) => f.to_string(),
        FieldValue::Str(s) | FieldValue::Text(s) => s.clone(),
        FieldValue::Bytes(b) => format!("{} bytes", b.len()),
    }
}

impl Instance {
    /// The sync engine of this node, resuming from the stored feed head.
    pub fn sync_engine(&self, conn: &Connection) -> Result<Engine> {
        let key = self.node_key()?;
        Engine::new(key, Config::default(), &SqlStore { conn })
            .map_err(|e| Error::InvalidArgument(format!("sync store: {e}")))
    }

    /// Runs `f` with shared writes collected, then writes them all in one
    /// engine call (one signed batch per scope) in `conn`'s transaction.
    pub(crate) fn batch_shared<T>(
        &self,
        conn: &Connection,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let outer = self.pending.0.borrow().is_some();
        if !outer {
            *self.pending.0.borrow_mut() = Some(Vec::new());
        }
        let result = f();
        if outer {
            return result;
        }
        let writes = self.pending.0.borrow_mut().take().unwrap_or_default();
        let value = result?;
        self.write_shared(conn, writes)?;
        Ok(value)
    }

    /// Writes local edits of shared records inside `conn`'s transaction.
    pub(crate) fn write_shared(&self, conn: &Connection, writes: Vec<LocalWrite>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        if let Some(pending) = self.pending.0.borrow_mut().as_mut() {
            pending.extend(writes);
            return Ok(());
        }
        let mut engine = self.sync_engine(conn)?;
        let access = self.sync_access(conn)?;
        let store = SqlStore { conn };
        let written = engine
            .write(now_ms() as u64, &writes, &store, &*access)
            .map_err(|e| Error::InvalidArgument(format!("sync: {e}")))?;
        let messages = self.apply_sync_output(conn, written.output)?;
        self.outbox.0.borrow_mut().extend(messages);
        Ok(())
    }

    /// Whether this node shares or subscribes to anything (one look-up).
    pub(crate) fn shares_anything(&self, conn: &Connection) -> Result<bool> {
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM share)")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .db(&self.db_path())
    }

    /// Messages produced by local writes since the last call.
    pub fn take_outbox(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.outbox.0.borrow_mut())
    }
}

/// Small look-ups on the sync tables.
pub(crate) struct SqlStoreExt;

impl SqlStoreExt {
    pub(crate) fn has_document(
        conn: &Connection,
        scope: &ScopeId,
        uid: &RecordUid,
    ) -> rusqlite::Result<bool> {
        conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sync_document WHERE scope = ?1 AND uid = ?2)",
        )?
        .query_row([scope.as_str(), uid.as_str()], |r| r.get(0))
    }
}
