//! Drift repair: when two replicas' documents differ although their marks
//! agree (a restored backup, a lost write, a feed gap), they compare bucket
//! digests, then the (uid, heads digest) items of the differing buckets, then
//! exchange and merge the documents that differ. Merging is idempotent, so
//! repair can never do harm.
//!
//! Trust: documents carry no per-change signatures, so they are accepted
//! only from a peer that may write the scope now (the owner may): a
//! read-only peer could otherwise forge changes in a writer's name. A
//! reader therefore sends no documents, only the list of records it wants;
//! and every change a document brings in is still checked like a feed entry
//! (its author may write the scope at its time). A document refused for an
//! unauthorised change is remembered (`memo`) so the same exchange is not
//! repeated every round.

use std::collections::BTreeMap;

use labmesh_crypto::PublicKey;

use super::overlay::Overlay;
use super::snapshot::{KeyMemo, check_authors, load_all};
use super::{Access, Engine, Event, Failure, Output, Rejection, Store};
use crate::digest::record_digest;
use crate::error::{DocError, WireError};
use crate::ids::{RecordUid, ScopeId};
use crate::wire::Message;
use crate::wire::limits::{BUCKETS, MAX_DOC_BYTES, MAX_RECORDS_PER_MESSAGE};

impl Engine {
    pub(super) fn on_buckets(
        &mut self,
        now_ms: u64,
        from: PublicKey,
        scope: ScopeId,
        theirs: Vec<[u8; 16]>,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
        let _ = now_ms;
        let mut out = Output::default();
        if !self.shares(&from, &scope) || !access.may_read(&from, &scope) {
            return Ok(out);
        }
        let ours = self
            .refusals
            .adjusted(&from, &scope, &store.bucket_digests(&scope)?);
        let page = self.config.bucket_page.max(1);
        for bucket in 0..BUCKETS {
            if theirs.get(bucket) == Some(&ours.0[bucket]) {
                continue;
            }
            let bucket = bucket as u16;
            let mut after: Option<RecordUid> = None;
            loop {
                let items = store.bucket_items(&scope, bucket, after.as_ref(), page)?;
                let upto = if items.len() == page {
                    items.last().map(|(u, _)| u.clone())
                } else {
                    None
                };
                out.send(
                    from,
                    &Message::BucketItems {
                        scope: scope.clone(),
                        bucket,
                        after: after.clone(),
                        upto: upto.clone(),
                        items,
                    },
                );
                match upto {
                    Some(u) => after = Some(u),
                    None => break,
                }
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_bucket_items(
        &mut self,
        now_ms: u64,
        from: PublicKey,
        scope: ScopeId,
        bucket: u16,
        after: Option<RecordUid>,
        upto: Option<RecordUid>,
        theirs: Vec<(RecordUid, [u8; 16])>,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
        let mut out = Output::default();
        if !self.shares(&from, &scope) || !access.may_read(&from, &scope) {
            return Ok(out);
        }
        let in_range = |uid: &RecordUid| {
            after.as_ref().is_none_or(|a| uid > a) && upto.as_ref().is_none_or(|u| uid <= u)
        };
        let page = self.config.bucket_page.max(1);
        let mut ours: BTreeMap<RecordUid, [u8; 16]> = BTreeMap::new();
        let mut cursor = after.clone();
        loop {
            let items = store.bucket_items(&scope, bucket, cursor.as_ref(), page)?;
            let n = items.len();
            let mut past_end = false;
            for (uid, digest) in items {
                if !in_range(&uid) {
                    past_end = true;
                    break;
                }
                cursor = Some(uid.clone());
                ours.insert(uid, digest);
            }
            if past_end || n < page {
                break;
            }
        }
        let theirs: BTreeMap<RecordUid, [u8; 16]> =
            theirs.into_iter().filter(|(u, _)| in_range(u)).collect();
        // Pairs of versions we refused before are left alone.
        let refused = |uid: &RecordUid, theirs: Option<&[u8; 16]>, ours: Option<&[u8; 16]>| {
            self.refusals.holds(
                &from,
                &scope,
                uid,
                theirs.unwrap_or(&[0; 16]),
                ours.unwrap_or(&[0; 16]),
            )
        };
        let differ: Vec<RecordUid> = ours
            .iter()
            .filter(|(uid, d)| theirs.get(*uid) != Some(*d))
            .filter(|(uid, d)| !refused(uid, theirs.get(*uid), Some(d)))
            .map(|(uid, _)| uid.clone())
            .collect();
        let missing: Vec<RecordUid> = theirs
            .iter()
            .filter(|(u, d)| !ours.contains_key(*u) && !refused(u, Some(d), None))
            .map(|(u, _)| u.clone())
            .collect();
        // Documents go only from a writer (the other side refuses them from
        // anyone else); a reader asks for the other side's version instead.
        let we_serve = Self::may_serve_documents(now_ms, &self.me, &scope, access);
        let they_serve = Self::may_serve_documents(now_ms, &from, &scope, access);
        let (send, want) = match (we_serve, they_serve) {
            (true, true) => (differ, missing),
            (true, false) => (differ, Vec::new()),
            (false, true) => (Vec::new(), missing.into_iter().chain(differ).collect()),
            (false, false) => (Vec::new(), Vec::new()),
        };
        self.send_docs(from, &scope, &send, want, store, &mut out)?;
        Ok(out)
    }

    /// Sends our documents of `uids` (and a want list) in messages within
    /// the response budget; a large document travels alone.
    pub(super) fn send_docs(
        &self,
        to: PublicKey,
        scope: &ScopeId,
        uids: &[RecordUid],
        want: Vec<RecordUid>,
        store: &dyn Store,
        out: &mut Output,
    ) -> Result<(), Failure> {
        let mut docs = Vec::new();
        for uid in uids {
            if let Some(doc) = store.document(scope, uid)? {
                docs.push((uid.clone(), doc));
            }
        }
        self.send_doc_messages(to, scope, docs, want, out);
        Ok(())
    }

    fn send_doc_messages(
        &self,
        to: PublicKey,
        scope: &ScopeId,
        docs: Vec<(RecordUid, Vec<u8>)>,
        mut want: Vec<RecordUid>,
        out: &mut Output,
    ) {
        let mut batch: Vec<(RecordUid, Vec<u8>)> = Vec::new();
        let mut used = 0;
        for (uid, doc) in docs {
            if doc.len() > MAX_DOC_BYTES {
                out.events.push(Event::Oversized {
                    scope: scope.clone(),
                    uid,
                    bytes: doc.len(),
                });
                continue;
            }
            if !batch.is_empty()
                && (used + doc.len() > self.config.max_response_bytes
                    || batch.len() == MAX_RECORDS_PER_MESSAGE)
            {
                out.send(
                    to,
                    &Message::Docs {
                        scope: scope.clone(),
                        docs: std::mem::take(&mut batch),
                        want: Vec::new(),
                    },
                );
                used = 0;
            }
            used += doc.len();
            batch.push((uid, doc));
        }
        if !batch.is_empty() {
            out.send(
                to,
                &Message::Docs {
                    scope: scope.clone(),
                    docs: batch,
                    want: Vec::new(),
                },
            );
        }
        while !want.is_empty() {
            let rest = want.split_off(want.len().min(MAX_RECORDS_PER_MESSAGE));
            out.send(
                to,
                &Message::Docs {
                    scope: scope.clone(),
                    docs: Vec::new(),
                    want: std::mem::replace(&mut want, rest),
                },
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_docs(
        &mut self,
        now_ms: u64,
        from: PublicKey,
        scope: ScopeId,
        docs: Vec<(RecordUid, Vec<u8>)>,
        want: Vec<RecordUid>,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
        let mut out = Output::default();
        if !self.shares(&from, &scope) {
            return Ok(out);
        }
        let we_serve = Self::may_serve_documents(now_ms, &self.me, &scope, access);
        let answer = we_serve && access.may_read(&from, &scope);
        if !Self::may_serve_documents(now_ms, &from, &scope, access) {
            // Unsigned documents from a peer that may not write: refused
            // whole, whatever they claim to hold.
            for (uid, _) in docs {
                self.stats.rejected += 1;
                out.events.push(Event::Rejected {
                    origin: from,
                    scope: scope.clone(),
                    uid: Some(uid),
                    change: None,
                    reason: Rejection::NotAuthorized,
                });
            }
            if answer {
                self.send_docs(from, &scope, &want, Vec::new(), store, &mut out)?;
            }
            return Ok(out);
        }
        let loaded = load_all(docs)?;
        let mut overlay = Overlay::default();
        let mut memo = KeyMemo::new();
        let mut changed = 0;
        let mut reply: Vec<RecordUid> = Vec::new();
        let mut reply_docs: Vec<(RecordUid, Vec<u8>)> = Vec::new();
        let until = now_ms.saturating_add(self.config.refusal_memo_ms);
        for (uid, mut incoming, bytes) in loaded {
            let exists = overlay.exists(store, &scope, &uid)?;
            let authors = if exists {
                overlay.doc(store, &scope, &uid)?.authors_added(&incoming)
            } else {
                incoming.authors()
            };
            if let Err(offender) = check_authors(&authors, &scope, access, &mut memo) {
                self.stats.rejected += 1;
                let ours = if exists {
                    record_digest(&uid, &overlay.doc(store, &scope, &uid)?.heads())
                } else {
                    [0; 16]
                };
                let theirs = record_digest(&uid, &incoming.heads());
                let again = self.refusals.holds(&from, &scope, &uid, &theirs, &ours);
                self.refusals.note(from, &scope, &uid, theirs, ours, until);
                out.events.push(Event::Rejected {
                    origin: offender.author.unwrap_or(from),
                    scope: scope.clone(),
                    uid: Some(uid.clone()),
                    change: Some(offender.change),
                    reason: offender.reason,
                });
                // They may lack valid changes of ours: offer our version,
                // once per pair of versions (their answer, our refusal
                // again, would otherwise never end).
                if exists && !again {
                    reply.push(uid);
                }
                continue;
            }
            if !exists {
                overlay.put_verbatim(&scope, &uid, incoming, bytes);
                changed += 1;
                continue;
            }
            let doc = overlay.doc(store, &scope, &uid)?;
            let incoming_heads = incoming.heads();
            match doc.merge(&mut incoming) {
                Ok(merged) => {
                    if doc.heads() != incoming_heads {
                        // We had changes they lack: send the merged document back.
                        reply_docs.push((uid.clone(), doc.save()));
                    }
                    if merged {
                        overlay.touch(&scope, &uid);
                        changed += 1;
                    }
                }
                // One replica dropped a refused change the other still
                // holds: they merge once both have judged it alike.
                Err(DocError::SeqReused) => overlay.discard(&scope, &uid),
                Err(_) => {
                    return Err(Failure::Bad(WireError::Invalid {
                        what: "document",
                        reason: "it does not merge",
                    }));
                }
            }
        }
        if answer {
            for uid in want {
                if !reply_docs.iter().any(|(u, _)| *u == uid) && !reply.contains(&uid) {
                    reply.push(uid);
                }
            }
            self.send_doc_messages(from, &scope, reply_docs, Vec::new(), &mut out);
            self.send_docs(from, &scope, &reply, Vec::new(), store, &mut out)?;
        }
        if changed > 0 {
            out.events.push(Event::Repaired {
                scope: scope.clone(),
                records: changed,
            });
        }
        self.finish(overlay, Some(&from), access, &mut out);
        Ok(out)
    }
}
