//! An instance: one lab's registries (SQLite) and storage, opened together.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::config::Config;
use crate::db::{self, migrate};
use crate::error::{DbContext, Error, Result};
use crate::paths::{DOT_DIR, InstancePaths, absolute};
use crate::progress::{NoProgress, Progress};
use crate::storage::{DEFAULT_LOCAL_ROOT, Storage, StorageKind, StorageUrl, local::sync_dir};
use crate::time::now_ms;
use crate::uid;

/// How to create an instance.
#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    /// A short name for people (default: the directory's name).
    pub name: Option<String>,
    /// Default storage: a local path (relative paths resolve against the
    /// instance directory) or a URL (default: `.labmesh/storage`).
    pub storage: Option<String>,
    /// `object_store` options for a cloud storage (endpoint, region, …).
    pub storage_options: Vec<(String, String)>,
    /// Handle of the local user (default: `$USER`).
    pub user: Option<String>,
}

/// How `storage_lock` is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockMode {
    Shared,
    Exclusive,
}

/// A storage row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StorageRecord {
    #[serde(skip)]
    pub id: i64,
    pub uid: String,
    /// As recorded: a path relative to the instance directory for storage
    /// inside it (`.labmesh/storage`), else the URL.
    pub root: String,
    /// `root` resolved where the instance is now (`file:///…`, `s3://…`).
    pub url: String,
    pub kind: String,
}

/// An open instance. Cheap to open (a few hundred microseconds); holds
/// one SQLite connection, so use one `Instance` per thread.
pub struct Instance {
    pub(crate) paths: InstancePaths,
    pub(crate) conn: Connection,
    pub(crate) config: Config,
    pub(crate) instance_uid: String,
    pub(crate) self_node_id: i64,
    pub(crate) peer_id: String,
    pub(crate) user_id: i64,
    pub(crate) user_handle: String,
    pub(crate) default_storage: StorageRecord,
    storages: RefCell<HashMap<i64, Storage>>,
    pub(crate) progress: Arc<dyn Progress + Send>,
    /// Sync messages produced by local writes of shared records.
    pub(crate) outbox: crate::mesh::Outbox,
    pub(crate) pending: crate::mesh::Pending,
    /// Access facts of the mesh, reloaded only when their tables change.
    pub(crate) access_cache: crate::mesh::access::AccessCache,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("root", &self.paths.root)
            .field("uid", &self.instance_uid)
            .finish()
    }
}

impl Instance {
    /// Creates an instance in `dir` (created if missing). Everything is
    /// built in a staging directory and renamed into place, so an
    /// interrupted `init` leaves no half-made instance behind.
    pub fn init(dir: impl AsRef<Path>, opts: &InitOptions) -> Result<Instance> {
        let root = absolute(dir.as_ref())?;
        let paths = InstancePaths::new(&root);
        if paths.dot().exists() {
            return Err(Error::AlreadyAnInstance { path: root });
        }
        crate::config::refuse_secret_options(&opts.storage_options)?;
        let name = match &opts.name {
            Some(n) => n.trim().to_string(),
            None => root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "labmesh".into()),
        };
        if name.is_empty() {
            return Err(Error::InvalidArgument("the instance name is empty".into()));
        }
        let handle = opts.user.clone().unwrap_or_else(default_user_handle);
        if handle.trim().is_empty() || handle.chars().any(char::is_whitespace) {
            return Err(Error::InvalidArgument(format!(
                "user handle {handle:?} must be one word"
            )));
        }
        let storage_url = match &opts.storage {
            Some(s) => StorageUrl::parse(s, &root)?,
            None => StorageUrl::parse(DEFAULT_LOCAL_ROOT, &root)?,
        };
        if storage_url.kind != StorageKind::Local {
            // Fail now, not at the first save, if the store is missing or
            // unreachable, or the credentials are wrong.
            let store = Storage::open(&storage_url, &opts.storage_options)?;
            if let Storage::Cloud(cloud) = store {
                cloud.probe()?;
            }
        }

        // Only now touch the disk; a failure removes what this call made.
        let created = create_missing_dirs(&root)?;
        let staging = root.join(format!("{DOT_DIR}.init-{}", uid::random(8)));
        let result = build_instance(&staging, &paths, &name, &handle, &storage_url, opts);
        let result = result.and_then(|()| {
            std::fs::rename(&staging, paths.dot())
                .map_err(|e| Error::io("creating", paths.dot(), e))?;
            sync_dir(&root)
        });
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&staging);
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
        Instance::open(&root)
    }

    /// Opens the instance whose root (the directory holding `.labmesh/`) is `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Instance> {
        Instance::open_paths(InstancePaths::existing(root.as_ref())?)
    }

    /// Opens the instance named explicitly, by `$LABMESH_INSTANCE`, or found
    /// in `start` or one of its parents.
    pub fn discover(explicit: Option<&Path>, start: &Path) -> Result<Instance> {
        Instance::open_paths(InstancePaths::discover(explicit, start)?)
    }

    fn open_paths(paths: InstancePaths) -> Result<Instance> {
        let db_path = paths.db();
        let conn = db::open_existing(&db_path)?;
        migrate::migrate_existing(&conn, &db_path)?;
        let mut config = Config::load(&paths.config())?;

        let (instance_uid, self_node_id, peer_id) =
            identity_rows(&conn).map_err(|e| db::damaged_or(&db_path, e))?;
        let user = conn
            .query_row(
                "SELECT id, handle FROM user WHERE handle = ?1 AND origin_id = ?2",
                params![config.user.handle, self_node_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .db(&db_path)?;
        let (user_id, user_handle) = match user {
            Some(u) => u,
            None => create_user(&conn, &db_path, &config.user.handle, self_node_id)?,
        };
        let default_storage =
            crate::storage::recorded::default_storage(&conn, &paths, &mut config)?;
        Ok(Instance {
            paths,
            conn,
            config,
            instance_uid,
            self_node_id,
            peer_id,
            user_id,
            user_handle,
            default_storage,
            storages: RefCell::new(HashMap::new()),
            progress: Arc::new(NoProgress),
            outbox: crate::mesh::Outbox::default(),
            pending: crate::mesh::Pending::default(),
            access_cache: crate::mesh::access::AccessCache::default(),
        })
    }

    /// Routes progress of long operations (hashing, copying, downloads) to `progress`.
    pub fn set_progress(&mut self, progress: Arc<dyn Progress + Send>) {
        self.progress = progress;
    }

    /// The directory holding `.labmesh/`.
    pub fn root(&self) -> &Path {
        &self.paths.root
    }

    pub fn paths(&self) -> &InstancePaths {
        &self.paths
    }

    pub fn uid(&self) -> &str {
        &self.instance_uid
    }

    pub fn name(&self) -> &str {
        &self.config.instance.name
    }

    /// This node's libp2p PeerId (derived from the node key).
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    pub fn user(&self) -> &str {
        &self.user_handle
    }

    pub fn default_storage(&self) -> &StorageRecord {
        &self.default_storage
    }

    /// The instance's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The database connection, for advanced read-only queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        self.paths.db()
    }

    /// Loads the node's secret key (checking its file permissions).
    pub fn node_key(&self) -> Result<labmesh_crypto::NodeKey> {
        Ok(labmesh_crypto::NodeKey::load_file(self.paths.node_key())?)
    }

    /// The opened storage with row id `id`.
    pub(crate) fn storage(&self, id: i64) -> Result<Storage> {
        if let Some(s) = self.storages.borrow().get(&id) {
            return Ok(s.clone());
        }
        let root: String = self
            .conn
            .query_row("SELECT root FROM storage WHERE id = ?1", [id], |r| r.get(0))
            .db(&self.db_path())?;
        let url = StorageUrl::parse(&root, &self.paths.root)?;
        let storage = Storage::open(&url, &self.config.storage_options())?;
        self.storages.borrow_mut().insert(id, storage.clone());
        Ok(storage)
    }

    /// Serializes storage mutations between processes of this node: saves
    /// hold it shared from writing content until their row commits;
    /// permanent deletes and `gc` hold it exclusively, so they never remove
    /// an object a save in flight has just written.
    pub(crate) fn storage_lock(&self, mode: LockMode) -> Result<std::fs::File> {
        let path = self.paths.dot().join("storage.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("opening", &path, e))?;
        let locked = match mode {
            LockMode::Shared => file.lock_shared(),
            LockMode::Exclusive => file.lock(),
        };
        locked.map_err(|e| Error::io("locking", &path, e))?;
        Ok(file)
    }

    /// What `labmesh info` shows.
    pub fn info(&self) -> Result<InstanceInfo> {
        let db_path = self.db_path();
        let (artifacts, versions, trashed, folders, bytes): (i64, i64, i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT
                     count(*) FILTER (WHERE is_latest = 1 AND trashed_at IS NULL),
                     count(*) FILTER (WHERE trashed_at IS NULL),
                     count(*) FILTER (WHERE trashed_at IS NOT NULL),
                     count(*) FILTER (WHERE kind = 'folder' AND trashed_at IS NULL),
                     coalesce(sum(size) FILTER (WHERE trashed_at IS NULL), 0)
                 FROM artifact",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .db(&db_path)?;
        let created_at: i64 = self
            .conn
            .query_row("SELECT created_at FROM instance", [], |r| r.get(0))
            .db(&db_path)?;
        Ok(InstanceInfo {
            name: self.name().to_string(),
            uid: self.instance_uid.clone(),
            root: self.paths.root.clone(),
            peer_id: self.peer_id.clone(),
            user: self.user_handle.clone(),
            storage: self.default_storage.clone(),
            schema_version: migrate::current_version(&self.conn, &db_path)?,
            artifacts: artifacts as u64,
            versions: versions as u64,
            trashed: trashed as u64,
            folders: folders as u64,
            bytes: bytes as u64,
            created_at,
        })
    }
}

/// Summary of an instance.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceInfo {
    pub name: String,
    pub uid: String,
    pub root: PathBuf,
    pub peer_id: String,
    pub user: String,
    pub storage: StorageRecord,
    pub schema_version: i64,
    /// Live artifacts (latest versions).
    pub artifacts: u64,
    /// Live versions, all families.
    pub versions: u64,
    pub trashed: u64,
    pub folders: u64,
    /// Bytes of all live versions.
    pub bytes: u64,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub created_at: i64,
}

/// The `instance` and self-`node` rows: (instance uid, node id, PeerId).
fn identity_rows(conn: &Connection) -> rusqlite::Result<(String, i64, String)> {
    let instance_uid: String =
        conn.query_row("SELECT uid FROM instance WHERE id = 1", [], |r| r.get(0))?;
    let (node_id, peer_id) =
        conn.query_row("SELECT id, peer_id FROM node WHERE is_self = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok((instance_uid, node_id, peer_id))
}

/// Creates `dir` and any missing parents; returns the ones it created,
/// outermost first, so a failed `init` can remove exactly those.
fn create_missing_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    Ok(missing)
}

fn default_user_handle() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty() && !u.chars().any(char::is_whitespace))
        .unwrap_or_else(|| "user".into())
}

fn create_user(
    conn: &Connection,
    db_path: &Path,
    handle: &str,
    node_id: i64,
) -> Result<(i64, String)> {
    conn.execute(
        "INSERT INTO user (uid, handle, created_at, origin_id) VALUES (?1, ?2, ?3, ?4)",
        params![uid::random(8), handle, now_ms(), node_id],
    )
    .db(db_path)?;
    Ok((conn.last_insert_rowid(), handle.to_string()))
}

/// Writes a complete `.labmesh/` into `staging`, to be renamed into place.
fn build_instance(
    staging: &Path,
    paths: &InstancePaths,
    name: &str,
    handle: &str,
    storage_url: &StorageUrl,
    opts: &InitOptions,
) -> Result<()> {
    std::fs::create_dir(staging).map_err(|e| Error::io("creating", staging, e))?;
    let key = labmesh_crypto::NodeKey::create_file(staging.join("node.key"))?;
    let peer_id = key.peer_id().to_string();

    let db_path = staging.join("instance.db");
    {
        let conn = db::open(&db_path, true)?;
        migrate::migrate(&conn, &db_path)?;
        let tx = db::write_txn(&conn).db(&db_path)?;
        let now = now_ms();
        tx.execute(
            "INSERT INTO instance (id, uid, name, created_at) VALUES (1, ?1, ?2, ?3)",
            params![uid::random(12), name, now],
        )
        .db(&db_path)?;
        tx.execute(
            "INSERT INTO node (peer_id, is_self, created_at) VALUES (?1, 1, ?2)",
            params![peer_id, now],
        )
        .db(&db_path)?;
        let node_id = tx.last_insert_rowid();
        let (user_id, _) = create_user(&tx, &db_path, handle, node_id)?;
        tx.execute(
            "INSERT INTO storage (uid, root, kind, created_at, created_by, origin_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![uid::random(12), storage_url.recorded(&paths.root), storage_url.kind.as_str(), now, user_id, node_id],
        )
        .db(&db_path)?;
        tx.commit().db(&db_path)?;
        // Fold the WAL into the main file before the directory moves.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .db(&db_path)?;
    }

    let mut config = Config::default();
    config.instance.name = name.to_string();
    config.user.handle = handle.to_string();
    config.storage.default = storage_url.recorded(&paths.root);
    config.storage.options = opts.storage_options.iter().cloned().collect();
    let config_path = staging.join("config.toml");
    write_synced(&config_path, config.to_toml().as_bytes())?;

    // The default local storage lives inside `.labmesh/`; create it in staging.
    if let Some(local_root) = storage_url.local_path() {
        let local_root = match local_root.strip_prefix(paths.dot()) {
            Ok(inside) => staging.join(inside),
            Err(_) => local_root,
        };
        crate::storage::LocalStorage::new(&local_root).create()?;
    }
    sync_dir(staging)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| Error::io("writing", path, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("writing", path, e))
}
