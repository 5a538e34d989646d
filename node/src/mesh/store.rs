//! The sync engine's storage on SQLite: reads for `labmesh_sync::Store`,
//! and applying the engine's effects inside the caller's transaction —
//! documents, their materialized rows, batches, marks and the feed head
//! together, so a crash keeps them consistent.

use labmesh_crypto::PublicKey;
use labmesh_sync::digest::BucketDigests;
use labmesh_sync::wire::Marks;
use labmesh_sync::{Hlc, RecordUid, ScopeId, Store, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

/// `labmesh_sync::Store` over the instance database (any connection or
/// open transaction, so reads see the caller's uncommitted work).
pub struct SqlStore<'a> {
    pub conn: &'a Connection,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::new(e)
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::new(std::io::Error::other(format!("sync tables: {what}")))
}

fn key_of(bytes: &[u8]) -> Result<PublicKey, StoreError> {
    let arr: &[u8; 32] = bytes
        .try_into()
        .map_err(|_| corrupt("a stored origin is not 32 bytes"))?;
    PublicKey::from_bytes(arr).map_err(corrupt)
}

fn uid_of(text: String) -> Result<RecordUid, StoreError> {
    RecordUid::new(&text).map_err(corrupt)
}

impl Store for SqlStore<'_> {
    fn document(&self, scope: &ScopeId, uid: &RecordUid) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached("SELECT doc FROM sync_document WHERE scope = ?1 AND uid = ?2")
            .and_then(|mut s| {
                s.query_row([scope.as_str(), uid.as_str()], |r| r.get(0))
                    .optional()
            })
            .map_err(err)
    }

    fn marks(&self, scope: &ScopeId) -> Result<Marks, StoreError> {
        let rows: Vec<(Vec<u8>, i64)> = self
            .conn
            .prepare_cached("SELECT origin, seq FROM sync_mark WHERE scope = ?1 ORDER BY origin")
            .and_then(|mut s| {
                s.query_map([scope.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(err)?;
        let mut marks: Marks = Marks::new();
        for (origin, seq) in rows {
            marks.push((key_of(&origin)?, seq as u64));
        }
        marks.sort_by_key(|m| m.0);
        Ok(marks)
    }

    fn batches_after(
        &self,
        scope: &ScopeId,
        origin: &PublicKey,
        after: u64,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT bytes FROM sync_batch WHERE scope = ?1 AND origin = ?2 AND last_seq > ?3 ORDER BY last_seq",
            )
            .map_err(err)?;
        let mut rows = stmt
            .query(params![
                scope.as_str(),
                origin.as_bytes().as_slice(),
                after as i64
            ])
            .map_err(err)?;
        let (mut out, mut used) = (Vec::new(), 0);
        while let Some(row) = rows.next().map_err(err)? {
            let bytes: Vec<u8> = row.get(0).map_err(err)?;
            if !out.is_empty() && used + bytes.len() > max_bytes {
                break;
            }
            used += bytes.len();
            out.push(bytes);
        }
        Ok(out)
    }

    fn records_after(
        &self,
        scope: &ScopeId,
        after: Option<&RecordUid>,
        limit: usize,
    ) -> Result<Vec<(RecordUid, Vec<u8>)>, StoreError> {
        let rows: Vec<(String, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT uid, doc FROM sync_document WHERE scope = ?1 AND uid > ?2 ORDER BY uid LIMIT ?3")
            .and_then(|mut s| {
                s.query_map(params![scope.as_str(), after.map_or("", |a| a.as_str()), limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(err)?;
        rows.into_iter().map(|(u, d)| Ok((uid_of(u)?, d))).collect()
    }

    fn bucket_digests(&self, scope: &ScopeId) -> Result<BucketDigests, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT bucket, digest FROM sync_bucket WHERE scope = ?1")
            .and_then(|mut s| {
                s.query_map([scope.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(err)?;
        let mut digests = BucketDigests::default();
        for (bucket, digest) in rows {
            let d: [u8; 16] = digest
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("bad bucket digest"))?;
            digests.toggle(bucket as u16, &d);
        }
        Ok(digests)
    }

    fn bucket_items(
        &self,
        scope: &ScopeId,
        bucket: u16,
        after: Option<&RecordUid>,
        limit: usize,
    ) -> Result<Vec<(RecordUid, [u8; 16])>, StoreError> {
        let rows: Vec<(String, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT uid, digest FROM sync_document WHERE scope = ?1 AND bucket = ?2 AND uid > ?3 ORDER BY uid LIMIT ?4",
            )
            .and_then(|mut s| {
                s.query_map(params![scope.as_str(), bucket as i64, after.map_or("", |a| a.as_str()), limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(err)?;
        rows.into_iter()
            .map(|(u, d)| {
                let d: [u8; 16] = d
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("bad record digest"))?;
                Ok((uid_of(u)?, d))
            })
            .collect()
    }

    fn refused(&self, scope: &ScopeId, change: &[u8; 32]) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sync_refused WHERE scope = ?1 AND change = ?2)",
            )
            .and_then(|mut s| s.query_row(params![scope.as_str(), change.as_slice()], |r| r.get(0)))
            .map_err(err)
    }

    fn local_head(&self) -> Result<(u64, Hlc), StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT seq, hlc FROM sync_head WHERE id = 1")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(err)?;
        match row {
            None => Ok((0, Hlc::default())),
            Some((seq, hlc)) => Ok((
                seq as u64,
                Hlc::from_bytes(&hlc).ok_or_else(|| corrupt("bad stored HLC"))?,
            )),
        }
    }
}
