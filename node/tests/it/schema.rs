//! Opening instances written by older and newer labmesh versions.

use labmesh::db::migrate;
use labmesh::{Error, Instance, SaveOptions};

use crate::Lab;

#[test]
fn an_older_schema_is_migrated_on_open_keeping_its_data() {
    let lab = Lab::new();
    let first = lab
        .instance
        .save(
            lab.write("x.txt", "x"),
            &SaveOptions {
                description: Some("the first".into()),
                version: Some("1.0".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .artifact;
    let saved = lab
        .instance
        .save(lab.write("x.txt", "xx"), &SaveOptions::default())
        .unwrap()
        .artifact;
    let before: Vec<labmesh::Artifact> = lab.instance.versions("x.txt").unwrap();
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
    // Every field of every version survived, and the content is reachable.
    assert_eq!(reopened.versions("x.txt").unwrap(), before);
    let latest = reopened.get("x.txt").unwrap();
    assert_eq!(latest.uid, saved.uid);
    assert_eq!(latest.revises.as_deref(), Some(first.uid.as_str()));
    let old = reopened.get(&first.uid).unwrap();
    assert_eq!(
        (
            old.description.as_deref(),
            old.version.as_deref(),
            old.is_latest
        ),
        (Some("the first"), Some("1.0"), false)
    );
    assert_eq!(
        std::fs::read(reopened.cache(&first.uid).unwrap().path).unwrap(),
        b"x"
    );
    assert_eq!(
        std::fs::read(reopened.cache("x.txt").unwrap().path).unwrap(),
        b"xx"
    );
    assert_eq!(reopened.user(), "ada");
    assert_eq!(reopened.peer_id(), lab.instance.peer_id());
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

#[test]
fn an_empty_or_damaged_database_is_refused_and_left_as_it_is() {
    let lab = Lab::new();
    let db_path = lab.root().join(".labmesh/instance.db");
    drop(lab.instance);
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db_path.display()));
    }
    // Emptied (`: > instance.db`): no schema is built over it.
    std::fs::write(&db_path, b"").unwrap();
    let err = Instance::open(lab.dir.path().join("lab")).unwrap_err();
    assert!(matches!(err, Error::DamagedDatabase { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("empty or damaged") && msg.contains("backup"),
        "{msg}"
    );
    assert_eq!(std::fs::metadata(&db_path).unwrap().len(), 0, "untouched");
    // Overwritten with something that is not a database.
    std::fs::write(&db_path, vec![b'x'; 8192]).unwrap();
    let err = Instance::open(lab.dir.path().join("lab")).unwrap_err();
    assert!(matches!(err, Error::DamagedDatabase { .. }), "{err}");
    assert_eq!(std::fs::read(&db_path).unwrap(), vec![b'x'; 8192]);
}

#[test]
fn a_moved_or_copied_instance_uses_its_own_storage() {
    let lab = Lab::new();
    let a = lab
        .instance
        .save(lab.write("a.csv", "a,b\n"), &SaveOptions::default())
        .unwrap()
        .artifact;
    lab.write("run/x.txt", "x");
    let folder = lab
        .instance
        .save(lab.root().join("run"), &SaveOptions::default())
        .unwrap()
        .artifact;
    lab.instance.cache(&folder.uid).unwrap();
    let old_root = lab.root();
    drop(lab.instance);
    let config = std::fs::read_to_string(old_root.join(".labmesh/config.toml")).unwrap();
    assert!(
        config.contains("default = \".labmesh/storage\""),
        "recorded relative to the instance: {config}"
    );

    let moved = lab.dir.path().join("elsewhere/lab");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&old_root, &moved).unwrap();
    let inst = Instance::open(&moved).unwrap();
    assert!(
        inst.default_storage()
            .url
            .starts_with(&format!("file://{}", moved.display())),
        "{:?}",
        inst.default_storage()
    );
    let path = inst.cache(&a.uid).unwrap().path;
    assert!(path.starts_with(&moved), "{}", path.display());
    assert_eq!(std::fs::read(&path).unwrap(), b"a,b\n");
    assert!(inst.cache(&folder.uid).unwrap().path.starts_with(&moved));
    std::fs::write(moved.join("b.csv"), "new").unwrap();
    let b = inst
        .save(moved.join("b.csv"), &SaveOptions::default())
        .unwrap();
    assert!(
        inst.location(&b.artifact)
            .unwrap()
            .starts_with(&moved.display().to_string()),
        "saved into the instance where it is now"
    );
    assert!(!old_root.exists(), "the old location was not recreated");
}

#[test]
fn an_absolute_storage_path_left_by_an_older_labmesh_is_rerecorded() {
    let lab = Lab::new();
    let a = lab
        .instance
        .save(lab.write("a.csv", "1"), &SaveOptions::default())
        .unwrap()
        .artifact;
    let old_root = lab.root();
    drop(lab.instance);
    // What an older labmesh wrote: the absolute path, in config and row.
    let absolute = format!("file://{}/.labmesh/storage", old_root.display());
    let config_path = old_root.join(".labmesh/config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap().replace(
        "default = \".labmesh/storage\"",
        &format!("default = \"{absolute}\""),
    );
    std::fs::write(&config_path, config).unwrap();
    rusqlite::Connection::open(old_root.join(".labmesh/instance.db"))
        .unwrap()
        .execute("UPDATE storage SET root = ?1", [&absolute])
        .unwrap();

    // Copied (the original stays): the copy must use its own objects.
    let copy = lab.dir.path().join("copy");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&old_root)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let inst = Instance::open(&copy).unwrap();
    assert_eq!(inst.default_storage().root, ".labmesh/storage");
    assert!(inst.cache(&a.uid).unwrap().path.starts_with(&copy));
    let config = std::fs::read_to_string(copy.join(".labmesh/config.toml")).unwrap();
    assert!(
        config.contains("default = \".labmesh/storage\""),
        "{config}"
    );
    let root: String = inst
        .connection()
        .query_row("SELECT root FROM storage", [], |r| r.get(0))
        .unwrap();
    assert_eq!(root, ".labmesh/storage");
    // The original, opened in place, is re-recorded the same way.
    let original = Instance::open(&old_root).unwrap();
    assert_eq!(original.default_storage().root, ".labmesh/storage");
    assert!(original.cache(&a.uid).unwrap().path.starts_with(&old_root));
}

#[test]
fn init_refuses_secrets_and_a_failed_init_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("new/lab");
    let err = Instance::init(
        &target,
        &labmesh::InitOptions {
            storage: Some("s3://bucket/x".into()),
            storage_options: vec![("aws_secret_access_key".into(), "SUPERSECRET".into())],
            ..Default::default()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("AWS_SECRET_ACCESS_KEY") && msg.contains("environment"),
        "{msg}"
    );
    assert!(!msg.contains("SUPERSECRET"), "{msg}");
    assert!(!dir.path().join("new").exists(), "nothing was created");
}
