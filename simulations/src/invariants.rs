//! The invariants checked after every run, once the mesh has healed and
//! converged. Each returns the first violation it finds; the self-tests
//! (`lib.rs`) show each one firing on a deliberately broken run.
//!
//! 1. **Replicas identical**: every subscriber of a scope holds the same
//!    records with the same heads and the same materialized rows (checked by
//!    `World::diverged` to decide convergence).
//! 2. **Conflicts identical**: every record shows the same conflicted
//!    values and the same default winner on every replica (read from each
//!    replica's stored document bytes).
//! 3. **No acknowledged change lost**: every change a writer's engine
//!    acknowledged is in every replica's document — unless the ground truth
//!    says it was unauthorised (stamped after its writer's revocation) or
//!    built on such a change.
//! 4. **No acknowledged write lost unless overwritten**: every scalar value a
//!    writer wrote (validly) is still visible (as the value or one of a
//!    conflict's values), unless a later valid write to the same field, made
//!    by a node that had seen it, replaced it.
//! 5. **Nothing unauthorised applied**: every change in every replica is one
//!    an honest writer really made (ground truth: forged changes carrying a
//!    writer's actor id are caught too), and valid; no valid change was
//!    refused anywhere; read-only nodes' engines refused their writes.

use std::collections::{BTreeMap, BTreeSet};

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
        let docs = self.check_conflicts()?;
        let valid = self.truth.valid();
        // Forged or unauthorised changes first: they would also make
        // acknowledged writes look lost.
        self.check_authorised(&docs, &valid)?;
        self.check_acked_changes(&docs, &valid)?;
        self.check_acked_writes(&docs, &valid)
    }

    /// Invariant 2; returns one replica's documents per record.
    fn check_conflicts(&mut self) -> Result<BTreeMap<(ScopeId, RecordUid), RecordDoc>, String> {
        let mut docs = BTreeMap::new();
        for scope in self.scopes.clone() {
            let subs = self.subscribers(&scope);
            let Some(&reference) = subs.first() else {
                continue;
            };
            for (uid, stored) in self.nodes[reference].store.records(&scope) {
                let doc =
                    RecordDoc::load(&stored.doc).map_err(|e| format!("{scope}/{uid}: {e}"))?;
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
                self.report.records += 1;
                docs.insert((scope.clone(), uid.clone()), doc);
            }
        }
        Ok(docs)
    }

    /// Invariant 3.
    fn check_acked_changes(
        &self,
        docs: &BTreeMap<(ScopeId, RecordUid), RecordDoc>,
        valid: &BTreeSet<[u8; 32]>,
    ) -> Result<(), String> {
        for (scope, uid, change) in &self.acks.changes {
            if !valid.contains(change) {
                continue;
            }
            let present = docs
                .get(&(scope.clone(), uid.clone()))
                .is_some_and(|d| d.has_change(change));
            if !present {
                return Err(format!("{scope}/{uid}: an acknowledged change is missing"));
            }
        }
        Ok(())
    }

    /// Invariant 4.
    fn check_acked_writes(
        &self,
        docs: &BTreeMap<(ScopeId, RecordUid), RecordDoc>,
        valid: &BTreeSet<[u8; 32]>,
    ) -> Result<(), String> {
        let overwritten: BTreeSet<usize> = self
            .acks
            .writes
            .iter()
            .filter(|a| valid.contains(&a.change))
            .flat_map(|a| a.overwrote.iter().copied())
            .collect();
        for (idx, ack) in self.acks.writes.iter().enumerate() {
            let Some(value) = &ack.value else { continue };
            if overwritten.contains(&idx) || !valid.contains(&ack.change) {
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

    /// Invariant 5.
    fn check_authorised(
        &self,
        docs: &BTreeMap<(ScopeId, RecordUid), RecordDoc>,
        valid: &BTreeSet<[u8; 32]>,
    ) -> Result<(), String> {
        for ((scope, uid), doc) in docs {
            for a in doc.authors() {
                if !self.truth.honest(&a.hash) {
                    return Err(format!(
                        "{scope}/{uid}: holds a change no honest writer made (forged in the name of {})",
                        hex(&a.actor)
                    ));
                }
                if !valid.contains(&a.hash) {
                    return Err(format!(
                        "{scope}/{uid}: holds a change by {} stamped after its write right ended",
                        hex(&a.actor)
                    ));
                }
            }
        }
        if let Some(h) = self.rejected.iter().find(|h| valid.contains(*h)) {
            return Err(format!("a valid change {} was refused", hex(h)));
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
