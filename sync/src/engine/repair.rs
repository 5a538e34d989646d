//! Drift repair: when two replicas' documents differ although their marks
//! agree (a restored backup, a lost write, a feed gap), they compare bucket
//! digests, then the (uid, heads digest) items of the differing buckets, then
//! exchange and merge the documents that differ. Merging is idempotent, so
//! repair can never do harm; changes it brings in are checked like a
//! snapshot's (every author may write the scope).

use std::collections::BTreeMap;

use labmesh_crypto::PublicKey;

use super::overlay::Overlay;
use super::snapshot::{KeyMemo, check_authors, load_all};
use super::{Access, Engine, Event, Failure, Output, Rejection, Store};
use crate::error::WireError;
use crate::ids::{RecordUid, ScopeId};
use crate::wire::Message;
use crate::wire::limits::{BUCKETS, MAX_DOC_BYTES, MAX_RECORDS_PER_MESSAGE};

impl Engine {
    pub(super) fn on_buckets(
        &mut self,
        from: PublicKey,
        scope: ScopeId,
        theirs: Vec<[u8; 16]>,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
        let mut out = Output::default();
        if !self.shares(&from, &scope) || !access.may_read(&from, &scope) {
            return Ok(out);
        }
        let ours = store.bucket_digests(&scope)?;
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
        let send: Vec<RecordUid> = ours
            .iter()
            .filter(|(uid, d)| theirs.get(*uid) != Some(*d))
            .map(|(uid, _)| uid.clone())
            .collect();
        let want: Vec<RecordUid> = theirs
            .keys()
            .filter(|u| !ours.contains_key(*u))
            .cloned()
            .collect();
        self.send_docs(from, &scope, &send, want, store, &mut out)?;
        Ok(out)
    }

    /// Sends our documents of `uids` (and a want list) in bounded messages.
    fn send_docs(
        &self,
        to: PublicKey,
        scope: &ScopeId,
        uids: &[RecordUid],
        mut want: Vec<RecordUid>,
        store: &dyn Store,
        out: &mut Output,
    ) -> Result<(), Failure> {
        want.truncate(MAX_RECORDS_PER_MESSAGE);
        let mut docs = Vec::new();
        let mut used = 0;
        for uid in uids {
            let Some(doc) = store.document(scope, uid)? else {
                continue;
            };
            if doc.len() > MAX_DOC_BYTES {
                continue;
            }
            if !docs.is_empty()
                && (used + doc.len() > self.config.max_response_bytes
                    || docs.len() == MAX_RECORDS_PER_MESSAGE)
            {
                out.send(
                    to,
                    &Message::Docs {
                        scope: scope.clone(),
                        docs: std::mem::take(&mut docs),
                        want: std::mem::take(&mut want),
                    },
                );
                used = 0;
            }
            used += doc.len();
            docs.push((uid.clone(), doc));
        }
        if !docs.is_empty() || !want.is_empty() {
            out.send(
                to,
                &Message::Docs {
                    scope: scope.clone(),
                    docs,
                    want,
                },
            );
        }
        Ok(())
    }

    pub(super) fn on_docs(
        &mut self,
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
        let loaded = load_all(docs)?;
        let mut overlay = Overlay::default();
        let mut memo = KeyMemo::new();
        let mut changed = 0;
        let mut reply: Vec<RecordUid> = Vec::new();
        let mut reply_docs: Vec<(RecordUid, Vec<u8>)> = Vec::new();
        for (uid, mut incoming, bytes) in loaded {
            let exists = overlay.exists(store, &scope, &uid)?;
            let authors = if exists {
                overlay.doc(store, &scope, &uid)?.authors_added(&incoming)
            } else {
                incoming.authors()
            };
            if let Err(offender) = check_authors(&authors, &scope, access, &mut memo) {
                self.stats.rejected += 1;
                out.events.push(Event::Rejected {
                    origin: offender.as_deref().copied().unwrap_or(from),
                    scope: scope.clone(),
                    uid: Some(uid),
                    reason: Rejection::NotAuthorized,
                });
                continue;
            }
            if !exists {
                overlay.put_verbatim(&scope, &uid, incoming, bytes);
                changed += 1;
                continue;
            }
            let doc = overlay.doc(store, &scope, &uid)?;
            let incoming_heads = incoming.heads();
            let merged = doc.merge(&mut incoming).map_err(|_| {
                Failure::Bad(WireError::Invalid {
                    what: "document",
                    reason: "it does not merge",
                })
            })?;
            if doc.heads() != incoming_heads {
                // We had changes they lack: send the merged document back.
                reply_docs.push((uid.clone(), doc.save()));
            }
            if merged {
                overlay.touch(&scope, &uid);
                changed += 1;
            }
        }
        if access.may_read(&from, &scope) {
            for uid in want {
                if !reply_docs.iter().any(|(u, _)| *u == uid) {
                    reply.push(uid);
                }
            }
            // Merged documents, in messages within the response budget.
            let mut batch: Vec<(RecordUid, Vec<u8>)> = Vec::new();
            let mut used = 0;
            for (uid, doc) in reply_docs {
                if doc.len() > MAX_DOC_BYTES {
                    continue;
                }
                if !batch.is_empty()
                    && (used + doc.len() > self.config.max_response_bytes
                        || batch.len() == MAX_RECORDS_PER_MESSAGE)
                {
                    out.send(
                        from,
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
                    from,
                    &Message::Docs {
                        scope: scope.clone(),
                        docs: batch,
                        want: Vec::new(),
                    },
                );
            }
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
