//! Feed exchange: summaries, announcements, pulls and their answers.
//!
//! Steady state, identical peers exchange one `Summary` per scope per tick
//! (~100 bytes). Different marks → the receiver sends a full `Pull` of its
//! marks; the other side answers with the batches the puller lacks, in
//! bounded `Batches` messages (`more` asks for another pull), and pulls back
//! what it lacks itself. Equal marks but different documents → bucket
//! repair (`repair.rs`). An `Announce` (after a write or a relay) makes
//! peers pull at once instead of waiting for the next tick.

use std::collections::BTreeMap;

use labmesh_crypto::PublicKey;

use super::{Access, Engine, Event, Failure, Output, Store};
use crate::digest::marks_digest;
use crate::error::{StoreError, WireError};
use crate::feed::SignedBatch;
use crate::ids::ScopeId;
use crate::wire::limits::MAX_BATCHES_PER_MESSAGE;
use crate::wire::{Marks, Message};

/// Summaries in a row with different documents (and different marks)
/// before bucket repair starts.
const REPAIR_AFTER: u32 = 4;

/// Summaries in a row with different marks before a full pull.
const PULL_AFTER: u32 = 2;

impl Engine {
    pub(super) fn send_summary(
        &self,
        now_ms: u64,
        peer: PublicKey,
        scope: &ScopeId,
        store: &dyn Store,
        access: &dyn Access,
        out: &mut Output,
    ) -> Result<(), StoreError> {
        let _ = now_ms;
        if !access.may_read(&peer, scope) {
            return Ok(());
        }
        let marks_digest = marks_digest(&store.marks(scope)?);
        // Records whose version from this peer we refused count as theirs,
        // so a difference repair cannot close does not restart it (`memo`).
        let docs_digest = self
            .refusals
            .adjusted(&peer, scope, &store.bucket_digests(scope)?)
            .root();
        out.send(
            peer,
            &Message::Summary {
                scope: scope.clone(),
                marks_digest,
                docs_digest,
            },
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_summary(
        &mut self,
        now_ms: u64,
        from: PublicKey,
        scope: ScopeId,
        their_marks: [u8; 32],
        their_docs: [u8; 32],
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
        let _ = now_ms;
        let mut out = Output::default();
        // Our marks and digests are the scope's metadata: nothing of them
        // goes to a peer that may not read it.
        if !self.shares(&from, &scope)
            || self.bootstraps.contains_key(&scope)
            || !access.may_read(&from, &scope)
        {
            return Ok(out);
        }
        let marks = store.marks(&scope)?;
        let raw = store.bucket_digests(&scope)?;
        if raw.root() == their_docs {
            self.refusals.forget(&from, &scope);
        }
        let buckets = self.refusals.adjusted(&from, &scope, &raw);
        let marks_equal = marks_digest(&marks) == their_marks;
        // Marks that differ once are usually changes in flight, which
        // announcements deliver; a difference seen twice in a row is pulled.
        let key = (from, scope.clone());
        if marks_equal {
            self.lagging.remove(&key);
        } else {
            let streak = self.lagging.entry(key).or_insert(0);
            *streak += 1;
            if *streak >= PULL_AFTER {
                *streak = 0;
                out.send(
                    from,
                    &Message::Pull {
                        scope: scope.clone(),
                        full: true,
                        marks,
                    },
                );
            }
        }
        // Documents that differ under equal marks have drifted: repair them.
        // Under different marks the feed usually closes the gap (the
        // documents differ only by changes in flight); if the difference
        // persists for REPAIR_AFTER summaries in a row, repair runs anyway,
        // for gaps the feed cannot close (a peer that bootstrapped from a
        // snapshot holds no batches from before it).
        let key = (from, scope.clone());
        if buckets.root() == their_docs {
            self.mismatches.remove(&key);
        } else {
            let streak = self.mismatches.entry(key.clone()).or_insert(0);
            *streak += 1;
            if marks_equal || *streak >= REPAIR_AFTER {
                self.mismatches.remove(&key);
                out.send(
                    from,
                    &Message::Buckets {
                        scope,
                        digests: buckets.0.to_vec(),
                    },
                );
            }
        }
        Ok(out)
    }

    pub(super) fn on_announce(
        &mut self,
        now_ms: u64,
        from: PublicKey,
        scope: ScopeId,
        marks: Marks,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
        let mut out = Output::default();
        // A pull carries our marks: only to a peer that may read the scope.
        if !self.shares(&from, &scope)
            || self.bootstraps.contains_key(&scope)
            || !access.may_read(&from, &scope)
        {
            return Ok(out);
        }
        let mine: BTreeMap<PublicKey, u64> = store.marks(&scope)?.into_iter().collect();
        let retry = self.config.retry_ms;
        let mut want: Marks = Vec::new();
        for (origin, seq) in marks {
            let have = mine.get(&origin).copied().unwrap_or(0);
            if seq <= have {
                continue;
            }
            let key = (scope.clone(), origin);
            let busy = self
                .inflight
                .get(&key)
                .is_some_and(|(_, since)| now_ms.saturating_sub(*since) < retry);
            if !busy {
                self.inflight.insert(key, (from, now_ms));
                want.push((origin, have));
            }
        }
        if !want.is_empty() {
            out.send(
                from,
                &Message::Pull {
                    scope,
                    full: false,
                    marks: want,
                },
            );
        }
        Ok(out)
    }

    pub(super) fn on_pull(
        &mut self,
        from: PublicKey,
        scope: ScopeId,
        full: bool,
        theirs: Marks,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
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
        let mine: BTreeMap<PublicKey, u64> = store.marks(&scope)?.into_iter().collect();
        let theirs_map: BTreeMap<PublicKey, u64> = theirs.iter().copied().collect();
        // What they lack: for a full pull, every origin we know.
        let mut wanted: Vec<(PublicKey, u64)> = Vec::new();
        if full {
            for (origin, seq) in &mine {
                let have = theirs_map.get(origin).copied().unwrap_or(0);
                if *seq > have {
                    wanted.push((*origin, have));
                }
            }
        } else {
            for (origin, have) in &theirs {
                if mine.get(origin).is_some_and(|seq| seq > have) {
                    wanted.push((*origin, *have));
                }
            }
        }
        let budget = self.config.max_response_bytes;
        let mut used = 0usize;
        let mut batches: Vec<SignedBatch> = Vec::new();
        let mut more = false;
        'origins: for (origin, have) in wanted {
            let left = budget.saturating_sub(used);
            if left == 0 || batches.len() >= MAX_BATCHES_PER_MESSAGE {
                more = true;
                break;
            }
            for bytes in store.batches_after(&scope, &origin, have, left)? {
                if used + bytes.len() > budget && !batches.is_empty()
                    || batches.len() >= MAX_BATCHES_PER_MESSAGE
                {
                    more = true;
                    break 'origins;
                }
                let batch = SignedBatch::decode(&bytes)
                    .map_err(|e| Failure::Store(StoreError::new(StoredBatch(e))))?;
                used += bytes.len();
                batches.push(batch);
            }
        }
        if !batches.is_empty() {
            out.send(
                from,
                &Message::Batches {
                    scope: scope.clone(),
                    more,
                    batches,
                },
            );
        }
        Ok(out)
    }
}

/// A batch in our own store does not decode: the store is corrupt.
#[derive(Debug, thiserror::Error)]
#[error("a stored batch does not decode: {0}")]
struct StoredBatch(WireError);
