//! ULabel: typed, hierarchical labels ("liver", type "tissue", parent
//! "organ"). Parents form a DAG; an edge that would close a cycle is refused.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::db::write_txn;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::registry::{Added, clean_name, near_names, set_synonyms, synonyms_of};
use crate::search::index::index_text;
use crate::similar::fold;
use crate::time::now_ms;
use crate::uid;

pub(crate) const TAG: &str = "ulabel";

/// A label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Label {
    pub uid: String,
    pub name: String,
    /// `None` for untyped labels.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub description: Option<String>,
    pub parents: Vec<String>,
    pub synonyms: Vec<String>,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub created_at: i64,
    #[serde(skip)]
    pub(crate) id: i64,
}

/// What `add_label` creates.
#[derive(Clone, Debug, Default)]
pub struct LabelSpec {
    pub name: String,
    pub type_: Option<String>,
    pub description: Option<String>,
    /// Parents by uid, name, or `type:name`.
    pub parents: Vec<String>,
    pub synonyms: Vec<String>,
    /// Create it even when a near-duplicate exists.
    pub force: bool,
}

impl Instance {
    /// Adds a label, or returns the existing one with the same type and
    /// (folded) name — adding any new parents and synonyms to it.
    pub fn add_label(&self, spec: &LabelSpec) -> Result<Added<Label>> {
        let db = self.db_path();
        let name = clean_name("label", &spec.name)?;
        let type_ = spec
            .type_
            .as_deref()
            .map(clean_type)
            .transpose()?
            .unwrap_or_default();
        let description = spec
            .description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty());
        let tx = write_txn(&self.conn).db(&db)?;
        let mut notices = Vec::new();
        let existing: Option<(i64, String, Option<String>)> = tx
            .prepare_cached(
                "SELECT id, name, description FROM ulabel WHERE type = ?1 AND name_fold = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![type_, fold(&name)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .db(&db)?;
        let (id, created) = match existing {
            Some((id, stored, stored_description)) => {
                notices.push(format!(
                    "label {stored:?}{} already exists; returning it",
                    type_note(&type_)
                ));
                match (stored_description.as_deref(), description) {
                    (Some(old), Some(new)) if old != new => {
                        return Err(Error::InvalidArgument(format!(
                            "label {stored:?}{} already exists with description {old:?}, not {new:?}\n  \
                             hint: leave out --description to use it as it is",
                            type_note(&type_)
                        )));
                    }
                    (None, Some(new)) => {
                        tx.execute(
                            "UPDATE ulabel SET description = ?1 WHERE id = ?2",
                            params![new, id],
                        )
                        .db(&db)?;
                        index_text(&tx, TAG, id, "description", new).db(&db)?;
                        notices.push("added its description".into());
                    }
                    _ => {}
                }
                (id, false)
            }
            None => {
                // Not even --force may make a name mean two labels.
                self.refuse_synonym_as_name(&tx, &name, &type_)?;
                if !spec.force {
                    self.refuse_near_labels(&tx, &name, &type_)?;
                }
                tx.prepare_cached(
                    "INSERT INTO ulabel (uid, name, name_fold, type, description, created_at, created_by, origin_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        uid::random(12),
                        name,
                        fold(&name),
                        type_,
                        description,
                        now_ms(),
                        self.user_id,
                        self.self_node_id
                    ])
                })
                .db(&db)?;
                let id = tx.last_insert_rowid();
                index_text(&tx, TAG, id, "name", &name).db(&db)?;
                if let Some(d) = description {
                    index_text(&tx, TAG, id, "description", d).db(&db)?;
                }
                (id, true)
            }
        };
        for parent in &spec.parents {
            let parent_id = self.label_id_in(&tx, parent)?;
            add_parent_edge(&tx, id, parent_id).map_err(|e| match e {
                Error::InvalidArgument(m) => Error::InvalidArgument(format!(
                    "{m} (adding {parent:?} as a parent of {name:?})"
                )),
                other => other,
            })?;
        }
        if !spec.synonyms.is_empty() {
            self.check_synonyms(&tx, id, &type_, &spec.synonyms)?;
            let mut all = synonyms_of(&tx, TAG, id).db(&db)?;
            all.extend(spec.synonyms.iter().cloned());
            set_synonyms(&tx, TAG, id, &all).db(&db)?;
        }
        tx.commit().db(&db)?;
        Ok(Added {
            record: self.label_by_id(id)?,
            created,
            notices,
        })
    }

    /// Adds many labels in one transaction (no near-duplicate checks; exact
    /// duplicates, within the batch or with existing labels, are skipped).
    /// Returns how many were created.
    pub fn add_labels_bulk(&self, labels: &[(String, Option<String>)]) -> Result<usize> {
        let db = self.db_path();
        // A bigger page cache for the duration: bulk loads touch many pages.
        self.conn
            .execute_batch("PRAGMA cache_size = -262144")
            .db(&db)?;
        let result = self.add_labels_in_one_txn(labels);
        self.conn
            .execute_batch("PRAGMA cache_size = -32768")
            .db(&db)?;
        result
    }

    fn add_labels_in_one_txn(&self, labels: &[(String, Option<String>)]) -> Result<usize> {
        let db = self.db_path();
        let tx = write_txn(&self.conn).db(&db)?;
        let now = now_ms();
        let before: i64 = tx
            .query_row("SELECT coalesce(max(id), 0) FROM ulabel", [], |r| r.get(0))
            .db(&db)?;
        let mut created: Vec<(i64, String)> = Vec::new();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO ulabel (uid, name, name_fold, type, created_at, created_by, origin_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .db(&db)?;
            // In (name, type) order, the unique index fills sequentially.
            let mut rows: Vec<(String, String, String)> = Vec::with_capacity(labels.len());
            let mut last_type: Option<(&str, String)> = None;
            for (name, type_) in labels {
                let name = clean_name("label", name)?;
                let raw = type_.as_deref().unwrap_or("");
                // Most imports have one type: check it once.
                let type_ = match &last_type {
                    Some((r, t)) if *r == raw => t.clone(),
                    _ => {
                        let t = if raw.trim().is_empty() {
                            String::new()
                        } else {
                            clean_type(raw)?
                        };
                        last_type = Some((raw, t.clone()));
                        t
                    }
                };
                rows.push((fold(&name), name, type_));
            }
            rows.sort_unstable_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
            for (folded, name, type_) in rows {
                let n = insert
                    .execute(params![
                        uid::random(12),
                        name,
                        folded,
                        type_,
                        now,
                        self.user_id,
                        self.self_node_id
                    ])
                    .db(&db)?;
                if n == 1 {
                    created.push((tx.last_insert_rowid(), name));
                }
            }
        }
        let entries: Vec<(i64, &str, &str)> = created
            .iter()
            .map(|(id, name)| (*id, "name", name.as_str()))
            .collect();
        crate::search::index::index_bulk(&tx, TAG, &entries).db(&db)?;
        // A new name that is a synonym of another label of its type would
        // make the name mean two labels: refuse the whole import. Driven by
        // the synonyms (few), each a look-up in the (name, type) index.
        let clash: Option<(String, String, String)> = tx
            .query_row(
                "SELECT l.name, o.name, o.type FROM synonym s
                 JOIN ulabel o ON o.id = s.record_id
                 JOIN ulabel l ON l.name_fold = s.fold AND l.type = o.type
                 WHERE s.registry = 'ulabel' AND l.id > ?1 LIMIT 1",
                [before],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .db(&db)?;
        if let Some((name, other, type_)) = clash {
            return Err(Error::InvalidArgument(format!(
                "label {name:?}{} is already a synonym of label {other:?}; one name cannot mean two labels \
                 (nothing was imported)\n  hint: leave {name:?} out, or use {other:?}",
                type_note(&type_)
            )));
        }
        tx.commit().db(&db)?;
        Ok(created.len())
    }

    /// Finds a label by uid, `type:name`, or name (also a synonym); a bare
    /// name used by labels of several types is ambiguous.
    pub fn label(&self, query: &str) -> Result<Label> {
        let id = self.label_id_in(&self.conn, query)?;
        self.label_by_id(id)
    }

    /// Labels, optionally of one type, by name.
    pub fn labels(&self, type_: Option<&str>, limit: usize) -> Result<Vec<Label>> {
        let ids: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT id FROM ulabel WHERE trashed_at IS NULL AND (?1 IS NULL OR type = ?1)
                     ORDER BY type, name_fold LIMIT ?2",
                )
                .db(&self.db_path())?;
            stmt.query_map(params![type_, limit as i64], |r| r.get(0))
                .db(&self.db_path())?
                .collect::<rusqlite::Result<_>>()
                .db(&self.db_path())?
        };
        ids.into_iter().map(|id| self.label_by_id(id)).collect()
    }

    pub(crate) fn label_by_id(&self, id: i64) -> Result<Label> {
        let db = self.db_path();
        let (uid, name, type_, description, created_at): (
            String,
            String,
            String,
            Option<String>,
            i64,
        ) = self
            .conn
            .prepare_cached(
                "SELECT uid, name, type, description, created_at FROM ulabel WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
            })
            .db(&db)?;
        let parents = self
            .conn
            .prepare_cached(
                "SELECT p.name FROM ulabel_parent e JOIN ulabel p ON p.id = e.parent_id WHERE e.child_id = ?1 ORDER BY p.name",
            )
            .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>())
            .db(&db)?;
        let synonyms = synonyms_of(&self.conn, TAG, id).db(&db)?;
        Ok(Label {
            uid,
            name,
            type_: (!type_.is_empty()).then_some(type_),
            description,
            parents,
            synonyms,
            created_at,
            id,
        })
    }

    /// Resolves a label reference inside a transaction (or on the
    /// connection): a uid, `type:name`, or a name (or synonym). Names may
    /// contain ':' themselves (ontology ids like `CL:0000236`), so both
    /// readings are tried; a name used by labels of several types is
    /// ambiguous.
    pub(crate) fn label_id_in(&self, conn: &rusqlite::Connection, query: &str) -> Result<i64> {
        let db = self.db_path();
        let q = query.trim();
        if q.len() == 12 && uid::is_base62(q) {
            let by_uid: Option<i64> = conn
                .prepare_cached("SELECT id FROM ulabel WHERE uid = ?1")
                .and_then(|mut s| s.query_row([q], |r| r.get(0)).optional())
                .db(&db)?;
            if let Some(id) = by_uid {
                return Ok(id);
            }
        }
        let mut matches: Vec<(i64, String, String)> = Vec::new();
        if let Some((t, n)) = q.split_once(':')
            && !t.trim().is_empty()
            && !n.trim().is_empty()
        {
            matches = labels_named(conn, Some(t.trim()), n.trim()).db(&db)?;
        }
        for m in labels_named(conn, None, q).db(&db)? {
            if !matches.iter().any(|x| x.0 == m.0) {
                matches.push(m);
            }
        }
        match matches.as_slice() {
            [(id, ..)] => Ok(*id),
            [] => {
                let near = self
                    .search(crate::search::Registry::Label, q, 1)
                    .ok()
                    .and_then(|h| h.into_iter().next())
                    .filter(|h| fold(&h.name) != fold(q));
                Err(Error::InvalidArgument(format!(
                    "no label {q:?}{}",
                    near.map(|h| format!("; did you mean {:?}?", h.name))
                        .unwrap_or_else(|| "; `labmesh label add` creates one".into())
                )))
            }
            several => Err(Error::InvalidArgument(format!(
                "label {q:?} is ambiguous: it names {}; write it as type:name",
                several
                    .iter()
                    .map(|(_, t, n)| if t.is_empty() {
                        format!("{n:?} (untyped)")
                    } else {
                        format!("{t}:{n}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Refuses a new name that is already a synonym of a label of the
    /// same type: the name would then mean two labels.
    fn refuse_synonym_as_name(&self, tx: &Transaction<'_>, name: &str, type_: &str) -> Result<()> {
        let owner: Option<String> = tx
            .prepare_cached(
                "SELECT l.name FROM synonym y JOIN ulabel l ON l.id = y.record_id
                 WHERE y.registry = 'ulabel' AND y.fold = ?1 AND l.type = ?2 LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row(params![fold(name), type_], |r| r.get(0))
                    .optional()
            })
            .db(&self.db_path())?;
        match owner {
            Some(other) => Err(Error::InvalidArgument(format!(
                "{name:?} is already a synonym of label {other:?}{}; one name cannot mean two labels\n  \
                 hint: use {other:?} (`labmesh label show {other:?}`)",
                type_note(type_)
            ))),
            None => Ok(()),
        }
    }

    fn refuse_near_labels(&self, tx: &Transaction<'_>, name: &str, type_: &str) -> Result<()> {
        let db = self.db_path();
        // Same spelling under another type, or a typo away within this type.
        let mut near: Vec<(String, String)> = tx
            .prepare_cached("SELECT name, type FROM ulabel WHERE name_fold = ?1")
            .and_then(|mut s| {
                s.query_map([fold(name)], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .db(&db)?;
        near.extend(
            near_names(tx, "ulabel", "AND type = ?2", Some(type_), name)
                .db(&db)?
                .into_iter()
                .map(|n| (n, type_.to_string())),
        );
        let Some((first, first_type)) = near.first() else {
            return Ok(());
        };
        let listed: Vec<String> = near
            .iter()
            .map(|(n, t)| format!("{n:?}{}", type_note(t)))
            .collect();
        Err(Error::InvalidArgument(format!(
            "label {name:?} is close to the existing {}; did you mean {first:?}{}?\n  \
             hint: pass --force to create {name:?} anyway",
            listed.join(", "),
            type_note(first_type)
        )))
    }

    /// A synonym must not be another label's name or synonym of this type.
    fn check_synonyms(
        &self,
        tx: &Transaction<'_>,
        id: i64,
        type_: &str,
        synonyms: &[String],
    ) -> Result<()> {
        for s in synonyms {
            let taken: Option<String> = tx
                .prepare_cached(
                    "SELECT name FROM ulabel WHERE type = ?1 AND name_fold = ?2 AND id != ?3
                     UNION SELECT l.name FROM synonym y JOIN ulabel l ON l.id = y.record_id
                     WHERE y.registry = 'ulabel' AND y.fold = ?2 AND l.type = ?1 AND l.id != ?3",
                )
                .and_then(|mut st| {
                    st.query_row(params![type_, fold(s), id], |r| r.get(0))
                        .optional()
                })
                .db(&self.db_path())?;
            if let Some(other) = taken {
                return Err(Error::InvalidArgument(format!(
                    "synonym {s:?} already names label {other:?}; one name cannot mean two labels"
                )));
            }
        }
        Ok(())
    }
}

/// Adds `child -> parent`, refusing an edge that would close a cycle.
fn add_parent_edge(tx: &Transaction<'_>, child: i64, parent: i64) -> Result<()> {
    let map = |e| Error::InvalidArgument(format!("label hierarchy: {e}"));
    if child == parent {
        return Err(Error::InvalidArgument(
            "a label cannot be its own parent".into(),
        ));
    }
    // Is `child` already an ancestor of `parent`? Then the edge closes a cycle.
    let cycle: bool = tx
        .prepare_cached(
            "WITH RECURSIVE up(id) AS (
                 SELECT ?1 UNION SELECT e.parent_id FROM ulabel_parent e JOIN up ON e.child_id = up.id)
             SELECT EXISTS (SELECT 1 FROM up WHERE id = ?2)",
        )
        .and_then(|mut s| s.query_row(params![parent, child], |r| r.get(0)))
        .map_err(map)?;
    if cycle {
        return Err(Error::InvalidArgument(
            "that parent is already a descendant of the label, so the hierarchy would have a cycle"
                .into(),
        ));
    }
    tx.prepare_cached("INSERT OR IGNORE INTO ulabel_parent (child_id, parent_id) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![child, parent]))
        .map(|_| ())
        .map_err(map)
}

/// Live labels called `name` (of `type_`, if given) as (id, type, name):
/// by name, or, when no name matches, by synonym — a canonical name wins
/// over a synonym.
fn labels_named(
    conn: &rusqlite::Connection,
    type_: Option<&str>,
    name: &str,
) -> rusqlite::Result<Vec<(i64, String, String)>> {
    let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
    let by_name: Vec<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT id, type, name FROM ulabel
             WHERE name_fold = ?1 AND (?2 IS NULL OR type = ?2) AND trashed_at IS NULL",
        )?
        .query_map(params![fold(name), type_], row)?
        .collect::<rusqlite::Result<_>>()?;
    if !by_name.is_empty() {
        return Ok(by_name);
    }
    conn.prepare_cached(
        "SELECT l.id, l.type, l.name FROM synonym s JOIN ulabel l ON l.id = s.record_id
         WHERE s.registry = 'ulabel' AND s.fold = ?1 AND (?2 IS NULL OR l.type = ?2) AND l.trashed_at IS NULL",
    )?
    .query_map(params![fold(name), type_], row)?
    .collect()
}

/// Checks a label type: a name without ':' (which separates type and
/// name in `type:name`).
fn clean_type(type_: &str) -> Result<String> {
    let t = clean_name("label type", type_)?;
    if t.contains(':') {
        return Err(Error::InvalidArgument(format!(
            "label type {t:?} contains ':', which separates type and name in type:name; \
             choose a type without it"
        )));
    }
    Ok(t)
}

fn type_note(type_: &str) -> String {
    if type_.is_empty() {
        String::new()
    } else {
        format!(" (type {type_})")
    }
}
