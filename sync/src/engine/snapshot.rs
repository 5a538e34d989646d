//! Bootstrap from a snapshot: a new subscriber receives the scope's
//! documents as they are (compacted automerge saves, not the feed's change
//! history), in uid order and bounded chunks, then continues from the feed
//! positions the snapshot carries.
//!
//! The marks travel in the first chunk and are taken when the snapshot
//! starts; every later chunk's documents are at least that new, so the marks
//! are a safe lower bound, and changes after them that the documents already
//! hold arrive again from the feed as harmless duplicates. The marks are
//! stored only with the last chunk: an interrupted bootstrap leaves no marks
//! pointing past records it never received.
//!
//! Trust: changes inside a document are not signed one by one, so a
//! snapshot is accepted only from a peer that may write the scope now (the
//! owner may): a chunk from anyone else is refused whole and the bootstrap
//! ends (`Rejection::NotAuthorized`). Every change in a snapshot document
//! must also be by an origin that may write the scope at the change's time
//! (as its author stamped it); records that fail are refused and reported.
//!
//! No record is skipped: a document larger than the response budget
//! travels alone in its chunk. Only a record grown past
//! [`MAX_DOC_BYTES`] by several writers at once cannot be carried; the
//! server reports it (`Event::Oversized`).

use std::collections::BTreeMap;

use labmesh_crypto::PublicKey;

use super::overlay::Overlay;
use super::{Access, Bootstrap, Effect, Engine, Event, Failure, Output, Rejection, Store};
use crate::digest::{bucket_of, record_digest};
use crate::doc::{Authorship, RecordDoc};
use crate::error::{DocError, WireError};
use crate::hlc::Hlc;
use crate::ids::{RecordUid, ScopeId};
use crate::wire::limits::MAX_DOC_BYTES;
use crate::wire::{Marks, Message};

/// Memo of actor bytes → public key, for one call.
pub(super) type KeyMemo = BTreeMap<[u8; 32], Option<PublicKey>>;

/// The first change of a document that may not enter.
#[derive(Debug)]
pub(super) struct Offender {
    /// Its author, when the actor is a key.
    pub(super) author: Option<PublicKey>,
    pub(super) change: [u8; 32],
    pub(super) reason: Rejection,
}

/// Checks that every change in `authors` is by an origin that may write
/// `scope` at its time; returns the first offender.
pub(super) fn check_authors(
    authors: &[Authorship],
    scope: &ScopeId,
    access: &dyn Access,
    memo: &mut KeyMemo,
) -> Result<(), Box<Offender>> {
    for a in authors {
        let key = *memo
            .entry(a.actor)
            .or_insert_with(|| crate::wire::codec::parse_key(&a.actor));
        let Some(key) = key else {
            return Err(Box::new(Offender {
                author: None,
                change: a.hash,
                reason: Rejection::Invalid("a change's actor is not a node key".into()),
            }));
        };
        let at = Hlc {
            ms: a.ms,
            logical: 0,
            node: Hlc::node_tag(&key),
        };
        if !access.may_write(&key, scope, at) {
            return Err(Box::new(Offender {
                author: Some(key),
                change: a.hash,
                reason: Rejection::NotAuthorized,
            }));
        }
    }
    Ok(())
}

/// Loads documents from a peer; any that does not load refuses the message.
pub(super) fn load_all(
    records: Vec<(RecordUid, Vec<u8>)>,
) -> Result<Vec<(RecordUid, RecordDoc, Vec<u8>)>, Failure> {
    records
        .into_iter()
        .map(|(uid, bytes)| match RecordDoc::load(&bytes) {
            Ok(doc) => Ok((uid, doc, bytes)),
            Err(_) => Err(Failure::Bad(WireError::Invalid {
                what: "document",
                reason: "it does not load",
            })),
        })
        .collect()
}

/// Loads and materializes new documents, on up to `threads` threads; the
/// result is in input order whatever the thread count. Any document that
/// does not load refuses the whole message.
fn prepare_all(
    scope: &ScopeId,
    records: Vec<(RecordUid, Vec<u8>)>,
    threads: usize,
) -> Result<Vec<(Vec<Authorship>, Effect)>, Failure> {
    let prepare =
        |(uid, bytes): (RecordUid, Vec<u8>)| -> Result<(Vec<Authorship>, Effect), Failure> {
            let doc = RecordDoc::load(&bytes).map_err(|_| {
                Failure::Bad(WireError::Invalid {
                    what: "document",
                    reason: "it does not load",
                })
            })?;
            let heads = doc.heads();
            let effect = Effect::PutDocument {
                scope: scope.clone(),
                digest: record_digest(&uid, &heads),
                bucket: bucket_of(&uid),
                view: doc.view(),
                heads,
                uid,
                doc: bytes,
            };
            Ok((doc.authors(), effect))
        };
    let threads = threads.clamp(1, 16);
    if threads == 1 || records.len() < 64 {
        return records.into_iter().map(prepare).collect();
    }
    let per = records.len().div_ceil(threads);
    let mut parts: Vec<Vec<(RecordUid, Vec<u8>)>> = Vec::new();
    let mut records = records.into_iter();
    loop {
        let part: Vec<_> = records.by_ref().take(per).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    let results: Vec<Result<Vec<_>, Failure>> = std::thread::scope(|s| {
        // A part whose thread cannot be started runs here instead.
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let run = move || part.into_iter().map(prepare).collect::<Result<Vec<_>, _>>();
                std::thread::Builder::new()
                    .spawn_scoped(s, run.clone())
                    .map_err(|_| run)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or(Err(Failure::Bad(WireError::Invalid {
                    what: "document",
                    reason: "preparing it failed",
                }))),
                Err(run) => run(),
            })
            .collect()
    });
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

impl Engine {
    fn reject_doc(
        &mut self,
        out: &mut Output,
        offender: Box<Offender>,
        from: PublicKey,
        scope: &ScopeId,
        uid: RecordUid,
    ) {
        self.stats.rejected += 1;
        out.events.push(Event::Rejected {
            origin: offender.author.unwrap_or(from),
            scope: scope.clone(),
            uid: Some(uid),
            change: Some(offender.change),
            reason: offender.reason,
        });
    }

    /// Starts bootstrapping `scope` from `peer` (connected, sharing the
    /// scope). Feed pulls and announcements for the scope wait until the
    /// snapshot is complete.
    pub fn bootstrap(&mut self, now_ms: u64, peer: PublicKey, scope: ScopeId) -> Output {
        self.peers.entry(peer).or_default().insert(scope.clone());
        self.bootstraps.insert(
            scope.clone(),
            Bootstrap {
                peer,
                marks: None,
                after: None,
                records: 0,
                last_progress_ms: now_ms,
            },
        );
        let mut out = Output::default();
        out.send(peer, &Message::SnapshotRequest { scope, after: None });
        out
    }

    pub(super) fn retry_bootstraps(&mut self, now_ms: u64, out: &mut Output) {
        let retry = self.config.retry_ms;
        for (scope, b) in &mut self.bootstraps {
            if now_ms.saturating_sub(b.last_progress_ms) >= retry {
                b.last_progress_ms = now_ms;
                out.send(
                    b.peer,
                    &Message::SnapshotRequest {
                        scope: scope.clone(),
                        after: b.after.clone(),
                    },
                );
            }
        }
    }

    pub(super) fn on_snapshot_request(
        &mut self,
        now_ms: u64,
        from: PublicKey,
        scope: ScopeId,
        after: Option<RecordUid>,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
        let _ = now_ms;
        let mut out = Output::default();
        if !access.may_read(&from, &scope) {
            out.send(
                from,
                &Message::Denied {
                    scope: scope.clone(),
                },
            );
            out.events.push(Event::Denied { peer: from, scope });
            return Ok(out);
        }
        let limit = self.config.snapshot_chunk_records.max(1);
        let page = store.records_after(&scope, after.as_ref(), limit)?;
        let full_page = page.len() == limit;
        let mut used = 0;
        let mut records = Vec::new();
        let mut cut = false;
        let mut last = None;
        for (uid, doc) in page {
            // A document over the budget travels alone in its chunk.
            if used + doc.len() > self.config.max_response_bytes && !records.is_empty() {
                cut = true;
                break;
            }
            last = Some(uid.clone());
            if doc.len() > MAX_DOC_BYTES {
                out.events.push(Event::Oversized {
                    scope: scope.clone(),
                    uid,
                    bytes: doc.len(),
                });
                continue;
            }
            used += doc.len();
            records.push((uid, doc));
        }
        let marks = if after.is_none() {
            store.marks(&scope)?
        } else {
            Vec::new()
        };
        let next = if cut || full_page { last } else { None };
        out.send(
            from,
            &Message::SnapshotChunk {
                scope,
                marks,
                records,
                next,
            },
        );
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_snapshot_chunk(
        &mut self,
        now_ms: u64,
        from: PublicKey,
        scope: ScopeId,
        marks: Marks,
        records: Vec<(RecordUid, Vec<u8>)>,
        next: Option<RecordUid>,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
        let mut out = Output::default();
        match self.bootstraps.get(&scope) {
            Some(b) if b.peer == from => {}
            _ => return Ok(out), // unsolicited
        }
        if !Self::may_serve_documents(now_ms, &from, &scope, access) {
            // Unsigned documents from a peer that may not write: the whole
            // snapshot is refused and the bootstrap ends.
            self.bootstraps.remove(&scope);
            self.stats.rejected += 1;
            out.events.push(Event::Rejected {
                origin: from,
                scope,
                uid: None,
                change: None,
                reason: Rejection::NotAuthorized,
            });
            return Ok(out);
        }
        let count = records.len() as u64;
        let mut overlay = Overlay::default();
        let mut memo = KeyMemo::new();
        // Records new to this replica (nearly all, in a bootstrap) are
        // prepared — loaded, materialized, digested — on `threads` cores;
        // records that exist here are merged one by one.
        let mut fresh = Vec::new();
        let mut existing = Vec::new();
        for (uid, bytes) in records {
            if overlay.exists(store, &scope, &uid)? {
                existing.push((uid, bytes));
            } else {
                fresh.push((uid, bytes));
            }
        }
        let prepared = prepare_all(&scope, fresh, self.config.threads)?;
        for (authors, effect) in prepared {
            let Effect::PutDocument { uid, .. } = &effect else {
                continue;
            };
            if let Err(offender) = check_authors(&authors, &scope, access, &mut memo) {
                self.reject_doc(&mut out, offender, from, &scope, uid.clone());
                continue;
            }
            out.effects.push(effect);
        }
        for (uid, mut incoming, _) in load_all(existing)? {
            let authors = overlay.doc(store, &scope, &uid)?.authors_added(&incoming);
            if let Err(offender) = check_authors(&authors, &scope, access, &mut memo) {
                self.reject_doc(&mut out, offender, from, &scope, uid);
                continue;
            }
            let doc = overlay.doc(store, &scope, &uid)?;
            match doc.merge(&mut incoming) {
                Ok(true) => overlay.touch(&scope, &uid),
                Ok(false) => {}
                // Merges once both replicas judged a refused change alike.
                Err(DocError::SeqReused) => overlay.discard(&scope, &uid),
                Err(_) => {
                    return Err(Failure::Bad(WireError::Invalid {
                        what: "document",
                        reason: "it does not merge",
                    }));
                }
            }
        }
        let Some(b) = self.bootstraps.get_mut(&scope) else {
            return Ok(out);
        };
        if b.marks.is_none() {
            b.marks = Some(marks);
        }
        b.records += count;
        b.last_progress_ms = now_ms;
        b.after = next.clone();
        if let Some(after) = next {
            out.send(
                from,
                &Message::SnapshotRequest {
                    scope: scope.clone(),
                    after: Some(after),
                },
            );
        } else if let Some(done) = self.bootstraps.remove(&scope) {
            for (origin, seq) in done.marks.unwrap_or_default() {
                overlay.set_mark(store, &scope, &origin, seq)?;
            }
            out.events.push(Event::Bootstrapped {
                scope: scope.clone(),
                records: done.records,
            });
            let marks = overlay.marks_list(store, &scope)?;
            out.send(
                from,
                &Message::Pull {
                    scope,
                    full: true,
                    marks,
                },
            );
        }
        self.finish(overlay, Some(&from), access, &mut out);
        Ok(out)
    }
}
