//! Schema migrations: numbered SQL files in `migrations/`, embedded at build
//! time and applied in order, each inside the same transaction as the
//! version bump. `PRAGMA user_version` records the schema version; the
//! `schema_migration` table records when each step ran.

use std::path::Path;

use rusqlite::Connection;

use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};

/// One migration: its version (the file's number), name and SQL.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migrations {
    ($($version:literal => $file:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $file,
            sql: include_str!(concat!("../../../migrations/", $file, ".sql")),
        }),*]
    };
}

/// Every migration this binary knows, in order. Add new files at the end.
pub const MIGRATIONS: &[Migration] = migrations![
    1 => "0001_core",
    2 => "0002_objects",
    3 => "0003_access",
    4 => "0004_registries",
    5 => "0005_provenance",
    6 => "0006_sync",
    7 => "0007_registries_fixes",
];

/// The schema version this binary writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The schema version recorded in the database.
pub fn current_version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .db(path)
}

/// Brings the schema up to this binary's version. Fails without changing
/// anything when the database is newer than the binary.
pub fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    migrate_to(conn, path, latest_version())
}

/// Like `migrate`, for the database of an existing instance: one without
/// any schema (version 0) is damaged, not new, and is left untouched.
pub fn migrate_existing(conn: &Connection, path: &Path) -> Result<()> {
    let found = current_version(conn, path).map_err(|e| crate::db::damaged_or(path, e))?;
    if found == 0 {
        return Err(Error::DamagedDatabase {
            path: path.to_path_buf(),
            reason: "it holds no labmesh schema".into(),
        });
    }
    migrate(conn, path).map_err(|e| crate::db::damaged_or(path, e))
}

/// Applies the migrations up to and including `target` (tests use this to
/// build databases as an older labmesh would have left them).
pub fn migrate_to(conn: &Connection, path: &Path, target: i64) -> Result<()> {
    let found = current_version(conn, path)?;
    if found > latest_version() {
        return Err(Error::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: latest_version(),
        });
    }
    if found >= target {
        return Ok(());
    }
    let tx = write_txn(conn).db(path)?;
    // Re-read under the write lock: another process may have migrated meanwhile.
    let found = current_version(&tx, path)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migration (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT;",
    )
    .db(path)?;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        tx.execute_batch(m.sql).db(path)?;
        tx.execute(
            "INSERT INTO schema_migration (version, name, applied_at) VALUES (?1, ?2, ?3)",
            (m.version, m.name, crate::time::now_ms()),
        )
        .db(path)?;
        tx.pragma_update(None, "user_version", m.version).db(path)?;
    }
    tx.commit().db(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{} is out of order", m.name);
            let number: i64 = m.name[..4]
                .parse()
                .expect("migration files start with 4 digits");
            assert_eq!(number, m.version, "{} has the wrong number", m.name);
        }
    }

    #[test]
    fn every_file_in_migrations_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(files, embedded, "add new migration files to MIGRATIONS");
    }

    #[test]
    fn a_newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = crate::db::open(&path, true).unwrap();
        migrate(&conn, &path).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 5)
            .unwrap();
        let err = migrate(&conn, &path).unwrap_err();
        assert!(matches!(err, Error::SchemaTooNew { found, .. } if found == latest_version() + 5));
        assert!(err.to_string().contains("upgrade labmesh"));
        assert_eq!(current_version(&conn, &path).unwrap(), latest_version() + 5);
    }
}
