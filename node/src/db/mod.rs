//! The instance database: one SQLite file in WAL mode with foreign keys on.
//!
//! `synchronous = NORMAL` in WAL mode keeps the database consistent across a
//! power loss but may roll back the last commits; that never leaves a row
//! pointing at missing content, because content is made durable *before* its
//! row is committed (see `storage`).

pub mod migrate;

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{DbContext, Result};

/// Opens (or creates, with `create`) the database and sets per-connection pragmas.
pub fn open(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).db(path)?;
    conn.busy_timeout(Duration::from_secs(10)).db(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;",
    )
    .db(path)?;
    // The bundled SQLite is built with STAT4, which otherwise re-plans a
    // cached statement whenever a bound value changes: 10x the cost of a
    // lookup with joins. Our queries are written for their indexes, so a
    // stable plan is what we want anyway.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .db(path)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Starts a write transaction that takes the write lock at once, so a
/// read-then-write inside it cannot race another process.
pub fn write_txn(conn: &Connection) -> rusqlite::Result<Transaction<'_>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}
