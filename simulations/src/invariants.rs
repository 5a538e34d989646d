//! The invariants checked after every run, once the mesh has healed and
//! converged. Each returns the first violation it finds.
//!
//! 1. **Replicas identical**: every subscriber of a scope holds the same
//!    records with the same heads and the same materialized rows (checked by
//!    `World::diverged` to decide convergence). Equal heads mean equal sets
//!    of changes, so the checks below may look at one replica per scope.
//! 2. **Conflicts identical**: every conflicted field shows the same values
//!    and the same default winner on every replica.
//! 3. **No acknowledged change lost**: every change a node's engine
//!    acknowledged is in every replica's document.
//! 4. **No acknowledged write lost unless overwritten**: every scalar value a
//!    node wrote is still visible (as the value or one of a conflict's
//!    values), unless a later write to the same field, made by a node that
//!    had seen it, replaced it.
//! 5. **Nothing unauthorised applied**: every change in every document was
//!    made by a node that may write the scope; receivers never rejected an
//!    authorised change; read-only nodes' engines refused their writes.

use std::collections::{BTreeMap, BTreeSet};

use labmesh_crypto::PublicKey;
use labmesh_sync::engine::Access;
use labmesh_sync::{FieldValue, RecordDoc, RecordUid, ScopeId};

use crate::world::World;

impl World {
    pub(crate) fn check_invariants(&mut self) -> Result<(), String> {
        if let Some(v) = self.violations.first() {
            return Err(format!("during the run: {v}"));
        }
        if let Some(d) = self.diverged() {
            return Err(format!("replicas differ: {d}"));
        }
        let mut docs: BTreeMap<(ScopeId, RecordUid), RecordDoc> = BTreeMap::new();
        for scope in self.scopes.clone() {
            let subs = self.subscribers(&scope);
            let Some(&reference) = subs.first() else {
                continue;
            };
            for (uid, stored) in self.nodes[reference].store.records(&scope) {
                let doc =
                    RecordDoc::load(&stored.doc).map_err(|e| format!("{scope}/{uid}: {e}"))?;
                // 2: conflicts identical everywhere.
                if !stored.view.conflicted.is_empty() {
                    let conflicts = doc.conflicts();
                    self.report.conflicts += conflicts.len() as u64;
                    for &i in &subs[1..] {
                        let other = self.nodes[i]
                            .store
                            .record(&scope, uid)
                            .and_then(|r| RecordDoc::load(&r.doc).ok())
                            .map(|d| d.conflicts());
                        if other.as_ref() != Some(&conflicts) {
                            return Err(format!(
                                "{scope}/{uid}: node {i} shows other conflicts than node {reference}"
                            ));
                        }
                    }
                }
                // 5: every author may write.
                let mut checked: BTreeSet<[u8; 32]> = BTreeSet::new();
                for a in doc.authors() {
                    if !checked.insert(a.actor) {
                        continue;
                    }
                    let key = PublicKey::from_bytes(&a.actor)
                        .map_err(|_| format!("{scope}/{uid}: actor is not a key"))?;
                    if !self
                        .access
                        .may_write(&key, &scope, labmesh_sync::Hlc::default())
                    {
                        return Err(format!(
                            "{scope}/{uid}: holds a change by {key}, who may not write {scope}"
                        ));
                    }
                }
                self.report.records += 1;
                docs.insert((scope.clone(), uid.clone()), doc);
            }
        }
        // 3: every acknowledged change is there.
        for (scope, uid, change) in &self.acks.changes {
            let present = docs
                .get(&(scope.clone(), uid.clone()))
                .is_some_and(|d| d.has_change(change));
            if !present {
                return Err(format!("{scope}/{uid}: an acknowledged change is missing"));
            }
        }
        // 4: every written value is visible, or was knowingly overwritten.
        let overwritten: BTreeSet<usize> = self
            .acks
            .writes
            .iter()
            .flat_map(|a| a.overwrote.iter().copied())
            .collect();
        for (idx, ack) in self.acks.writes.iter().enumerate() {
            let Some(value) = &ack.value else { continue };
            if overwritten.contains(&idx) {
                continue;
            }
            let doc = docs
                .get(&(ack.scope.clone(), ack.uid.clone()))
                .ok_or_else(|| format!("{}/{}: the record is missing", ack.scope, ack.uid))?;
            let visible: Vec<FieldValue> =
                match doc.conflicts().into_iter().find(|c| c.field == ack.field) {
                    Some(c) => c.values,
                    None => doc.get(&ack.field).into_iter().collect(),
                };
            if !visible.contains(value) {
                return Err(format!(
                    "{}/{}: node {}'s write {:?} to {} was lost (visible: {:?})",
                    ack.scope, ack.uid, ack.node, value, ack.field, visible
                ));
            }
        }
        Ok(())
    }
}
