//! Finding the instance's default storage row from `config.toml`.
//!
//! Storage inside the instance directory is recorded relative to it
//! (`.labmesh/storage`), so a moved or copied instance keeps using its own
//! objects. Instances made by an older labmesh recorded the absolute path
//! (`file:///old/place/.labmesh/storage`); when that path is an instance's
//! own storage directory and this instance has one, opening re-records it
//! in the relative form — the row and `config.toml` — rather than reading
//! from (or silently writing into) the old location.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::config::Config;
use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::StorageRecord;
use crate::paths::{DOT_DIR, InstancePaths};
use crate::storage::{DEFAULT_LOCAL_ROOT, StorageUrl};

/// The default storage row named by `config`, re-recording a legacy
/// absolute root (and updating `config` to match) when needed.
pub(crate) fn default_storage(
    conn: &Connection,
    paths: &InstancePaths,
    config: &mut Config,
) -> Result<StorageRecord> {
    let db_path = paths.db();
    let configured = StorageUrl::parse(&config.storage.default, &paths.root)?;
    let own = own_storage(&configured, paths).unwrap_or_else(|| configured.clone());
    let recorded = own.recorded(&paths.root);
    // The row may still hold an older form of the same root.
    let mut candidates = vec![recorded.clone(), own.url.clone(), configured.url.clone()];
    candidates.dedup();
    let mut found = None;
    for root in &candidates {
        found = row_by_root(conn, root).db(&db_path)?;
        if found.is_some() {
            break;
        }
    }
    let Some(mut row) = found else {
        return Err(Error::Config {
            path: paths.config(),
            reason: format!(
                "default storage {} is not registered in this instance; set [storage].default to a registered root \
                 (`sqlite3 .labmesh/instance.db 'SELECT root FROM storage'` lists them)",
                config.storage.default
            ),
        });
    };
    if row.root != recorded {
        let tx = write_txn(conn).db(&db_path)?;
        tx.execute(
            "UPDATE storage SET root = ?1 WHERE id = ?2",
            (&recorded, row.id),
        )
        .db(&db_path)?;
        tx.commit().db(&db_path)?;
        row.root = recorded.clone();
    }
    if config.storage.default.trim() != recorded {
        // Best effort: the row alone already makes the next open find it.
        let _ = rewrite_default(&paths.config(), &config.storage.default, &recorded);
        config.storage.default = recorded;
    }
    row.url = own.url;
    Ok(row)
}

/// For a root of the form `<somewhere>/.labmesh/storage` that is not this
/// instance's own — where it was before a move, or the original of a copy —
/// this instance's own storage directory, if it has one.
fn own_storage(configured: &StorageUrl, paths: &InstancePaths) -> Option<StorageUrl> {
    let path = configured.local_path()?;
    let mut tail = path.components().rev();
    let looks_like_default =
        tail.next()?.as_os_str() == "storage" && tail.next()?.as_os_str() == DOT_DIR;
    if !looks_like_default || path == paths.default_storage() || !paths.default_storage().is_dir() {
        return None;
    }
    StorageUrl::parse(DEFAULT_LOCAL_ROOT, &paths.root).ok()
}

fn row_by_root(conn: &Connection, root: &str) -> rusqlite::Result<Option<StorageRecord>> {
    conn.prepare_cached("SELECT id, uid, root, kind FROM storage WHERE root = ?1")?
        .query_row([root], |r| {
            Ok(StorageRecord {
                id: r.get(0)?,
                uid: r.get(1)?,
                root: r.get(2)?,
                url: String::new(),
                kind: r.get(3)?,
            })
        })
        .optional()
}

/// Replaces the `default = "…"` line of `config.toml` (keeping the user's
/// comments and layout), written to a temporary file and renamed.
fn rewrite_default(config_path: &Path, old: &str, new: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(config_path).map_err(|e| Error::io("reading", config_path, e))?;
    let quoted_old = toml::Value::String(old.to_string()).to_string();
    let quoted_new = toml::Value::String(new.to_string()).to_string();
    let mut replaced = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let t = line.trim_start();
            if t.starts_with("default") && t.contains(&quoted_old) {
                replaced += 1;
                line.replacen(&quoted_old, &quoted_new, 1)
            } else {
                line.to_string()
            }
        })
        .collect();
    if replaced != 1 {
        return Err(Error::Config {
            path: config_path.to_path_buf(),
            reason: "could not find the [storage] default line to update".into(),
        });
    }
    let mut out = lines.join("\n");
    out.push('\n');
    let tmp = config_path.with_extension(format!("toml.{}.tmp", crate::uid::random(8)));
    let written = std::fs::write(&tmp, out.as_bytes())
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, config_path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("writing", config_path, e));
    }
    Ok(())
}
