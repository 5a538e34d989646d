//! Opening instances written by older and newer labmesh versions.

use labmesh::db::migrate;
use labmesh::{Error, Instance, SaveOptions};

use crate::Lab;

#[test]
fn an_older_schema_is_migrated_on_open_keeping_its_data() {
    let lab = Lab::new();
    let saved = lab
        .instance
        .save(lab.write("x.txt", "x"), &SaveOptions::default())
        .unwrap()
        .artifact;
    let db_path = lab.root().join(".labmesh/instance.db");
    // Rewind to what the first migration set produced: drop every table a
    // later migration added, and the version, as an old labmesh left the file.
    {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        let v1_tables = [
            "instance",
            "node",
            "user",
            "storage",
            "artifact",
            "schema_migration",
        ];
        // Virtual tables first: dropping one drops its shadow tables.
        for kind in ["CREATE VIRTUAL TABLE%", "%"] {
            let tables: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND sql LIKE ?1")
                .unwrap()
                .query_map([kind], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for t in tables.iter().filter(|t| !v1_tables.contains(&t.as_str())) {
                conn.execute_batch(&format!("DROP TABLE {t}")).unwrap();
            }
        }
        // Columns later migrations added to v1 tables go too: compare with a
        // database built by the first migration alone.
        let reference = lab.dir.path().join("reference-v1.db");
        {
            let r = labmesh::db::open(&reference, true).unwrap();
            migrate::migrate_to(&r, &reference, 1).unwrap();
        }
        let columns = |c: &rusqlite::Connection, t: &str| -> Vec<String> {
            c.prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let r = rusqlite::Connection::open(&reference).unwrap();
        for t in v1_tables {
            let keep = columns(&r, t);
            for extra in columns(&conn, t).into_iter().filter(|c| !keep.contains(c)) {
                conn.execute_batch(&format!("ALTER TABLE {t} DROP COLUMN {extra}"))
                    .unwrap();
            }
        }
        conn.execute_batch(
            "DELETE FROM schema_migration WHERE version > 1; PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let reopened = Instance::open(lab.root()).unwrap();
    assert_eq!(
        reopened.info().unwrap().schema_version,
        migrate::latest_version()
    );
    assert_eq!(reopened.get(&saved.uid).unwrap().hash, saved.hash);
    let applied: i64 = reopened
        .connection()
        .query_row("SELECT count(*) FROM schema_migration", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, migrate::latest_version());
    // And it works: folders need the migrated table.
    lab.write("d/f.txt", "f");
    reopened
        .save(lab.root().join("d"), &SaveOptions::default())
        .unwrap();
}

#[test]
fn a_database_built_by_the_first_migration_set_opens() {
    // Build a v1 database from scratch with only migration 1 applied.
    let lab = Lab::new();
    let db_path = lab.root().join(".labmesh/instance.db");
    let v1 = lab.dir.path().join("v1.db");
    {
        let conn = labmesh::db::open(&v1, true).unwrap();
        migrate::migrate_to(&conn, &v1, 1).unwrap();
        assert_eq!(migrate::current_version(&conn, &v1).unwrap(), 1);
        // Copy the registry rows over so the instance is complete at v1.
        conn.execute_batch(&format!(
            "ATTACH '{}' AS cur;
             INSERT INTO instance SELECT * FROM cur.instance;
             INSERT INTO node (id, peer_id, name, is_self, created_at) SELECT id, peer_id, name, is_self, created_at FROM cur.node;
             INSERT INTO user SELECT * FROM cur.user;
             INSERT INTO storage SELECT * FROM cur.storage;
             DETACH cur;
             PRAGMA wal_checkpoint(TRUNCATE);",
            db_path.display()
        ))
        .unwrap();
    }
    drop(lab.instance);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db_path.display()));
    }
    std::fs::copy(&v1, &db_path).unwrap();
    let inst = Instance::open(lab.dir.path().join("lab")).unwrap();
    assert_eq!(
        inst.info().unwrap().schema_version,
        migrate::latest_version()
    );
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let lab = Lab::new();
    let db_path = lab.root().join(".labmesh/instance.db");
    rusqlite::Connection::open(&db_path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let err = Instance::open(lab.root()).unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found: 999, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade labmesh"), "{err}");
}

#[test]
fn init_refuses_an_existing_instance_and_leaves_no_staging() {
    let lab = Lab::new();
    let err = Instance::init(lab.root(), &Default::default()).unwrap_err();
    assert!(matches!(err, Error::AlreadyAnInstance { .. }), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(lab.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".labmesh.init"))
        .collect();
    assert!(leftovers.is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(lab.root().join(".labmesh/node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the node key is owner-only");
    }
    assert_eq!(
        lab.instance.node_key().unwrap().peer_id().to_string(),
        lab.instance.peer_id()
    );
}
