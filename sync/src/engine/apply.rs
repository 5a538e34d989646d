//! Applying signed batches from peers (or, for retries, from our own store).
//!
//! Order of checks, per message: every signature (strict) before anything
//! else; then per batch: already have it → skip; a gap before it (its `prev`
//! is above our mark) → skip, it will be pulled in order. Then entry by
//! entry, in order, each decided the same way on every replica:
//!
//! - its origin may not write the scope at the entry's time → refused
//!   (`NotAuthorized`);
//! - it does not parse, or was made by another actor → refused (`Invalid`);
//! - a dependency is missing and this replica refused that dependency →
//!   refused (`DependsOnRefused`): it can never apply here, nor anywhere
//!   that refused the same change;
//! - a dependency is missing and not refused, or the change reuses a
//!   sequence number (its author dropped a refused change this replica
//!   still holds) → the batch stops there: the mark stays before it, the
//!   batch is stored, and it is retried — at once if this message brings
//!   the dependency, else on `tick`;
//! - otherwise it is applied.
//!
//! Refused entries are reported, remembered (`RefuseChanges`) and the mark
//! moves past them, so a feed never stalls on them. A batch is stored for
//! relaying unless every entry in it was refused and its origin never held
//! a write right (a reader forging batches).

use std::collections::BTreeSet;

use labmesh_crypto::PublicKey;

use super::overlay::Overlay;
use super::{Access, Effect, Engine, Event, Failure, Output, Rejection, Store};
use crate::doc::RecordDoc;
use crate::error::{DocError, WireError};
use crate::feed::{Entry, SignedBatch};
use crate::ids::ScopeId;
use crate::wire::Message;

enum Step {
    /// Applied or consumed to its end.
    Done,
    /// Some entries consumed, then blocked on dependencies.
    Partial,
    /// Blocked before consuming anything.
    Blocked,
    /// Duplicate or out of order.
    Skip,
}

/// What became of one entry.
enum Verdict {
    Applied,
    Refused(Rejection),
    Wait,
}

/// Per-call bookkeeping of [`Engine::apply_batches`].
pub(super) struct ApplyCtx<'a> {
    pub(super) now_ms: u64,
    pub(super) scope: &'a ScopeId,
    pub(super) store: &'a dyn Store,
    pub(super) access: &'a dyn Access,
    /// Whether batches came from a peer (store them) or from our store.
    pub(super) fresh: bool,
    stored: BTreeSet<(PublicKey, u64)>,
    warned: BTreeSet<PublicKey>,
}

impl<'a> ApplyCtx<'a> {
    pub(super) fn new(
        now_ms: u64,
        scope: &'a ScopeId,
        store: &'a dyn Store,
        access: &'a dyn Access,
        fresh: bool,
    ) -> ApplyCtx<'a> {
        ApplyCtx {
            now_ms,
            scope,
            store,
            access,
            fresh,
            stored: BTreeSet::new(),
            warned: BTreeSet::new(),
        }
    }
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_batches(
        &mut self,
        now_ms: u64,
        from: PublicKey,
        scope: ScopeId,
        more: bool,
        batches: Vec<SignedBatch>,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, Failure> {
        if !self.shares(&from, &scope) {
            return Ok(Output::default());
        }
        for batch in &batches {
            self.verified.check(batch).map_err(Failure::Bad)?;
        }
        for batch in &batches {
            self.inflight.remove(&(scope.clone(), batch.batch().origin));
        }
        let mut out = Output::default();
        let mut overlay = Overlay::default();
        let mut ctx = ApplyCtx::new(now_ms, &scope, store, access, true);
        self.apply_batches(&mut ctx, batches, &mut overlay, &mut out)?;
        if more && !self.bootstraps.contains_key(&scope) && access.may_read(&from, &scope) {
            let marks = overlay.marks_list(store, &scope)?;
            out.send(
                from,
                &Message::Pull {
                    scope: scope.clone(),
                    full: true,
                    marks,
                },
            );
        }
        self.finish(overlay, Some(&from), access, &mut out);
        Ok(out)
    }

    /// Ends a call: effects from the overlay, and announcements of advanced
    /// marks to the other peers (gossip).
    pub(super) fn finish(
        &self,
        overlay: Overlay,
        except: Option<&PublicKey>,
        access: &dyn Access,
        out: &mut Output,
    ) {
        let advanced = overlay.advanced();
        overlay.into_effects(&mut out.effects);
        for (scope, marks) in advanced {
            let message = Message::Announce {
                scope: scope.clone(),
                marks,
            };
            let bytes = message.encode();
            for peer in self.readers(&scope, except, access) {
                out.messages.push(super::Outgoing {
                    to: peer,
                    bytes: bytes.clone(),
                });
            }
        }
    }

    /// Applies batches, in passes, until no more progress.
    pub(super) fn apply_batches(
        &mut self,
        ctx: &mut ApplyCtx<'_>,
        batches: Vec<SignedBatch>,
        overlay: &mut Overlay,
        out: &mut Output,
    ) -> Result<(), Failure> {
        let mut pending = batches;
        loop {
            let mut progress = false;
            let mut waiting = Vec::new();
            for batch in pending {
                match self.apply_one(ctx, &batch, overlay, out)? {
                    Step::Done => progress = true,
                    Step::Partial => {
                        progress = true;
                        waiting.push(batch);
                    }
                    Step::Blocked => waiting.push(batch),
                    Step::Skip => {}
                }
            }
            pending = waiting;
            if !progress || pending.is_empty() {
                break;
            }
        }
        for batch in pending {
            self.blocked
                .insert((ctx.scope.clone(), batch.batch().origin));
        }
        Ok(())
    }

    fn apply_one(
        &mut self,
        ctx: &mut ApplyCtx<'_>,
        signed: &SignedBatch,
        overlay: &mut Overlay,
        out: &mut Output,
    ) -> Result<Step, Failure> {
        let batch = signed.batch();
        let scope = ctx.scope;
        let origin = batch.origin;
        let mark = overlay.mark(ctx.store, scope, &origin)?;
        if batch.last_seq() <= mark || batch.prev > mark {
            return Ok(Step::Skip);
        }
        // Entries up to our mark are consumed already (a partial batch).
        let start = if mark < batch.first_seq {
            0
        } else {
            (mark - batch.first_seq + 1) as usize
        };
        let todo = &batch.entries[start..];
        let any_allowed = todo
            .iter()
            .any(|e| ctx.access.may_write(&origin, scope, e.hlc));
        if ctx.fresh
            && (any_allowed || ctx.access.held_write(&origin, scope))
            && ctx.stored.insert((origin, batch.first_seq))
        {
            out.effects.push(Effect::StoreBatch {
                scope: scope.clone(),
                origin,
                first_seq: batch.first_seq,
                last_seq: batch.last_seq(),
                bytes: signed.to_bytes(),
            });
        }
        let first_todo = batch.first_seq + start as u64;
        for (i, entry) in todo.iter().enumerate() {
            let seq = first_todo + i as u64;
            match self.judge(ctx, &origin, entry, overlay, out)? {
                Verdict::Applied => {}
                Verdict::Refused(reason) => {
                    self.stats.rejected += 1;
                    let change = RecordDoc::change_hash(&entry.change).ok();
                    if let Some(hash) = change {
                        overlay.refuse(scope, hash);
                    }
                    out.events.push(Event::Rejected {
                        origin,
                        scope: scope.clone(),
                        uid: Some(entry.uid.clone()),
                        change,
                        reason,
                    });
                }
                Verdict::Wait => return Ok(if i == 0 { Step::Blocked } else { Step::Partial }),
            }
            overlay.set_mark(ctx.store, scope, &origin, seq)?;
        }
        Ok(Step::Done)
    }

    /// Decides one entry, and applies it if it is accepted.
    fn judge(
        &mut self,
        ctx: &mut ApplyCtx<'_>,
        origin: &PublicKey,
        entry: &Entry,
        overlay: &mut Overlay,
        out: &mut Output,
    ) -> Result<Verdict, Failure> {
        let scope = ctx.scope;
        if !ctx.access.may_write(origin, scope, entry.hlc) {
            return Ok(Verdict::Refused(Rejection::NotAuthorized));
        }
        let doc = overlay.doc(ctx.store, scope, &entry.uid)?;
        match doc.apply_change(origin, &entry.change) {
            Ok(_) => {
                overlay.touch(scope, &entry.uid);
                let observed = self.clock.observe(entry.hlc, ctx.now_ms);
                if let Some(ahead_ms) = observed.ahead_ms {
                    self.stats.clock_warnings += 1;
                    if ctx.warned.insert(*origin) {
                        out.events.push(Event::ClockAhead {
                            origin: *origin,
                            ahead_ms,
                        });
                    }
                }
                Ok(Verdict::Applied)
            }
            Err(DocError::MissingDeps { .. }) => {
                let missing = doc.missing_deps(&entry.change).unwrap_or_default();
                for dep in &missing {
                    if overlay.is_refused(ctx.store, scope, dep)? {
                        return Ok(Verdict::Refused(Rejection::DependsOnRefused));
                    }
                }
                Ok(Verdict::Wait)
            }
            Err(DocError::SeqReused) => Ok(Verdict::Wait),
            Err(DocError::Panicked) => Err(Failure::Bad(WireError::Invalid {
                what: "change",
                reason: "automerge failed on it",
            })),
            Err(e) => Ok(Verdict::Refused(Rejection::Invalid(e.to_string()))),
        }
    }

    /// Retries batches that waited for dependencies, from our own store.
    pub(super) fn retry_blocked(
        &mut self,
        now_ms: u64,
        store: &dyn Store,
        access: &dyn Access,
        out: &mut Output,
    ) -> Result<(), super::StoreError> {
        let blocked = std::mem::take(&mut self.blocked);
        let all_blocked = blocked.clone();
        let mut by_scope: std::collections::BTreeMap<ScopeId, Vec<SignedBatch>> =
            Default::default();
        for (scope, origin) in blocked {
            let stored = store.marks(&scope).and_then(|marks| {
                let mark = marks.iter().find(|(o, _)| *o == origin).map_or(0, |m| m.1);
                store.batches_after(&scope, &origin, mark, self.config.max_response_bytes)
            });
            let stored = match stored {
                Ok(s) => s,
                Err(e) => {
                    self.blocked.extend(all_blocked);
                    return Err(e);
                }
            };
            for bytes in stored {
                if let Ok(batch) = SignedBatch::decode(&bytes) {
                    by_scope.entry(scope.clone()).or_default().push(batch);
                }
            }
        }
        for (scope, batches) in by_scope {
            let checkpoint = self.checkpoint();
            let mut overlay = Overlay::default();
            let mut ctx = ApplyCtx::new(now_ms, &scope, store, access, false);
            let mut part = Output::default();
            match self.apply_batches(&mut ctx, batches, &mut overlay, &mut part) {
                Ok(()) => {
                    self.finish(overlay, None, access, &mut part);
                    out.append(part);
                }
                Err(Failure::Store(e)) => {
                    self.restore(checkpoint);
                    self.blocked.extend(all_blocked);
                    return Err(e);
                }
                Err(Failure::Bad(error)) => {
                    self.restore(checkpoint);
                    out.events.push(Event::StoreFailed {
                        error: format!("a stored batch of {scope} cannot be applied: {error}"),
                    });
                }
            }
        }
        Ok(())
    }
}
