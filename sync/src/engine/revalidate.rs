//! Rebuilding documents after a change of access.
//!
//! A revocation takes effect at its own (replicated) time: changes its
//! writer stamped before it stay valid everywhere, changes stamped after it
//! are unauthorised everywhere. A replica that applied such a change before
//! it learned of the revocation must drop it again — and with it every
//! change that depends on it, which can no longer apply — or it would keep
//! a document no replica that knew in time can ever reach. The driver calls
//! [`Engine::revalidate`] when it learns of a revocation (or of any change
//! of access that withdraws rights); the engine rebuilds each affected
//! document from its remaining changes, remembers the dropped ones as
//! refused (so their dependents arriving later are refused at once, as on
//! replicas that never applied them), and the result is the document every
//! replica converges to.

use std::collections::BTreeSet;

use labmesh_crypto::PublicKey;

use super::overlay::Overlay;
use super::snapshot::KeyMemo;
use super::{Access, Engine, Event, Output, Rejection, Store};
use crate::doc::RecordDoc;
use crate::hlc::Hlc;
use crate::ids::{RecordUid, ScopeId};

/// Records read per store call while scanning a scope.
const PAGE: usize = 1024;

impl Engine {
    /// Re-checks every change in `scope`'s documents against `access` (as
    /// it is now) and rebuilds each document that holds an unauthorised
    /// change without it and without the changes that depend on it. With
    /// `origin`, only documents holding a change by that origin are loaded
    /// (the others cannot have become unauthorised by its revocation).
    /// Reports each dropped change (`Rejected`) and a summary (`Rebuilt`).
    pub fn revalidate(
        &mut self,
        now_ms: u64,
        scope: &ScopeId,
        origin: Option<&PublicKey>,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Output {
        let _ = now_ms;
        match self.rebuild_scope(scope, origin, store, access) {
            Ok(out) => out,
            Err(e) => Output::store_failed(e),
        }
    }

    fn rebuild_scope(
        &mut self,
        scope: &ScopeId,
        origin: Option<&PublicKey>,
        store: &dyn Store,
        access: &dyn Access,
    ) -> Result<Output, crate::error::StoreError> {
        let mut out = Output::default();
        let mut overlay = Overlay::default();
        let mut memo = KeyMemo::new();
        let (mut records, mut dropped) = (0, 0);
        let mut after: Option<RecordUid> = None;
        loop {
            let page = store.records_after(scope, after.as_ref(), PAGE)?;
            let full = page.len() == PAGE;
            for (uid, bytes) in page {
                after = Some(uid.clone());
                // An actor id is stored uncompressed in a saved document.
                if let Some(o) = origin
                    && !bytes.windows(32).any(|w| w == o.as_bytes().as_slice())
                {
                    continue;
                }
                let doc = match RecordDoc::load(&bytes) {
                    Ok(d) => d,
                    Err(e) => {
                        out.events.push(Event::StoreFailed {
                            error: format!("stored document {scope}/{uid} does not load: {e}"),
                        });
                        continue;
                    }
                };
                let invalid = doc.invalid_changes(|a| {
                    let key = *memo
                        .entry(a.actor)
                        .or_insert_with(|| crate::wire::codec::parse_key(&a.actor));
                    key.is_some_and(|key| {
                        let at = Hlc {
                            ms: a.ms,
                            logical: 0,
                            node: Hlc::node_tag(&key),
                        };
                        access.may_write(&key, scope, at)
                    })
                });
                if invalid.is_empty() {
                    continue;
                }
                let drop: BTreeSet<[u8; 32]> = invalid.iter().map(|i| i.change.hash).collect();
                let rebuilt = match doc.without(&drop) {
                    Ok(d) => d,
                    Err(e) => {
                        out.events.push(Event::StoreFailed {
                            error: format!("document {scope}/{uid} cannot be rebuilt: {e}"),
                        });
                        continue;
                    }
                };
                for i in &invalid {
                    self.stats.rejected += 1;
                    overlay.refuse(scope, i.change.hash);
                    out.events.push(Event::Rejected {
                        origin: crate::wire::codec::parse_key(&i.change.actor).unwrap_or(self.me),
                        scope: scope.clone(),
                        uid: Some(uid.clone()),
                        change: Some(i.change.hash),
                        reason: if i.direct {
                            Rejection::NotAuthorized
                        } else {
                            Rejection::DependsOnRefused
                        },
                    });
                }
                records += 1;
                dropped += invalid.len();
                overlay.replace(scope, &uid, rebuilt);
            }
            if !full {
                break;
            }
        }
        if records > 0 {
            out.events.push(Event::Rebuilt {
                scope: scope.clone(),
                records,
                changes: dropped,
            });
        }
        self.finish(overlay, None, access, &mut out);
        Ok(out)
    }
}
