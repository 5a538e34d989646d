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
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{DbContext, Error, Result};

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
         PRAGMA cache_size = -32768;
         PRAGMA wal_autocheckpoint = 4000;",
    )
    .db(path)?;
    // wal_autocheckpoint: 16 MiB of WAL between checkpoints instead of 4:
    // a sync apply or a bulk save rewrites the same index pages in many
    // transactions, and each checkpoint copies (and fsyncs) them again.
    // The bundled SQLite is built with STAT4, which otherwise re-plans a
    // cached statement whenever a bound value changes: 10x the cost of a
    // lookup with joins. Our queries are written for their indexes, so a
    // stable plan is what we want anyway.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .db(path)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Opens an existing instance's database. Never creates one: a missing,
/// empty or unreadable file is a damaged instance, reported as such, and
/// left exactly as it was found (no schema is built over it).
pub fn open_existing(path: &Path) -> Result<Connection> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io("opening", path, e))?
        .len();
    if len == 0 {
        return Err(Error::DamagedDatabase {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    open(path, false).map_err(|e| damaged_or(path, e))
}

/// Reports SQLite's "not a database" and "malformed" (and a missing
/// identity row) as a damaged database; other errors pass through.
pub fn damaged_or(path: &Path, e: impl Into<DbFailure>) -> Error {
    let source = match e.into() {
        DbFailure::Error(Error::Database { source, .. }) | DbFailure::Sqlite(source) => source,
        DbFailure::Error(other) => return other,
    };
    let reason = match &source {
        rusqlite::Error::QueryReturnedNoRows => {
            Some("its instance or node record is missing".to_string())
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) =>
        {
            Some(source.to_string())
        }
        _ => None,
    };
    match reason {
        Some(reason) => Error::DamagedDatabase {
            path: path.to_path_buf(),
            reason,
        },
        None => Error::Database {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Either kind of failure `damaged_or` classifies.
pub enum DbFailure {
    Error(Error),
    Sqlite(rusqlite::Error),
}

impl From<Error> for DbFailure {
    fn from(e: Error) -> Self {
        DbFailure::Error(e)
    }
}

impl From<rusqlite::Error> for DbFailure {
    fn from(e: rusqlite::Error) -> Self {
        DbFailure::Sqlite(e)
    }
}

/// Starts a write transaction that takes the write lock at once, so a
/// read-then-write inside it cannot race another process.
pub fn write_txn(conn: &Connection) -> rusqlite::Result<Transaction<'_>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}
